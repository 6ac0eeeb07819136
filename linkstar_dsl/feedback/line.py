"""LINE's Messaging API webhook: follow, unfollow and message events.

LINE signs the raw body with HMAC-SHA256 keyed with the channel secret and sends the Base64
digest in `x-line-signature`.  The body is `{"destination": "U…", "events": [...]}`; an empty
`events` array is LINE checking that the URL works.  `follow` → followed (with `is_unblocked`
from `follow.isUnblocked`), `unfollow` (the user blocked the account) → unfollowed, `message` →
replied (its content is not kept); other event types carry nothing to act on.  Each event's
`webhookEventId` is its id, the same when LINE redelivers it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from .events import (
    FeedbackError,
    FeedbackEvent,
    Inbound,
    from_epoch,
    signed_json,
    text_field,
)

PROVIDER = "line"
SIGNATURE_HEADER = "x-line-signature"
KINDS = {"follow": "followed", "unfollow": "unfollowed", "message": "replied"}


def signature(channel_secret: str, body: bytes) -> str:
    """The `x-line-signature` LINE sends for `body`."""
    return base64.b64encode(hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()).decode()


class LineWebhook:
    provider = PROVIDER

    def __init__(self, channel_secret: str) -> None:
        if not channel_secret:
            raise ValueError("a LINE receiver needs the channel secret")
        self._secret = channel_secret

    def parse(self, inbound: Inbound) -> list[FeedbackEvent]:
        document = signed_json(inbound, SIGNATURE_HEADER, signature(self._secret, inbound.body))
        if not isinstance(document, dict) or not isinstance(document.get("events"), list):
            raise FeedbackError("the body must be an object with an `events` array")
        text_field(document, "destination", "the body")
        found = []
        for index, event in enumerate(document["events"]):
            if not isinstance(event, dict):
                raise FeedbackError(f"event {index} is not a JSON object")
            parsed = _event(event, f"event {index}")
            if parsed is not None:
                found.append(parsed)
        return found


def _event(event: dict, where: str) -> FeedbackEvent | None:
    kind = KINDS.get(text_field(event, "type", where))
    if kind is None:
        return None
    event_id = text_field(event, "webhookEventId", where)
    when = from_epoch(event.get("timestamp"), millis=True, field=f"{where}: timestamp")
    source = event.get("source")
    user = source.get("userId") if isinstance(source, dict) else None
    if not isinstance(user, str) or not user:
        if kind == "replied":
            return None  # a group message from a client that does not say who wrote it
        raise FeedbackError(f"{where}: `source.userId` is missing")
    detail: dict = {}
    if kind == "followed":
        follow = event.get("follow")
        detail["is_unblocked"] = bool(follow.get("isUnblocked")) if isinstance(follow, dict) else False
    elif kind == "replied":
        message = event.get("message")
        detail = {"inbound": True, "type": str(message.get("type", "")) if isinstance(message, dict) else ""}
    context = event.get("deliveryContext")
    if isinstance(context, dict) and context.get("isRedelivery"):
        detail["redelivery"] = True
    return FeedbackEvent(PROVIDER, event_id, kind, "line", user, None, when, detail)
