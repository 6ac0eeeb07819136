"""A local Twilio Messages API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.

Form-encoded requests with HTTP Basic auth (`AccountSid:AuthToken`); 201 with the Message
resource (`sid` "SM…", status "queued"); errors as Twilio's JSON `{"code", "message",
"more_info", "status"}`: 20003 bad credentials, 21604/21211 missing or invalid `To`, 21603
missing sender, 21602 missing body, 21617 body over 1,600 characters, 21610 a recipient who
replied STOP, 21614 a number that cannot receive SMS, 20429 too many requests.

When the request names a `StatusCallback` on a loopback address, the server reports `sent` and
then `delivered` (or `undelivered` with the `ErrorCode` given for that number) to it, form-encoded
and signed in `X-Twilio-Signature` with the Auth Token, as Twilio does.  `send_inbound` posts a
message from a buyer (a reply, or a keyword such as STOP or START) to `inbound_url`, signed the
same way, as Twilio does for a number's incoming-message webhook.
"""

from __future__ import annotations

import base64
import re
import uuid
from email.utils import formatdate
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from ..feedback.twilio import signature
from .base import Parsed, ProviderServer, Refusal, loopback_url

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MESSAGES = {20003: "Authenticate", 20429: "Too Many Requests",
            21211: "The 'To' number is not a valid phone number.", 21602: "Message body is required.",
            21603: "A 'From' phone number is required.",
            21604: "A 'To' phone number is required.", 21610: "Attempt to send to unsubscribed recipient",
            21614: "'To' number is not a valid mobile number",
            21617: "The concatenated message body exceeds the 1600 character limit.",
            20500: "An internal server error has occurred"}


class TwilioServer(ProviderServer):
    name = "twilio"

    def __init__(self, *, account_sid: str = "AC" + "0" * 31 + "1", auth_token: str = "twilio-test-token",
                 stopped: set[str] | None = None, landlines: set[str] | None = None,
                 undelivered: dict[str, int] | None = None, inbound_url: str | None = None,
                 number: str = "+15005550006", **kwargs) -> None:
        super().__init__(**kwargs)
        self.account_sid, self.auth_token = account_sid, auth_token
        self.stopped = set(stopped or ())
        self.landlines = set(landlines or ())
        self.undelivered = dict(undelivered or {})
        self.inbound_url, self.number = inbound_url, number
        self.callbacks: list[dict] = []

    def routes(self):
        return [("POST", "/2010-04-01/Accounts/{account_sid}/Messages.json", self.create)]

    def error_response(self, status, code, message):
        code = int(code) if code is not None else {401: 20003, 429: 20429}.get(status, 20500)
        error = {"code": code, "message": message or MESSAGES.get(code, "Error"),
                 "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
        return web.json_response(error, status=status)

    async def create(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if request.match_info["account_sid"] != self.account_sid or not self._authorized(request):
            return self.error_response(401, 20003, None)
        parsed = self.parse(body)
        return await self.respond(request, parsed, lambda: self.accept(parsed))

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.account_sid and password == self.auth_token

    def describe(self, payload) -> str:
        return f"sms {payload.get('Body', '')[:40]!r}"

    def parse(self, body: bytes) -> Parsed:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        to = form.get("To", "")
        for failed, code in ((not to, 21604), (to and not E164.match(to), 21211),
                             (not form.get("From") and not form.get("MessagingServiceSid"), 21603),
                             (not form.get("Body") and not form.get("MediaUrl"), 21602),
                             (len(form.get("Body", "")) > 1600, 21617)):
            if failed:
                raise Refusal(self.error_response(400, code, None))
        return Parsed(to, form)

    def accept(self, parsed: Parsed) -> web.Response:
        if parsed.recipient in self.stopped:
            return self.error_response(400, 21610, None)
        if parsed.recipient in self.landlines:
            return self.error_response(400, 21614, None)
        form = parsed.payload
        sid = "SM" + uuid.uuid4().hex
        self.deliver(parsed, sid)
        if form.get("StatusCallback"):
            self._report(sid, form)
        return web.json_response({
            "sid": sid, "account_sid": self.account_sid, "to": parsed.recipient, "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"), "body": form.get("Body"),
            "status": "queued",
            "num_segments": str(max(1, -(-len(form.get("Body", "")) // 153))), "direction": "outbound-api",
            "api_version": "2010-04-01", "date_created": formatdate(usegmt=True), "error_code": None,
            "error_message": None, "price": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"}, status=201)

    def _report(self, sid: str, form: dict) -> None:
        url = form["StatusCallback"]
        if loopback_url(url):
            self.spawn(self._post_statuses(url, sid, form))

    async def _post_statuses(self, url: str, sid: str, form: dict) -> None:
        error = self.undelivered.get(form["To"])
        final = ("undelivered", error) if error else ("delivered", None)
        for status, code in (("sent", None), final):
            report = {"MessageSid": sid, "MessageStatus": status, "SmsStatus": status,
                      "AccountSid": self.account_sid, "To": form["To"], "From": form.get("From") or "",
                      "ApiVersion": "2010-04-01"}
            if code:
                report["ErrorCode"] = str(code)
            answer = await self._post_signed(url, report)
            self.callbacks.append({**report, "url": url, "answer": answer})

    async def send_inbound(self, sender: str, body: str, *, url: str | None = None) -> int | str:
        """A buyer's message to our number, posted to the incoming-message webhook; its answer."""
        url = url or self.inbound_url
        if not url:
            raise ValueError("no inbound_url is configured for incoming messages")
        sid = "SM" + uuid.uuid4().hex
        form = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": self.account_sid,
                "From": sender, "To": self.number, "Body": body, "NumMedia": "0", "NumSegments": "1",
                "ApiVersion": "2010-04-01"}
        answer = await self._post_signed(url, form)
        self.callbacks.append({**form, "url": url, "answer": answer})
        return answer

    async def _post_signed(self, url: str, form: dict) -> int | str:
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": signature(self.auth_token, url, form.items())}
        return await self.post_back(url, urlencode(form).encode(), headers)
