"""Twilio's webhooks: message status callbacks and inbound SMS (STOP, START, HELP and replies).

Both are form-encoded POSTs signed in `X-Twilio-Signature`: the Base64 HMAC-SHA1, keyed with the
account's Auth Token, of the full URL Twilio posted to followed by every POST parameter's name
and value, sorted by name.  The URL must be the one configured at Twilio (the public URL, not the
one a proxy forwards to); a URL with or without the default port is accepted, as Twilio's own
validators do.

Status callbacks carry `MessageSid`, `MessageStatus` and, when delivery failed, `ErrorCode`:
`delivered` → delivered, `read` → opened, `undelivered`/`failed` → stop (21610), bounced_hard
(21614, 21635, 30006: the number cannot take SMS), bounced_soft (30003: the handset was
unreachable) or failed.  Intermediate statuses (`queued`, `sent`, …) carry no feedback.  The
ledger key our adapter put in the callback URL (`msg_key`) comes back with them.

Inbound messages whose whole body is an opt-out keyword (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END,
QUIT, REVOKE, OPTOUT) are `stop`; START, UNSTOP and YES are `start`; anything else (HELP
included, noted in the detail) is `replied`.  The body's text is not kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from .events import FeedbackError, FeedbackEvent, Inbound, SignatureError, check_size, same, text_field

PROVIDER = "twilio"
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

#: Delivery error codes of a status callback that say the number itself cannot take SMS.
UNDELIVERABLE = frozenset({"21614", "21635", "30006"})
TRANSIENT = frozenset({"30003"})
OPTED_OUT = frozenset({"21610"})
#: Statuses on the way to the final one: nothing to record.
INTERMEDIATE = frozenset({"accepted", "scheduled", "queued", "sending", "sent", "receiving", "received",
                          "canceled", "partially_delivered"})


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The `X-Twilio-Signature` Twilio computes for a POST of `params` to `url`."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, and with its default port added or removed."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if default is None or parts.hostname is None:
        return [url]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = userinfo + "@" if userinfo else ""
    if parts.port is None:
        other = parts._replace(netloc=f"{prefix}{host}:{default}")
    elif parts.port == default:
        other = parts._replace(netloc=prefix + host)
    else:
        return [url]
    return [url, urlunsplit(other)]


class _TwilioReceiver:
    def __init__(self, auth_token: str) -> None:
        if not auth_token:
            raise ValueError("a Twilio receiver needs the account's Auth Token")
        self._token = auth_token

    def _verified_form(self, inbound: Inbound) -> dict[str, str]:
        check_size(inbound)
        try:
            text = inbound.body.decode("utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
        except (UnicodeDecodeError, ValueError):
            raise FeedbackError("the body is not form-encoded (application/x-www-form-urlencoded)") from None
        given = inbound.header("X-Twilio-Signature")
        if not given:
            raise SignatureError("the X-Twilio-Signature header is missing")
        if not any(same(signature(self._token, url, pairs), given) for url in _url_variants(inbound.url)):
            raise SignatureError("X-Twilio-Signature does not match the URL and parameters")
        return dict(pairs)


def _sid(form: dict[str, str], where: str) -> str:
    sid = form.get("MessageSid") or form.get("SmsSid")
    if not sid:
        raise FeedbackError(f"{where}: `MessageSid` is missing")
    return sid


def _channel_and_address(value: str) -> tuple[str, str]:
    if value.lower().startswith("whatsapp:"):
        return "whatsapp", value.split(":", 1)[1]
    return "sms", value


class TwilioStatus(_TwilioReceiver):
    """Message status callbacks (`StatusCallback` URL of a sent message)."""

    provider = PROVIDER

    def parse(self, inbound: Inbound) -> list[FeedbackEvent]:
        form = self._verified_form(inbound)
        sid = _sid(form, "status callback")
        status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        if not status:
            raise FeedbackError("status callback: `MessageStatus` is missing")
        kind = _status_kind(status, form.get("ErrorCode") or "")
        if kind is None:
            return []
        channel, address = _channel_and_address(text_field(form, "To", "status callback"))
        detail = {"status": status}
        if form.get("ErrorCode"):
            detail["code"] = form["ErrorCode"]
        key = parse_qs(urlsplit(inbound.url).query).get("msg_key", [None])[0]
        return [FeedbackEvent(PROVIDER, f"{sid}:{status}", kind, channel, address, sid, None, detail, key)]


def _status_kind(status: str, code: str) -> str | None:
    if status == "delivered":
        return "delivered"
    if status == "read":
        return "opened"
    if status in ("undelivered", "failed"):
        if code in OPTED_OUT:
            return "stop"
        if code in UNDELIVERABLE:
            return "bounced_hard"
        return "bounced_soft" if code in TRANSIENT else "failed"
    return None  # intermediate or a status Twilio added later: nothing to act on


class TwilioInbound(_TwilioReceiver):
    """Messages buyers send to our number: opt-out and opt-in keywords, HELP, replies."""

    provider = PROVIDER

    def parse(self, inbound: Inbound) -> list[FeedbackEvent]:
        form = self._verified_form(inbound)
        sid = _sid(form, "inbound message")
        channel, address = _channel_and_address(text_field(form, "From", "inbound message"))
        word = (form.get("Body") or "").strip().rstrip(".!").strip().upper()
        opt_out_type = (form.get("OptOutType") or "").upper()  # set by Twilio's Advanced Opt-Out
        if channel == "sms" and (word in STOP_WORDS or opt_out_type == "STOP"):
            kind, detail = "stop", {"keyword": word or opt_out_type}
        elif channel == "sms" and (word in START_WORDS or opt_out_type == "START"):
            kind, detail = "start", {"keyword": word or opt_out_type}
        elif word in HELP_WORDS or opt_out_type == "HELP":
            kind, detail = "replied", {"keyword": "HELP"}
        else:
            kind, detail = "replied", {}
        return [FeedbackEvent(PROVIDER, sid, kind, channel, address, None, None, {"inbound": True, **detail})]
