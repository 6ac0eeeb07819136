"""Signed, expiring links in a message: unsubscribe and the preference page.

A link is `{base}/u/{token}` (unsubscribe) or `{base}/p/{token}` (preferences).  The token is
`{payload}.{signature}`, both URL-safe base64 without padding: the payload is compact JSON with
the customer, the channel, the message's ledger key, the action and the expiry (Unix seconds);
the signature is HMAC-SHA256 of the encoded payload under the caller's secret.  Anyone can read
a token, nobody without the secret can make or alter one, and `verify` refuses it after expiry.

The secret comes from the caller, normally the `LINKSTAR_LINK_SECRET` environment variable.
`DEMO_SECRET` exists only so the demo and tests work on a fresh machine with nothing configured;
a link signed with it can be forged by anyone who reads this file.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from json.encoder import encode_basestring

import attrs

SECRET_ENV = "LINKSTAR_LINK_SECRET"
#: Used only when no secret is configured at all.  Public: never use it for real buyers.
DEMO_SECRET = "linkstar-demo-link-secret--public--not-for-production"
MIN_SECRET_BYTES = 16
ACTIONS = {"unsubscribe": "u", "preferences": "p"}
TOKEN_VERSION = 1
#: How compact JSON (`separators=(",", ":")`, `ensure_ascii=False`) writes a string: the payload is
#: written field by field with it, in the order `v`, `a`, `c`, `ch`, `k`, `x`.
_json_text = encode_basestring


class LinkError(ValueError):
    """A token that must not be honoured; `reason` is `malformed`, `forged` or `expired`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@attrs.frozen
class LinkPayload:
    """What a verified token says: who, on which channel, for which message, until when."""

    customer_id: str
    channel: str
    message_key: str
    action: str
    expires: datetime


def secret_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The configured link secret, or None when the environment does not set one."""
    value = (os.environ if environ is None else environ).get(SECRET_ENV, "")
    return value or None


def unsubscribe_url(base_url: str, secret: str | bytes, key: str, customer_id: str, channel: str,
                    expires: datetime) -> str:
    """The one-click unsubscribe link of one message."""
    return _url(base_url, sign(secret, "unsubscribe", key, customer_id, channel, expires), "unsubscribe")


def preferences_url(base_url: str, secret: str | bytes, key: str, customer_id: str, channel: str,
                    expires: datetime) -> str:
    """The link to the customer's preference page (which channels, which kinds of message)."""
    return _url(base_url, sign(secret, "preferences", key, customer_id, channel, expires), "preferences")


def message_links(base_url: str, secret: str | bytes, key: str, customer_id: str, channel: str,
                  expires: datetime) -> tuple[str, str]:
    """`unsubscribe_url` and `preferences_url` of one message, the checks and the payload's common
    part done once."""
    fields = _payload_fields(key, customer_id, channel, expires)
    unsubscribe = _token(secret, "unsubscribe", fields)
    preferences = _token(secret, "preferences", fields)
    return _url(base_url, unsubscribe, "unsubscribe"), _url(base_url, preferences, "preferences")


def _url(base_url: str, token: str, action: str) -> str:
    if not base_url.startswith(("https://", "http://")):
        raise ValueError(f"the link base URL must start with https:// (got {base_url!r})")
    return f"{base_url.rstrip('/')}/{ACTIONS[action]}/{token}"


def sign(secret: str | bytes, action: str, key: str, customer_id: str, channel: str, expires: datetime) -> str:
    """A token for `action` (`unsubscribe` or `preferences`)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown link action {action!r}; expected one of {', '.join(ACTIONS)}")
    return _token(secret, action, _payload_fields(key, customer_id, channel, expires))


def _payload_fields(key: str, customer_id: str, channel: str, expires: datetime) -> str:
    """The payload's JSON after the action (the part both links of a message share)."""
    if expires.tzinfo is None:
        raise ValueError("the expiry of a link must be a time-zone-aware datetime")
    for name, value in (("message key", key), ("customer id", customer_id), ("channel", channel)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"a link needs a non-empty {name}")
    return (f',"c":{_json_text(customer_id)},"ch":{_json_text(channel)},"k":{_json_text(key)},'
            f'"x":{int(expires.timestamp())!r}}}')


def _token(secret: str | bytes, action: str, fields: str) -> str:
    payload = f'{{"v":{TOKEN_VERSION!r},"a":{_json_text(action)}{fields}'
    encoded = _b64encode(payload.encode())
    return f"{encoded}.{_b64encode(_mac(secret, encoded))}"


def verify(token: str, secret: str | bytes, now: datetime, *, action: str | None = None) -> LinkPayload:
    """The payload of a genuine, unexpired token, or `LinkError` saying why not.

    With `action`, a token made for another action (a preference link used to unsubscribe) is
    refused as malformed.
    """
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 4096:
        raise LinkError("malformed", "the link is not a LinkStar link token")
    encoded, signature = token.split(".")
    try:
        given = _b64decode(signature)
        _b64decode(encoded)
    except ValueError:
        raise LinkError("malformed", "the link token is not valid URL-safe base64") from None
    if not hmac.compare_digest(given, _mac(secret, encoded)):
        raise LinkError("forged", "the link's signature does not match: it was altered or not made by us")
    try:
        data = json.loads(_b64decode(encoded))
        expiry = data["x"]
        if data.get("v") != TOKEN_VERSION or data.get("a") not in ACTIONS or type(expiry) is not int:
            raise ValueError("unknown version, action or expiry")
        payload = LinkPayload(customer_id=_text(data, "c"), channel=_text(data, "ch"), message_key=_text(data, "k"),
                              action=data["a"], expires=datetime.fromtimestamp(expiry, tz=timezone.utc))
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise LinkError("malformed", "the link's contents cannot be read") from None
    if action is not None and payload.action != action:
        raise LinkError("malformed", f"this is a {payload.action} link, not a {action} link")
    if now >= payload.expires:
        raise LinkError("expired", f"the link expired at {payload.expires:%Y-%m-%dT%H:%M:%SZ}")
    return payload


def _text(data: dict, name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def _mac(secret: str | bytes, encoded: str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the link secret must be at least {MIN_SECRET_BYTES} bytes long; "
                         f"set {SECRET_ENV} to a long random value")
    mac = _keyed(key).copy()
    mac.update(encoded.encode("ascii"))
    return mac.digest()


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    """The HMAC state after the key, made once per secret: every message signs two links, and keying
    costs about as much as signing a short payload.  Callers copy it, never update it."""
    return hmac.new(key, digestmod=hashlib.sha256)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not URL-safe base64")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not URL-safe base64") from exc


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
