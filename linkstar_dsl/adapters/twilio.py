"""SMS through a Twilio-style Messages API: form-encoded, HTTP Basic auth, status callbacks.

Twilio has no idempotency key on create, so the ledger key rides in the StatusCallback URL: the
delivery report names the message it is about, and a doubtful attempt can be reconciled.
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from .http import HttpAdapter
from .messages import OutgoingMessage, SendResult, Text


class TwilioAdapter(HttpAdapter):
    def __init__(self, context) -> None:
        super().__init__(context)
        sid, token = context.secrets["account_sid"], context.secrets["auth_token"]
        self._method, self._url = self.url("messages", account_sid=sid)
        basic = base64.b64encode(f"{sid}:{token}".encode()).decode()
        self._headers = {"Authorization": f"Basic {basic}",
                         "Content-Type": "application/x-www-form-urlencoded"}
        options = context.options
        self._sender = ({"MessagingServiceSid": options["messaging_service_sid"]}
                        if options.get("messaging_service_sid") else {"From": options.get("from", "")})
        self._status_callback = options.get("status_callback")

    async def send(self, message: OutgoingMessage) -> SendResult:
        form = self.build_form(message)
        if form is None:
            return self.refused("unsupported_content", f"SMS cannot send {type(message.content).__name__}")
        facts, _ = await self.exchange(self._method, self._url, body=urlencode(form).encode(),
                                       headers=self._headers)
        return self.result(facts)

    def build_form(self, message: OutgoingMessage) -> dict | None:
        if not isinstance(message.content, Text):
            return None
        form = {"To": message.to, **self._sender, "Body": message.content.body}
        if self._status_callback:
            joiner = "&" if "?" in self._status_callback else "?"
            form["StatusCallback"] = f"{self._status_callback}{joiner}{urlencode({'msg_key': message.key})}"
        return form
