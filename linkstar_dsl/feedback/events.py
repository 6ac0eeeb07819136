"""One normalized shape for what providers report after a send, and the errors of reading it.

Every receiver turns a provider's webhook request (`Inbound`: the URL it was posted to, its
headers and its raw body) into `FeedbackEvent`s.  A request whose signature is missing or wrong
raises `SignatureError`; one that is signed but not in the provider's shape raises
`FeedbackError`.  Both carry a message fit to return to the caller; neither is a traceback.
"""

from __future__ import annotations

import json

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from ..schema import CHANNELS

#: What a provider can tell us about a message or a recipient.
KINDS = ("delivered", "failed", "bounced_hard", "bounced_soft", "complaint", "unsubscribed", "opened",
         "clicked", "replied", "unfollowed", "followed", "stop", "start")

#: Bodies larger than this are refused before parsing: no provider batch comes close.
MAX_BODY = 1024 * 1024


class FeedbackError(ValueError):
    """A body that is not what the provider sends (not JSON, a field missing or of the wrong type)."""


class SignatureError(FeedbackError):
    """A request whose signature (or token) is missing or does not match: not from the provider."""


def _check_kind(instance, attribute, value) -> None:
    if value not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {value!r}")


def _check_channel(instance, attribute, value) -> None:
    if value not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {value!r}")


@attrs.frozen
class FeedbackEvent:
    """One thing a provider reported, in the same shape for every provider.

    `provider_event_id` is unique per provider and the same when the provider delivers the event
    again, so applying it twice changes nothing.  `address` is the recipient as the channel knows
    it (an email address, an E.164 number, a LINE user id); `provider_message_id` is the id the
    provider gave the message when it was sent (the ledger's `provider_id`); `ledger_key` is our
    own key when the provider echoes it back (Twilio's callback URL, SendGrid's `custom_args`,
    WhatsApp's `biz_opaque_callback_data`).  `occurred_at` is None when the provider gives no time.
    """

    provider: str
    provider_event_id: str
    kind: str = attrs.field(validator=_check_kind)
    channel: str = attrs.field(validator=_check_channel)
    address: str | None = None
    provider_message_id: str | None = None
    occurred_at: datetime | None = None
    detail: Mapping[str, Any] = attrs.field(factory=dict)
    ledger_key: str | None = None


@attrs.frozen
class Inbound:
    """A webhook request as received: the full URL it was posted to, its headers, its raw body."""

    url: str
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def of(cls, url: str, headers: Mapping[str, str], body: bytes) -> Inbound:
        """Header names are matched without regard to case, as HTTP says."""
        return cls(url, {str(k).lower(): str(v) for k, v in headers.items()}, bytes(body))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def check_size(inbound: Inbound) -> None:
    if len(inbound.body) > MAX_BODY:
        raise FeedbackError(f"body of {len(inbound.body)} bytes is over the {MAX_BODY}-byte limit")


def signed_json(inbound: Inbound, header: str, expected: str, *, lower: bool = False) -> Any:
    """The JSON body of a request signed in `header`, once the size and the signature check out.

    `expected` is the signature the body should carry; `lower` compares hex digests without case.
    """
    check_size(inbound)
    given = inbound.header(header)
    if not given:
        raise SignatureError(f"the {header} header is missing")
    if not same(expected, given.strip().lower() if lower else given):
        raise SignatureError(f"{header} does not match the body")
    try:
        return json.loads(inbound.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FeedbackError("the body is not JSON") from None


def same(expected: str, given: str | None) -> bool:
    """Constant-time comparison of two signatures or tokens."""
    return given is not None and hmac.compare_digest(expected.encode(), given.strip().encode())


def from_epoch(value: Any, *, millis: bool = False, field: str = "timestamp") -> datetime:
    """A provider's Unix time (seconds, or milliseconds) as an aware UTC datetime."""
    try:
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if millis else number, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise FeedbackError(f"`{field}` must be a Unix time, not {value!r}") from None


def text_field(record: Mapping, name: str, where: str) -> str:
    """A required non-empty string field, or a clear error naming it."""
    value = record.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise FeedbackError(f"{where}: `{name}` is missing or not a string")
    return value
