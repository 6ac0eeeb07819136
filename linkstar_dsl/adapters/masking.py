"""Recipient addresses as they may appear in logs: enough to tell them apart, not to contact.

`+819012345678` → `+81*****5678` (`819012345678` → `81*****5678`); `alice@example.com` →
`a***@example.com`; a LINE user id keeps its first character and last four.  The mask has a
fixed width, so it does not leak the length.
"""

from __future__ import annotations

import logging

log = logging.getLogger("linkstar.adapters")


def mask_recipient(address: str) -> str:
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if address.lstrip("+").isdigit():
        keep = 3 if address.startswith("+") else 2
        return f"{address[:keep]}*****{address[-4:]}" if len(address) > 7 else "*****"
    if len(address) > 8:
        return f"{address[:1]}*****{address[-4:]}"
    return "*****"


def log_result(message, result) -> None:
    """One line per finished send, with the recipient masked and no credential in sight."""
    if not log.isEnabledFor(logging.INFO):
        return
    log.info("%s via %s to %s: %s %s (code %s) after %d attempt(s)", message.key, result.provider,
             mask_recipient(message.to), result.outcome.value, result.category, result.code, result.attempts)
