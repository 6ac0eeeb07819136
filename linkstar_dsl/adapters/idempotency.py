"""Provider idempotency keys derived from the ledger key `flow:step:occurrence`.

Derivation is deterministic (UUID version 5 in a namespace of our own), so a runner that crashes
and restarts sends the very same key again and the provider recognises the repeat.
"""

from __future__ import annotations

import uuid

#: Our namespace for version-5 UUIDs; never change it, or keys already in flight stop matching.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:linkstar-flows:idempotency")


def key_uuid(key: str, purpose: str = "") -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{purpose}:{key}" if purpose else key)


def line_retry_key(key: str) -> str:
    """The `X-Line-Retry-Key` for a ledger key: a UUID in LINE's hexadecimal form."""
    return str(key_uuid(key, "line"))


def webhook_id(key: str) -> str:
    return "msg_" + key_uuid(key, "webhook").hex


def email_message_id(key: str, domain: str) -> str:
    return f"<{key_uuid(key, 'email').hex}@{domain}>"
