"""What every HTTP adapter shares: the engine's one `aiohttp.ClientSession`, one attempt as
`Facts`, and the translation of transport failures into the error model's words.

A subclass builds the request for its provider (`send`) and calls `exchange`; the answer is read
as the description's `[response]` table says (where the message id, error code and text live).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs
from yarl import URL

from .descriptions import ProviderDescription
from .errors import Facts, classify, json_path, retry_after_seconds
from .messages import OutgoingMessage, SendResult


def open_session(*, connections: int = 256, timeout: float = 30.0) -> aiohttp.ClientSession:
    """The shared session: pooled keep-alive connections, bounded time for every request."""
    connector = aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300, keepalive_timeout=30)
    return aiohttp.ClientSession(connector=connector, raise_for_status=False,
                                 timeout=aiohttp.ClientTimeout(total=timeout, connect=5.0))


@attrs.frozen
class AdapterContext:
    """Everything an adapter is built from."""

    description: ProviderDescription
    session: aiohttp.ClientSession | None
    secrets: Mapping[str, str]
    options: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def base_url(self) -> str:
        if "base_url" in self.options:
            return str(self.options["base_url"]).rstrip("/")
        region = self.options.get("region")
        if region and region in self.description.regions:
            return self.description.regions[region].rstrip("/")
        return self.description.base_url.rstrip("/")

    @property
    def timeout(self) -> float:
        return float(self.options.get("timeout", self.description.timeout))


class HttpAdapter:
    """Base of the adapters that speak HTTP; one `send` is one attempt."""

    def __init__(self, context: AdapterContext) -> None:
        self.context = context
        self.description = context.description
        self.name = context.description.name
        self.channel = context.description.channel
        self._timeout = aiohttp.ClientTimeout(total=context.timeout)

    async def send(self, message: OutgoingMessage) -> SendResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def url(self, endpoint: str, **values: str) -> tuple[str, str]:
        method, route = self.description.endpoint(endpoint)
        return method, self.context.base_url + route.format(**values)

    def result(self, facts: Facts) -> SendResult:
        return classify(self.description, facts)

    def refused(self, code: str, message: str) -> SendResult:
        """A message refused before any call (checked locally), classified by the same table."""
        return classify(self.description, Facts(code=code, message=message))

    async def exchange(self, method: str, url: str | URL, *, body: bytes | None = None,
                       headers: Mapping[str, str] | None = None) -> tuple[Facts, Any]:
        """One request; the facts for classification and the parsed JSON answer (or None)."""
        try:
            async with self.context.session.request(method, url, data=body, headers=headers,
                                                    timeout=self._timeout, allow_redirects=False) as response:
                raw = await response.read()
                return self._facts(response.status, response.headers, raw)
        except asyncio.TimeoutError:
            return Facts(transport="timeout", message="no answer in time"), None
        except aiohttp.ClientConnectorError as exc:
            return Facts(transport="connect", message=_first_line(exc)), None
        except aiohttp.ClientError as exc:  # disconnected, reset, broken payload: the request may have landed
            return Facts(transport="disconnected", message=_first_line(exc)), None

    def _facts(self, status: int, headers: Mapping[str, str], raw: bytes) -> tuple[Facts, Any]:
        document = _json_or_none(raw)
        spec = self.description.response
        message_id = json_path(document, spec.get("message_id", ""))
        if message_id is None and spec.get("message_id_header"):
            message_id = headers.get(spec["message_id_header"])
        ok = 200 <= status < 300
        code = None if ok else json_path(document, spec.get("code", ""))
        text = "" if ok else json_path(document, spec.get("message", ""))
        if not ok and text is None:
            text = raw[:200].decode("utf-8", "replace")
        retry_after = retry_after_seconds(headers, self.description) if status == 429 or status >= 500 \
            else None
        facts = Facts(status=status, code=None if code is None else str(code), message=text or "",
                      retry_after=retry_after, message_id=None if message_id is None else str(message_id))
        return facts, document


#: One encoder for every request body (`json.dumps` with options builds a new one per call).
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(document: Any) -> bytes:
    return _ENCODE(document).encode("utf-8")


def _json_or_none(raw: bytes) -> Any:
    if not raw or raw[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _first_line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]
