"""LINE Messaging API: push one text or Flex message to one user.

The retry key is derived from the ledger key, so a retry after a 5xx or a timeout is safe: LINE
answers 409 to a key it already accepted, and that counts as sent.
"""

from __future__ import annotations

from yarl import URL

from .http import HttpAdapter, dumps
from .idempotency import line_retry_key
from .messages import LineFlex, OutgoingMessage, SendResult, Text


class LineAdapter(HttpAdapter):
    def __init__(self, context) -> None:
        super().__init__(context)
        self._method, self._url = self.url("push")
        self._target = URL(self._url)  # parsed once, not on every request
        self._headers = {"Authorization": f"Bearer {context.secrets['token']}",
                         "Content-Type": "application/json"}
        self._notification_disabled = bool(context.options.get("notification_disabled", False))

    async def send(self, message: OutgoingMessage) -> SendResult:
        body = self.build_body(message)
        if body is None:
            return self.refused("unsupported_content", f"LINE cannot send {type(message.content).__name__}")
        headers = {**self._headers, "X-Line-Retry-Key": line_retry_key(message.key)}
        facts, _ = await self.exchange(self._method, self._target, body=dumps(body), headers=headers)
        return self.result(facts)

    def build_body(self, message: OutgoingMessage) -> dict | None:
        """The `PushMessageRequest` for this message (None for content LINE cannot carry)."""
        line_message = line_message_object(message.content)
        if line_message is None:
            return None
        body = {"to": message.to, "messages": [line_message]}
        if self._notification_disabled:
            body["notificationDisabled"] = True
        unit = message.metadata.get("aggregation_unit")
        if unit:
            body["customAggregationUnits"] = [unit]
        return body


def line_message_object(content) -> dict | None:
    if isinstance(content, Text):
        return {"type": "text", "text": content.body}
    if isinstance(content, LineFlex):
        return {"type": "flex", "altText": content.alt_text, "contents": dict(content.contents)}
    return None
