"""SendGrid's Event Webhook: a JSON array of events about the mail we sent.

Mapping: `delivered` → delivered; `bounce` → bounced_hard, or bounced_soft when its `type` is
`blocked` (the receiver refused this message, not the address); `dropped` → what SendGrid's own
suppression says (`Bounced Address`, `Invalid` → bounced_hard, `Spam Reporting Address` →
complaint, `Unsubscribed Address` → unsubscribed), otherwise failed; `spamreport` → complaint;
`unsubscribe` and `group_unsubscribe` → unsubscribed (the latter with its `asm_group_id` and,
when `groups` maps that group to a purpose, the purpose); `open` → opened; `click` → clicked.
`processed`, `deferred` and `group_resubscribe` carry nothing to act on.  Each event's
`sg_event_id` is its id; `sg_message_id` up to its first dot is the `X-Message-Id` the send got;
our ledger key comes back in `custom_args` as `msg_key`.

Authentication, one of:

* **Signed Event Webhook** (`public_key`): SendGrid signs the timestamp header followed by the
  raw body with ECDSA P-256/SHA-256 and sends the signature (Base64 DER) in
  `X-Twilio-Email-Event-Webhook-Signature` and the time in
  `X-Twilio-Email-Event-Webhook-Timestamp`.  The key is the Base64 (or PEM) public key from
  SendGrid's settings.  Verifying it needs the optional `cryptography` package.
* **Shared token** (`token`): a secret put in the webhook URL's credentials
  (`https://linkstar:TOKEN@host/path`, sent by SendGrid as HTTP Basic) or sent as
  `Authorization: Bearer TOKEN` (SendGrid's OAuth option); the password or token must match.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable, Mapping

from .events import (
    FeedbackError,
    FeedbackEvent,
    Inbound,
    SignatureError,
    check_size,
    from_epoch,
    same,
    text_field,
)

try:  # optional: only the signed Event Webhook needs it
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
except ImportError:  # pragma: no cover - depends on the installation
    ec = None

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

SIMPLE = {"delivered": "delivered", "spamreport": "complaint", "unsubscribe": "unsubscribed",
          "group_unsubscribe": "unsubscribed", "open": "opened", "click": "clicked"}
DROPPED = {"bounced address": "bounced_hard", "invalid": "bounced_hard", "spam reporting address": "complaint",
           "unsubscribed address": "unsubscribed"}


def ecdsa_available() -> bool:
    return ec is not None


class SendGridEvents:
    """Receiver for SendGrid's Event Webhook, verified by signature or by a shared token."""

    provider = PROVIDER

    def __init__(self, *, public_key: str | None = None, token: str | None = None,
                 groups: Mapping[int, str] | None = None, tolerance: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not public_key and not token:
            raise ValueError("a SendGrid receiver needs the webhook's public key or a shared token")
        self._key = _load_key(public_key) if public_key else None
        self._token = token
        self._groups = {int(k): v for k, v in (groups or {}).items()}
        self._tolerance, self._clock = tolerance, clock

    def parse(self, inbound: Inbound) -> list[FeedbackEvent]:
        check_size(inbound)
        self._verify(inbound)
        try:
            document = json.loads(inbound.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise FeedbackError("the body is not JSON") from None
        if not isinstance(document, list):
            raise FeedbackError("the body must be a JSON array of events")
        found = []
        for index, record in enumerate(document):
            if not isinstance(record, dict):
                raise FeedbackError(f"event {index} is not a JSON object")
            event = self._event(record, f"event {index}")
            if event is not None:
                found.append(event)
        return found

    def _verify(self, inbound: Inbound) -> None:
        if self._key is not None:
            given, stamp = inbound.header(SIGNATURE_HEADER), inbound.header(TIMESTAMP_HEADER)
            if given and stamp:
                self._verify_signature(given, stamp, inbound.body)
                return
            if not self._token:
                raise SignatureError(f"the {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header is missing")
        if not _token_matches(self._token, inbound.header("Authorization")):
            raise SignatureError("the webhook's token is missing or wrong (HTTP Basic password or Bearer token)")

    def _verify_signature(self, given: str, stamp: str, body: bytes) -> None:
        try:
            when = float(stamp)
            der = base64.b64decode(given, validate=True)
        except (ValueError, binascii.Error):
            raise SignatureError("the signature or timestamp header is not well-formed") from None
        if abs(self._clock() - when) > self._tolerance:
            raise SignatureError(f"the timestamp is more than {self._tolerance:g} s away from now")
        try:
            self._key.verify(der, stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body") from None

    def _event(self, record: dict, where: str) -> FeedbackEvent | None:
        name = text_field(record, "event", where)
        kind = _kind(name, record)
        if kind is None:
            return None
        address = text_field(record, "email", where)
        when = from_epoch(record.get("timestamp"), field=f"{where}: timestamp")
        event_id = record.get("sg_event_id")
        if not isinstance(event_id, str) or not event_id:
            # older events have no id: one derived from the record is stable across redeliveries
            event_id = "sha256:" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        message_id = record.get("sg_message_id")
        message_id = message_id.split(".", 1)[0] if isinstance(message_id, str) and message_id else None
        detail = {"event": name}
        for field in ("type", "status", "reason", "url", "asm_group_id"):
            if record.get(field) not in (None, ""):
                detail[field] = record[field]
        if name == "group_unsubscribe":
            purpose = self._groups.get(_as_int(record.get("asm_group_id")))
            if purpose:
                detail["purpose"] = purpose
        key = record.get("msg_key") if isinstance(record.get("msg_key"), str) else None
        return FeedbackEvent(PROVIDER, event_id, kind, "email", address, message_id, when, detail, key)


def _kind(name: str, record: dict) -> str | None:
    if name in SIMPLE:
        return SIMPLE[name]
    if name == "bounce":
        return "bounced_soft" if str(record.get("type", "")).lower() == "blocked" else "bounced_hard"
    if name == "blocked":
        return "bounced_soft"
    if name == "dropped":
        return DROPPED.get(str(record.get("reason", "")).strip().lower(), "failed")
    return None


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _token_matches(token: str | None, header: str | None) -> bool:
    if not token or not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return same(token, value)
    if scheme.lower() == "basic":
        try:
            password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return False
        return same(token, password)
    return False


def _load_key(text: str):
    if ec is None:
        raise ValueError("verifying SendGrid's signed Event Webhook needs the `cryptography` package; "
                         "install it, or authenticate the webhook with a shared token instead")
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error, TypeError):
        key = None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key
    raise ValueError("the SendGrid public key is not a Base64 or PEM elliptic-curve public key")
