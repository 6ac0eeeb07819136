"""What every local provider server shares: an aiohttp app on a free loopback port, a record of
every request and of every delivery, provider-side rate limiting, and fault injection.

A provider subclass says how to authenticate a request, how to parse and validate it (answering
as the real provider would when it is malformed), how to accept it, and what its errors look
like.  Each request then goes through the same steps:

1. recorded in `received` (with the time it arrived, `time.monotonic()`);
2. authenticated, then parsed and validated;
3. a pending fault that matches it, if any, is applied: an HTTP status with a body, a provider
   error code, 429 with `Retry-After`, a hang (the client times out) or a connection reset.  A
   fault with `deliver=True` accepts the message first and then loses the answer, as when the
   network fails after the provider did its work;
4. the provider's own rate limit (429 as that provider sends it);
5. accepted: recorded in `deliveries` once (a repeat of an idempotency key is answered as the
   provider answers it and not counted again).

Providers that report back (Twilio's status callbacks, SendGrid's Event Webhook) post their
reports in the background after answering, signed as the real provider signs them; `settle()`
waits until every report started so far has been posted.

Faults are injected from Python (`server.inject(Fault(...))`) or over HTTP through the control
API: `POST /__control/faults` (a Fault as JSON), `GET /__control/received`,
`GET /__control/deliveries`, `POST /__control/reset`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import socket
import time
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs
import yarl
from aiohttp import web

FAULT_KINDS = ("status", "error", "throttle", "hang", "reset")


@attrs.define
class Fault:
    """One injected failure.  `times` requests are hit (-1: every one until cleared)."""

    kind: str = "status"
    status: int = 500
    code: str | int | None = None     # provider error code, for kind "error"
    message: str | None = None
    retry_after: float | None = None  # for kind "throttle"
    delay: float = 30.0               # for kind "hang"
    times: int = 1
    recipient: str | None = None      # only requests to this recipient
    method: str | None = None         # only requests with this HTTP method
    deliver: bool = False             # accept the message, then fail the answer

    def __attrs_post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")


@attrs.frozen
class Received:
    at: float
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def record(self) -> dict:
        return {"at": self.at, "method": self.method, "path": self.path, "query": dict(self.query),
                "headers": dict(self.headers), "body": self.body.decode("utf-8", "replace")}


@attrs.frozen
class Delivery:
    at: float
    recipient: str
    payload: Any
    message_id: str
    key: str | None = None

    def record(self) -> dict:
        return {"at": self.at, "recipient": self.recipient, "payload": self.payload,
                "message_id": self.message_id, "key": self.key}


@attrs.frozen
class Parsed:
    """A valid request: who it is for, its idempotency key if any, and what it carries."""

    recipient: str
    payload: Any
    key: str | None = None


class Refusal(Exception):
    """Raised by `parse` with the response the provider gives to a malformed request."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class RateWindow:
    """At most `limit` accepted requests in any `period` seconds, counted at arrival."""

    def __init__(self, limit: int, period: float = 1.0) -> None:
        self.limit, self.period = limit, period
        self._times: deque[float] = deque(maxlen=limit)

    def admit(self, now: float) -> float | None:
        """None when admitted (and counted); otherwise the seconds until there is room."""
        if len(self._times) == self.limit and now - self._times[0] < self.period:
            return self._times[0] + self.period - now
        self._times.append(now)
        return None


