"""A local receiver for the signed outbound webhook, behaving as a careful receiver should.

It verifies the Standard Webhooks signature on the raw body (401 when the signature or the
timestamp is wrong), answers 200, and dedupes on `webhook-id`: a repeat is acknowledged but not
delivered again.  It also takes the delivery reports providers post back (`POST
/status/{provider}`, form-encoded as Twilio sends them) into `status_reports`.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl

from aiohttp import web

from ..adapters.webhook import verify_signature
from .base import Parsed, ProviderServer, Refusal, json_body

TEST_SECRET = "whsec_" + base64.b64encode(b"linkstar-local-webhook-secret-32b").decode()


class WebhookReceiver(ProviderServer):
    name = "webhook"

    def __init__(self, *, secret: str = TEST_SECRET, path: str = "/hooks/linkstar", **kwargs) -> None:
        super().__init__(**kwargs)
        self.secret, self.path = secret, path
        self.seen_ids: set[str] = set()
        self.rejected = 0
        self.status_reports: list[dict] = []

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def clear(self) -> None:
        super().clear()
        self.seen_ids.clear()
        self.status_reports.clear()

    def routes(self):
        return [("POST", self.path, self.receive), ("POST", "/status/{provider}", self.status_report)]

    async def status_report(self, request: web.Request, body: bytes) -> web.Response:
        """Delivery reports a provider posts back (Twilio's StatusCallback), kept as they came."""
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        report = {"provider": request.match_info["provider"], **dict(request.query), **form}
        self.status_reports.append(report)
        return web.Response(status=204)

    def error_response(self, status, code, message):
        return web.json_response({"error": message or "failed"}, status=status)

    async def receive(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if not verify_signature(self.secret, request.headers, body):
            self.rejected += 1
            return self.error_response(401, None, "invalid signature")
        try:
            document = json_body(body)
        except ValueError:
            raise Refusal(self.error_response(400, None, "body is not JSON")) from None
        message_id = request.headers["webhook-id"]
        parsed = Parsed(str((document.get("data") or {}).get("to", "")), document, message_id)
        return await self.respond(request, parsed, lambda: self.accept(parsed), lambda: self.repeat(parsed))

    def describe(self, payload) -> str:
        data = payload.get("data") or {}
        return f"{payload.get('type')} {data.get('channel')} {data.get('key')}"

    def repeat(self, parsed: Parsed) -> web.Response | None:
        if parsed.key in self.seen_ids:
            return web.json_response({"ok": True, "duplicate": True})
        return None

    def accept(self, parsed: Parsed) -> web.Response:
        self.seen_ids.add(parsed.key)
        self.deliver(parsed, parsed.key)
        return web.json_response({"ok": True}, headers={"X-Request-Id": parsed.key})
