"""Delivery feedback: what providers report after a send, verified, normalized and stored.

Each receiver checks one provider's signature on the raw request and turns its body into
`FeedbackEvent`s (delivered, failed, bounced_hard, bounced_soft, complaint, unsubscribed, opened,
clicked, replied, unfollowed, followed, stop, start); `apply` writes them into the store: the
suppressions they call for, the ledger's delivery state, the customer events flows can react to.

    receiver = TwilioInbound(auth_token)
    events = receiver.parse(Inbound.of(public_url, request.headers, await request.read()))
    report = apply(con, events, now)

A forged or unsigned request raises `SignatureError`; a body not in the provider's shape raises
`FeedbackError` (its parent), so a web handler answers 401 or 400 with the message.
"""

from __future__ import annotations

from .apply import ApplyReport, apply, suppression_reason
from .dsn import MailReports, parse_report
from .events import KINDS, FeedbackError, FeedbackEvent, Inbound, SignatureError
from .line import LineWebhook
from .sendgrid import SendGridEvents
from .twilio import TwilioInbound, TwilioStatus
from .whatsapp import WhatsAppWebhook

__all__ = ["KINDS", "ApplyReport", "FeedbackError", "FeedbackEvent", "Inbound", "LineWebhook", "MailReports",
           "SendGridEvents", "SignatureError", "TwilioInbound", "TwilioStatus", "WhatsAppWebhook", "apply",
           "parse_report", "suppression_reason"]
