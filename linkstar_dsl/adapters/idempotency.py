"""Provider idempotency keys derived from the ledger key `flow:step:occurrence`.

Derivation is deterministic (UUID version 5 in a namespace of our own), so a runner that crashes
and restarts sends the very same key again and the provider recognises the repeat.
"""

from __future__ import annotations

import hashlib
import uuid

#: Our namespace for version-5 UUIDs; never change it, or keys already in flight stop matching.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:linkstar-flows:idempotency")
#: SHA-1 state after the namespace: every version-5 UUID of ours starts from it.
_NAMESPACED = hashlib.sha1(NAMESPACE.bytes)


def key_uuid(key: str, purpose: str = "") -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{purpose}:{key}" if purpose else key)


def _uuid5_text(name: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name))`, without building the `UUID` (one per message sent)."""
    digest = _NAMESPACED.copy()
    digest.update(name.encode("utf-8"))
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def line_retry_key(key: str) -> str:
    """The `X-Line-Retry-Key` for a ledger key: a UUID in LINE's hexadecimal form."""
    return _uuid5_text(f"line:{key}")


def webhook_id(key: str) -> str:
    return "msg_" + key_uuid(key, "webhook").hex


def email_message_id(key: str, domain: str) -> str:
    return f"<{key_uuid(key, 'email').hex}@{domain}>"