class ProviderServer:
    name = "provider"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 rate_limit: tuple[int, float] | None = None) -> None:
        self.host, self.port = host, port
        self.received: list[Received] = []
        self.deliveries: list[Delivery] = []
        self.faults: list[Fault] = []
        self._rate = RateWindow(*rate_limit) if rate_limit else None
        self._runner: web.AppRunner | None = None
        self._counter = 0
        self._tasks: set[asyncio.Task] = set()
        self._client = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> ProviderServer:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("POST", "/__control/faults", self._control_fault)
        app.router.add_route("GET", "/__control/received", self._control_received)
        app.router.add_route("GET", "/__control/deliveries", self._control_deliveries)
        app.router.add_route("POST", "/__control/reset", self._control_reset)
        for method, path, handler in self.routes():
            app.router.add_route(method, path, self._wrapped(handler))
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ProviderServer:
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    # -- what a provider defines -----------------------------------------------------------

    def routes(self) -> list[tuple[str, str, Any]]:
        raise NotImplementedError

    def error_response(self, status: int, code: str | int | None, message: str | None) -> web.Response:
        """The provider's error answer for a status and (optional) provider code."""
        return web.json_response({"message": message or "error", "code": code}, status=status)

    def throttle_response(self, retry_after: float | None) -> web.Response:
        response = self.error_response(429, None, None)
        if retry_after is not None:
            response.headers["Retry-After"] = _seconds(retry_after)
        return response

    # -- the common path -------------------------------------------------------------------

    def _wrapped(self, handler):
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            self.received.append(Received(time.monotonic(), request.method, request.path, dict(request.query),
                                          dict(request.headers), body))
            try:
                return await handler(request, body)
            except Refusal as refusal:
                return refusal.response
        return handle

    async def respond(self, request: web.Request, parsed: Parsed, accept, repeat=None) -> web.StreamResponse:
        """Faults, rate limit, idempotency, acceptance: steps 3 to 5 for a valid request."""
        fault = self._take_fault(parsed.recipient, request.method)
        if fault is not None and not fault.deliver:
            return await self._apply(request, fault)
        if fault is None and self._rate is not None:
            wait = self._rate.admit(time.monotonic())
            if wait is not None:
                return self.throttle_response(float(math.ceil(wait)))
        response = repeat() if repeat is not None else None
        if response is None:
            response = accept()
        return await self._apply(request, fault) if fault is not None else response

    def deliver(self, parsed: Parsed, message_id: str) -> Delivery:
        delivery = Delivery(time.monotonic(), parsed.recipient, parsed.payload, message_id, parsed.key)
        self.deliveries.append(delivery)
        return delivery

    def next_id(self) -> int:
        self._counter += 1
        return self._counter

    def describe(self, payload: Any) -> str:
        """One line saying what a delivered request carried (for `report`)."""
        return ""

    # -- calls back to the sender (status callbacks, event webhooks) --------------------------

    def spawn(self, coroutine) -> None:
        """Run a callback in the background, after the answer to the request that caused it."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until every callback started so far has been posted (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def post_back(self, url: str, body: bytes, headers: Mapping[str, str]) -> int | str:
        """POST a callback; the answer's status, or the name of the error."""
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            # the URL exactly as given (not re-quoted): Twilio's signature covers it byte for byte
            async with self._client.post(yarl.URL(url, encoded=True), data=body, headers=dict(headers)) as response:
                await response.read()
                return response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            return type(exc).__name__

    def inject(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()
        self.received.clear()
        self.deliveries.clear()

    def _take_fault(self, recipient: str, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.recipient not in (None, recipient) or fault.method not in (None, method):
                continue
            if fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
            return fault
        return None

    async def _apply(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.kind == "hang":
            await asyncio.sleep(fault.delay)
            return self.error_response(504, None, "gateway timeout")
        if fault.kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if fault.kind == "throttle":
            return self.throttle_response(fault.retry_after)
        if fault.kind == "error":
            return self.error_response(fault.status, fault.code, fault.message)
        return self.error_response(fault.status, fault.code, fault.message or "internal server error")

    # -- the control API -------------------------------------------------------------------

    async def _control_fault(self, request: web.Request) -> web.Response:
        try:
            fault = Fault(**await request.json())
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.inject(fault)
        return web.json_response(attrs.asdict(fault), status=201)

    async def _control_received(self, request: web.Request) -> web.Response:
        return web.json_response([r.record() for r in self.received])

    async def _control_deliveries(self, request: web.Request) -> web.Response:
        return web.json_response([d.record() for d in self.deliveries])

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.clear()
        return web.json_response({"ok": True})


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def json_body(body: bytes) -> Any:
    """The parsed JSON body, or raise ValueError."""
    return json.loads(body.decode("utf-8"))


def loopback_url(url: str) -> bool:
    """Whether `url` points at this machine: the only place local servers post callbacks to."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
