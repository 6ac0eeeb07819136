"""The footers a message must show, and whether a rendered text shows them.

What a message owes comes from two places: the policies (`requires`, passed by the runtime for
the recipient's market and the channel) and a baseline per purpose and channel that holds even
if no policy is loaded: a marketing email, SMS, LINE or WhatsApp message always says who sent
it and how to stop; a marketing email also gives the sender's address; a review request by email
offers the unsubscribe link.  Amazon and webhook messages carry no footer (Amazon forbids opt-out
links, and a webhook goes to the seller's own systems).

A requirement is met when the rendered text contains what it names: the message's unsubscribe
URL (on SMS and WhatsApp, where the opt-out is a reply, the `STOP` keyword will do), the sender's
name, the sender's address, the advertising notice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from markupsafe import escape

from ..templates import FOOTER_VARIABLES

BASELINE = {
    ("marketing", "email"): {"unsubscribe_link", "sender_identity", "sender_address"},
    ("marketing", "sms"): {"unsubscribe_link", "sender_identity"},
    ("marketing", "line"): {"unsubscribe_link", "sender_identity"},
    ("marketing", "whatsapp"): {"unsubscribe_link", "sender_identity"},
    ("review", "email"): {"unsubscribe_link", "sender_identity"},
}
#: Channels whose messages never get a footer of ours.
NO_FOOTER_CHANNELS = frozenset({"amazon", "webhook"})
#: Channels where replying a keyword is the opt-out.
REPLY_OPT_OUT_CHANNELS = frozenset({"sms", "whatsapp"})
_STOP = re.compile(r"(?<![A-Za-z])STOP(?![A-Za-z])")  # Japanese text has no word break before it


def owed(purpose: str, channel: str, requires: Iterable[str]) -> set[str]:
    """The footer requirements this message must meet."""
    if channel in NO_FOOTER_CHANNELS:
        return set()
    return {r for r in requires if r in FOOTER_VARIABLES} | BASELINE.get((purpose, channel), set())


def unmet(requirements: Iterable[str], channel: str, text: str, context: Mapping, *, html: bool = False) -> list[str]:
    """The requirements the rendered `text` does not meet, in a fixed order."""
    missing = []
    for requirement in sorted(requirements):
        variable = FOOTER_VARIABLES[requirement]
        value = context.get(variable)
        if requirement == "unsubscribe_link" and channel in REPLY_OPT_OUT_CHANNELS and _STOP.search(text):
            continue
        if not value or not _shows(text, str(value), html):
            missing.append(requirement)
    return missing


def _shows(text: str, value: str, html: bool) -> bool:
    return value in text or (html and str(escape(value)) in text)


def partial_name(channel: str, language: str, html: bool = False) -> str:
    """The standard footer partial of a channel in a language."""
    return f"_partials/footer.{channel}.{language}{'.html' if html else ''}.j2"
