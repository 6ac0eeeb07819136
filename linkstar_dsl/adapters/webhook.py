"""A generic outbound webhook, signed the Standard Webhooks way.

Headers: `webhook-id` (derived from the ledger key; the receiver's dedupe key), `webhook-timestamp`
(Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}`.
The secret is `whsec_` followed by base64 of the key bytes (a bare base64 string is accepted too).
Redirects are never followed.  `verify_signature` is the receiver's side, for tests and users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import attrs

from .http import HttpAdapter, dumps
from .idempotency import webhook_id
from .messages import Email, LineFlex, OutgoingMessage, SendResult, Text, WhatsAppTemplate

TOLERANCE = 300


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_signature(secret: str, headers, body: bytes, *, now: float | None = None,
                     tolerance: int = TOLERANCE) -> bool:
    """True when one `v1` signature matches and the timestamp is within the tolerance."""
    try:
        message_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
        offered = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


class WebhookAdapter(HttpAdapter):
    def __init__(self, context, *, clock=time.time) -> None:
        super().__init__(context)
        self._url = context.base_url
        self._secret = context.secrets["signing_secret"]
        secret_bytes(self._secret)  # fail at start-up, not at the first send, on a malformed secret
        self._event = context.options.get("event_type", "linkstar.message")
        self._clock = clock

    async def send(self, message: OutgoingMessage) -> SendResult:
        body = dumps(self.build_payload(message))
        message_id, timestamp = webhook_id(message.key), int(self._clock())
        headers = {"Content-Type": "application/json", "webhook-id": message_id,
                   "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(self._secret, message_id, timestamp, body)}
        facts, _ = await self.exchange("POST", self._url, body=body, headers=headers)
        if facts.message_id is None and facts.status is not None and 200 <= facts.status < 300:
            facts = attrs.evolve(facts, message_id=message_id)
        return self.result(facts)

    def build_payload(self, message: OutgoingMessage) -> dict:
        return {"type": self._event, "timestamp": int(self._clock()),
                "data": {"key": message.key, "channel": message.channel, "to": message.to,
                         "purpose": message.purpose, "unsubscribe_url": message.unsubscribe_url,
                         "content": content_payload(message.content), "metadata": dict(message.metadata)}}


def content_payload(content) -> dict:
    if isinstance(content, Text):
        return {"kind": "text", "text": content.body}
    if isinstance(content, Email):
        return {"kind": "email", "subject": content.subject, "text": content.text, "html": content.html}
    if isinstance(content, LineFlex):
        return {"kind": "line_flex", "alt_text": content.alt_text, "contents": dict(content.contents)}
    if isinstance(content, WhatsAppTemplate):
        return {"kind": "whatsapp_template", "name": content.name, "language": content.language,
                "components": [dict(c) for c in content.components]}
    return {"kind": type(content).__name__}
