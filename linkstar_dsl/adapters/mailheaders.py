"""Headers every email adapter adds: one-click unsubscribe (RFC 8058) and the message's identity.

Marketing mail must carry `List-Unsubscribe` with an HTTPS URI and `List-Unsubscribe-Post:
List-Unsubscribe=One-Click`; without an unsubscribe URL it is refused before any call.  Other
purposes get the headers whenever a URL is given.
"""

from __future__ import annotations

from .messages import OutgoingMessage


def needs_unsubscribe(message: OutgoingMessage) -> bool:
    return message.purpose == "marketing" and not message.unsubscribe_url


def unsubscribe_headers(message: OutgoingMessage, mailto: str | None = None) -> dict[str, str]:
    if not message.unsubscribe_url:
        return {}
    targets = [f"<{message.unsubscribe_url}>"]
    if mailto:
        targets.append(f"<mailto:{mailto}>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
