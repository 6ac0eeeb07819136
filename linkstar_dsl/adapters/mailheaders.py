"""Headers every email adapter adds: one-click unsubscribe (RFC 8058) and the message's identity.

Marketing mail must carry `List-Unsubscribe` with an HTTPS URI and `List-Unsubscribe-Post:
List-Unsubscribe=One-Click`; without an unsubscribe URL it is refused before any call.  Other
purposes get the headers whenever a URL is given.

Nothing that goes into a header may start a header of its own: a recipient must be one plain
address (no line break, which would forge a `Bcc:`, no comma or angle brackets, which would add
recipients), or the message is refused before any call; a subject or sender name has its line
breaks and other whitespace runs folded into single spaces.
"""

from __future__ import annotations

import re

from .masking import mask_recipient
from .messages import OutgoingMessage

#: One address: a local part and a domain with a dot, neither holding blanks, controls or the
#: characters that separate or quote addresses in a header.
_ADDRESS = re.compile(r"[^\s\x00-\x1f\x7f@<>,;:\"()\[\]\\]+@[^\s\x00-\x1f\x7f@<>,;:\"()\[\]\\]+\.[^\s\x00-\x1f\x7f@<>,;:\"()\[\]\\.]+")


def address_problem(address: object) -> str | None:
    """Why `address` cannot be an email recipient, or None when it is one plain address."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        return f"{mask_recipient(str(address))!r} is not a valid address: one plain email address is needed"
    return None


def one_line(text: str) -> str:
    """A header value on one line: line breaks, tabs and runs of blanks become single spaces."""
    return " ".join(text.split())


def needs_unsubscribe(message: OutgoingMessage) -> bool:
    return message.purpose == "marketing" and not message.unsubscribe_url


def unsubscribe_headers(message: OutgoingMessage, mailto: str | None = None) -> dict[str, str]:
    if not message.unsubscribe_url:
        return {}
    targets = [f"<{message.unsubscribe_url}>"]
    if mailto:
        targets.append(f"<mailto:{mailto}>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
