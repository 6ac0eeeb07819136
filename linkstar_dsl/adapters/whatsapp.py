"""WhatsApp Cloud API: template messages at any time, free-form text inside the 24-hour window.

Free-form text outside the customer-service window is refused here (`REROUTE`, so the runtime
moves on to a template or the next channel) rather than sent for Meta to refuse with 131047.
The ledger key travels in `biz_opaque_callback_data`, which the status webhooks echo back.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .http import HttpAdapter, dumps
from .messages import OutgoingMessage, SendResult, Text, WhatsAppTemplate


class WhatsAppAdapter(HttpAdapter):
    def __init__(self, context, *, clock=None) -> None:
        super().__init__(context)
        version = context.options.get("api_version", context.description.extra.get("api_version", "v21.0"))
        self._method, self._url = self.url("messages", version=version,
                                           phone_number_id=str(context.options["phone_number_id"]))
        self._headers = {"Authorization": f"Bearer {context.secrets['token']}",
                         "Content-Type": "application/json"}
        self._now = clock or (lambda: datetime.now(timezone.utc))

    async def send(self, message: OutgoingMessage) -> SendResult:
        content = message.content
        if isinstance(content, Text) and not self._inside_window(message):
            return self.refused("outside_session_window", "free-form text needs an open 24-hour window")
        body = self.build_body(message)
        if body is None:
            return self.refused("unsupported_content", f"WhatsApp cannot send {type(content).__name__}")
        facts, _ = await self.exchange(self._method, self._url, body=dumps(body), headers=self._headers)
        return self.result(facts)

    def _inside_window(self, message: OutgoingMessage) -> bool:
        return message.session_until is not None and self._now() < message.session_until

    def build_body(self, message: OutgoingMessage) -> dict | None:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": message.to.lstrip("+"), "biz_opaque_callback_data": message.key[:512]}
        content = message.content
        if isinstance(content, WhatsAppTemplate):
            template = {"name": content.name, "language": {"code": content.language}}
            if content.components:
                template["components"] = [dict(c) for c in content.components]
            return {**body, "type": "template", "template": template}
        if isinstance(content, Text):
            return {**body, "type": "text", "text": {"preview_url": False, "body": content.body}}
        return None
