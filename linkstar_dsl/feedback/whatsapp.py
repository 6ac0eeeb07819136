"""The WhatsApp Cloud API webhook: message statuses and inbound messages.

Meta signs the raw body with HMAC-SHA256 keyed with the app secret and sends
`X-Hub-Signature-256: sha256=<hex>`.  The body is
`{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": …}]}]}`
where a value holds `statuses` (about messages we sent) and `messages` (sent to us).

Statuses: `delivered` → delivered, `read` → opened, `failed` → by its error code: 131050 (the
user stopped marketing messages) → unsubscribed, 131026 (the number cannot receive WhatsApp) →
bounced_hard, any other → failed.  `sent` carries nothing to act on.  An inbound message is
`replied` (its text is not kept).  A status's id is the message id (`wamid`) and the status; our
ledger key comes back in `biz_opaque_callback_data`.
"""

from __future__ import annotations

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

PROVIDER = "whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
FAILED_KINDS = {"131050": "unsubscribed", "131026": "bounced_hard"}
STATUS_KINDS = {"delivered": "delivered", "read": "opened"}


def signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class WhatsAppWebhook:
    provider = PROVIDER

    def __init__(self, app_secret: str) -> None:
        if not app_secret:
            raise ValueError("a WhatsApp receiver needs the app secret")
        self._secret = app_secret

    def parse(self, inbound: Inbound) -> list[FeedbackEvent]:
        document = signed_json(inbound, SIGNATURE_HEADER, signature(self._secret, inbound.body), lower=True)
        if not isinstance(document, dict) or not isinstance(document.get("entry"), list):
            raise FeedbackError("the body must be an object with an `entry` array")
        found = []
        for e, entry in enumerate(document["entry"]):
            changes = entry.get("changes") if isinstance(entry, dict) else None
            if not isinstance(changes, list):
                raise FeedbackError(f"entry {e}: `changes` is missing or not an array")
            for c, change in enumerate(changes):
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict):
                    raise FeedbackError(f"entry {e} change {c}: `value` is missing or not an object")
                found += _statuses(value.get("statuses"), f"entry {e} change {c}")
                found += _messages(value.get("messages"), f"entry {e} change {c}")
        return found


def _records(items, where: str, name: str) -> list[dict]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise FeedbackError(f"{where}: `{name}` must be an array of objects")
    return items


def _statuses(items, where: str) -> list[FeedbackEvent]:
    found = []
    for index, status in enumerate(_records(items, where, "statuses")):
        place = f"{where} status {index}"
        wamid = text_field(status, "id", place)
        state = text_field(status, "status", place).lower()
        detail: dict = {"status": state}
        if state == "failed":
            errors = status.get("errors")
            code = str(errors[0].get("code", "")) if isinstance(errors, list) and errors and \
                isinstance(errors[0], dict) else ""
            kind = FAILED_KINDS.get(code, "failed")
            if code:
                detail["code"] = code
            if kind == "unsubscribed":
                detail["purpose"] = "marketing"
        else:
            kind = STATUS_KINDS.get(state)
        if kind is None:
            continue
        recipient = text_field(status, "recipient_id", place)
        when = from_epoch(status.get("timestamp"), field=f"{place}: timestamp")
        key = status.get("biz_opaque_callback_data")
        found.append(FeedbackEvent(PROVIDER, f"{wamid}:{state}", kind, "whatsapp", recipient, wamid, when, detail,
                                   key if isinstance(key, str) and key else None))
    return found


def _messages(items, where: str) -> list[FeedbackEvent]:
    found = []
    for index, message in enumerate(_records(items, where, "messages")):
        place = f"{where} message {index}"
        wamid = text_field(message, "id", place)
        sender = text_field(message, "from", place)
        when = from_epoch(message.get("timestamp"), field=f"{place}: timestamp")
        found.append(FeedbackEvent(PROVIDER, wamid, "replied", "whatsapp", sender, None, when,
                                   {"inbound": True, "type": str(message.get("type", ""))}))
    return found
