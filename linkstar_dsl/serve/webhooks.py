"""Provider feedback webhooks mounted on the service: LINE, Twilio, SendGrid and WhatsApp.

Each endpoint hands the raw request to its receiver in `linkstar_dsl.feedback` (which checks the
provider's signature and reads the body), then the events go to `feedback.apply` through the
writer; the provider gets its 200 only after they are committed.  Redelivered events are kept
out by `feedback_seen`, so a replay answers 200 and changes nothing.

A request without the provider's credential header is a 401; one whose signature or token does
not match is a 403; a signed body not in the provider's shape is a 400.
"""

from __future__ import annotations

import hmac

import attrs

from ..feedback import (
    ApplyReport,
    FeedbackError,
    Inbound,
    LineWebhook,
    SendGridEvents,
    SignatureError,
    TwilioInbound,
    TwilioStatus,
    WhatsAppWebhook,
    apply,
)
from .config import SECRET_NAMES, ServeConfig
from .refusal import Refusal, invalid

#: The headers that carry each endpoint's credential: none of them present is a 401.
CREDENTIAL_HEADERS = {
    "line": ("x-line-signature",),
    "twilio/status": ("x-twilio-signature",),
    "twilio/inbound": ("x-twilio-signature",),
    "sendgrid": ("x-twilio-email-event-webhook-signature", "authorization"),
    "whatsapp": ("x-hub-signature-256",),
}
#: The secrets each endpoint needs, for the message when they are not set.
NEEDS = {"line": ("line_secret",), "twilio/status": ("twilio_token",), "twilio/inbound": ("twilio_token",),
         "sendgrid": ("sendgrid_key", "sendgrid_token"), "whatsapp": ("whatsapp_secret",)}
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def receivers(config: ServeConfig) -> dict:
    """A receiver per endpoint whose secret is configured."""
    found = {}
    if config.secret("line_secret"):
        found["line"] = LineWebhook(config.secret("line_secret"))
    if config.secret("twilio_token"):
        found["twilio/status"] = TwilioStatus(config.secret("twilio_token"))
        found["twilio/inbound"] = TwilioInbound(config.secret("twilio_token"))
    if config.secret("sendgrid_key") or config.secret("sendgrid_token"):
        found["sendgrid"] = SendGridEvents(public_key=config.secret("sendgrid_key"),
                                           token=config.secret("sendgrid_token"), groups=config.sendgrid_groups)
    if config.secret("whatsapp_secret"):
        found["whatsapp"] = WhatsAppWebhook(config.secret("whatsapp_secret"))
    return found


def not_configured(name: str) -> Refusal:
    names = " or ".join(SECRET_NAMES[role] for role in NEEDS.get(name, ()))
    return Refusal(404, "not-configured", f"this endpoint is off: set {names} to receive these webhooks")


def parse(name: str, receiver, url: str, headers, body: bytes) -> list:
    """The provider's events, or the Refusal the request deserves."""
    try:
        return receiver.parse(Inbound.of(url, headers, body))
    except SignatureError as exc:
        present = any(headers.get(h) for h in CREDENTIAL_HEADERS.get(name, ()))
        raise Refusal(403 if present else 401, "forbidden" if present else "unauthorized", str(exc)) from None
    except FeedbackError as exc:
        raise invalid(None, str(exc)) from None


@attrs.frozen
class Handshake:
    """WhatsApp's GET verification: echo `hub.challenge` when `hub.verify_token` is ours."""

    token: str | None

    def answer(self, query) -> str:
        if not self.token:
            raise Refusal(404, "not-configured",
                          f"this endpoint is off: set {SECRET_NAMES['whatsapp_verify_token']} to verify it")
        mode, given, challenge = query.get("hub.mode"), query.get("hub.verify_token"), query.get("hub.challenge")
        if mode != "subscribe" or not challenge:
            raise invalid("hub.mode", "expected hub.mode=subscribe with hub.verify_token and hub.challenge")
        if not given:
            raise Refusal(401, "unauthorized", "hub.verify_token is missing")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise Refusal(403, "forbidden", "hub.verify_token does not match")
        return challenge


def executor():
    """Every waiting request's events applied in one `feedback.apply` (its own transaction)."""

    def run(cur, batches: list[list], now) -> list[ApplyReport]:
        events = [e for batch in batches for e in batch]
        report = apply(cur, events, now) if events else ApplyReport()
        return [report] * len(batches)

    return run
