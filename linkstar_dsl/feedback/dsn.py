"""Bounce and complaint reports that come back by mail: RFC 3464 DSNs and RFC 5965 ARF reports.

Mail sent over SMTP reports its fate as a `multipart/report` message to the envelope sender:

* `report-type=delivery-status` (RFC 3464): one field group per recipient.  `Action: failed`
  with an address status (`5.1.x`: no such mailbox or domain) → bounced_hard; any other failure
  → bounced_soft; `delivered`, `relayed`, `expanded` → delivered; `delayed` (still trying) →
  nothing.
* `report-type=feedback-report` (RFC 5965, a mailbox provider's feedback loop): `abuse` → complaint.

The original message's `Message-ID` (from the `message/rfc822` or `text/rfc822-headers` part) is
the provider message id our SMTP adapter recorded, so the report finds its ledger row.  The
report's own `Message-ID` and the recipient make the event id.  A report arrives in our own
mailbox, so there is no signature to check: whoever hands it over is trusted to have received it.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from email.message import Message
from email.parser import HeaderParser

from .events import FeedbackError, FeedbackEvent, Inbound, check_size

PROVIDER = "smtp"
_ADDRESS_STATUS = re.compile(r"^5\.1\.\d{1,3}$")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


class MailReports:
    """Receiver for DSN and ARF reports; `Inbound.body` is the raw message."""

    provider = PROVIDER

    def parse(self, inbound: Inbound) -> list[FeedbackEvent]:
        check_size(inbound)
        return parse_report(inbound.body)


def parse_report(raw: bytes) -> list[FeedbackEvent]:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)  # lenient: never raises
    if message.get_content_type() != "multipart/report" or not message.is_multipart():
        raise FeedbackError(f"not a report: the message is {message.get_content_type()}, not multipart/report")
    report_type = (message.get_param("report-type") or "").lower()
    parts = message.get_payload()
    original = _original_message_id(parts)
    report_id = (message.get("Message-ID") or "").strip() or \
        "sha256:" + hashlib.sha256(raw).hexdigest()
    if report_type == "delivery-status":
        return _delivery_status(parts, original, report_id)
    if report_type == "feedback-report":
        return _feedback_report(parts, original, report_id)
    raise FeedbackError(f"report-type {report_type or '(none)'} is not delivery-status or feedback-report")


def _part(parts: list[Message], content_type: str) -> Message | None:
    return next((p for p in parts if p.get_content_type() == content_type), None)


def _original_message_id(parts: list[Message]) -> str | None:
    headers = None
    rfc822 = _part(parts, "message/rfc822")
    if rfc822 is not None and isinstance(rfc822.get_payload(), list) and rfc822.get_payload():
        headers = rfc822.get_payload()[0]
    text = _part(parts, "text/rfc822-headers")
    if headers is None and text is not None:
        payload = text.get_payload(decode=True) or b""
        headers = HeaderParser().parsestr(payload.decode("utf-8", "replace"))
    value = headers.get("Message-ID") if headers is not None else None
    return value.strip().strip("<>") if value else None


def _address(value: str | None) -> str | None:
    """`rfc822; a@example.com` → `a@example.com`."""
    if not value:
        return None
    address = value.split(";", 1)[1] if ";" in value else value
    return address.strip().strip("<>") or None


def _delivery_status(parts: list[Message], original: str | None, report_id: str) -> list[FeedbackEvent]:
    status_part = _part(parts, "message/delivery-status")
    groups = status_part.get_payload() if status_part is not None else None
    if not isinstance(groups, list) or len(groups) < 2:
        raise FeedbackError("the delivery-status part is missing or has no recipient fields")
    found = []
    for index, group in enumerate(groups[1:]):
        recipient = _address(group.get("Final-Recipient") or group.get("Original-Recipient"))
        action = (group.get("Action") or "").strip().lower()
        if not recipient or not action:
            raise FeedbackError(f"recipient {index}: Final-Recipient or Action is missing")
        status_match = _STATUS.search(group.get("Status") or "")
        status = status_match.group(1) if status_match else ""
        if action == "failed":
            kind = "bounced_hard" if _ADDRESS_STATUS.match(status) else "bounced_soft"
        elif action in ("delivered", "relayed", "expanded"):
            kind = "delivered"
        else:
            continue
        detail = {"action": action}
        if status:
            detail["status"] = status
        diagnostic = " ".join((group.get("Diagnostic-Code") or "").split())
        if diagnostic:
            detail["diagnostic"] = diagnostic[:200]
        found.append(FeedbackEvent(PROVIDER, f"{report_id}:{recipient}", kind, "email", recipient, original, None,
                                   detail))
    return found


def _feedback_report(parts: list[Message], original: str | None, report_id: str) -> list[FeedbackEvent]:
    part = _part(parts, "message/feedback-report")
    fields = part.get_payload() if part is not None else None
    if not isinstance(fields, list) or not fields:
        raise FeedbackError("the feedback-report part is missing")
    fields = fields[0]
    feedback_type = (fields.get("Feedback-Type") or "").strip().lower()
    recipient = _address(fields.get("Original-Rcpt-To"))
    if not feedback_type:
        raise FeedbackError("the feedback report has no Feedback-Type")
    if feedback_type != "abuse":
        return []
    if not recipient:
        raise FeedbackError("the feedback report has no Original-Rcpt-To")
    return [FeedbackEvent(PROVIDER, f"{report_id}:{recipient}", "complaint", "email", recipient, original, None,
                          {"feedback_type": feedback_type})]
