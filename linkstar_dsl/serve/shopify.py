"""Shopify webhooks: verified, mapped with the Shopify importer, stored once per delivery.

Shopify signs the raw body: `X-Shopify-Hmac-Sha256` is the Base64 HMAC-SHA256 of it, keyed with
the app's client secret.  Each delivery has an `X-Shopify-Webhook-Id`, the same when Shopify
retries it: the first delivery is written with a row in `inbound_seen` in the same transaction,
and a retry finds the row and changes nothing.

Topics:

* `orders/create`, `orders/updated`, `orders/paid`, `orders/fulfilled`, `orders/partially_fulfilled`,
  `orders/cancelled`: the body is the order, mapped exactly as `linkstar import --format shopify`
  maps one (`importers/shopify.py`: the order, its customer, its events, marketing consents) and
  merged the same way (`--on-conflict update`);
* `refunds/create`: an order event `refunded` with the importer's id (`<order>:refunded:<refund>`);
* `customers/redact` (one of Shopify's mandatory privacy webhooks): the customer is erased
  (`erasure.py`), by `customer.id`, and by the id the importer gives a guest checkout;
* any other topic is acknowledged and recorded, and nothing else is done.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import tempfile
from pathlib import Path

import attrs

from ..importers.dates import DateReader
from ..importers.readers import RawRow
from ..importers.records import Record
from ..importers.shopify import ShopifyConverter
from ..importers.staging import StagedFile
from . import erasure
from .refusal import Refusal, invalid

SOURCE = "shopify"
HMAC_HEADER = "X-Shopify-Hmac-Sha256"
ID_HEADER = "X-Shopify-Webhook-Id"
TOPIC_HEADER = "X-Shopify-Topic"
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/paid", "orders/fulfilled",
                          "orders/partially_fulfilled", "orders/cancelled"})


def signature(secret: str, body: bytes) -> str:
    """The `X-Shopify-Hmac-Sha256` Shopify sends for `body`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@attrs.frozen
class Delivery:
    webhook_id: str
    topic: str
    shop: str | None
    action: str                       # order | refund | redact | ignore
    record: Record | None = None      # order
    event: dict | None = None         # refund: the order event row
    customers: tuple[str, ...] = ()   # redact


@attrs.frozen
class Outcome:
    duplicate: bool
    action: str
    detail: dict = attrs.field(factory=dict)


def verify(secret: str, headers, body: bytes) -> None:
    given = headers.get(HMAC_HEADER)
    if not given:
        raise Refusal(401, "unauthorized", f"the {HMAC_HEADER} header is missing")
    if not hmac.compare_digest(signature(secret, body).encode(), given.strip().encode()):
        raise Refusal(403, "forbidden", f"{HMAC_HEADER} does not match the body")


def parse(headers, body: bytes, tables) -> Delivery:
    """The delivery of a verified request; `Refusal` (400) naming what is missing or wrong."""
    webhook_id, topic = headers.get(ID_HEADER, "").strip(), headers.get(TOPIC_HEADER, "").strip()
    if not webhook_id:
        raise invalid(ID_HEADER, "the header is missing: every Shopify delivery has one")
    if not topic:
        raise invalid(TOPIC_HEADER, "the header is missing")
    shop = headers.get("X-Shopify-Shop-Domain")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise invalid(None, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise invalid(None, "the body must be a JSON object")
    if topic in ORDER_TOPICS:
        return Delivery(webhook_id, topic, shop, "order", record=_order(document, tables))
    if topic == "refunds/create":
        return Delivery(webhook_id, topic, shop, "refund", event=_refund(document))
    if topic == "customers/redact":
        return Delivery(webhook_id, topic, shop, "redact", customers=_redacted(document))
    return Delivery(webhook_id, topic, shop, "ignore")


def _order(document: dict, tables) -> Record:
    try:
        record = ShopifyConverter(tables, DateReader()).convert(RawRow(1, document))
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise invalid(None, f"the order does not have Shopify's shape ({type(exc).__name__}: {exc})") from None
    if record.problem is not None:
        raise invalid(record.problem.field, record.problem.message)
    return record


def _refund(document: dict) -> dict:
    order_id, refund_id, when = document.get("order_id"), document.get("id"), document.get("created_at")
    for name, value in (("order_id", order_id), ("id", refund_id), ("created_at", when)):
        if value in (None, ""):
            raise invalid(name, "is missing from the refund")
    try:
        at = DateReader().timestamp(when)
    except Exception:  # noqa: BLE001 - any unreadable time is the sender's mistake
        raise invalid("created_at", f"{when!r} is not a date") from None
    return {"id": f"{order_id}:refunded:{refund_id}", "order_id": str(order_id), "event": "refunded",
            "occurred_at": at, "data": json.dumps({"refund_id": refund_id})}


def _redacted(document: dict) -> tuple[str, ...]:
    customer = document.get("customer")
    if not isinstance(customer, dict):
        raise invalid("customer", "is missing from the redaction request")
    found = []
    if customer.get("id") not in (None, ""):
        found.append(str(customer["id"]))
    if isinstance(customer.get("email"), str) and customer["email"].strip():
        # the id the importer gives a guest checkout
        found.append("email:" + hashlib.sha256(customer["email"].strip().lower().encode()).hexdigest()[:20])
    if not found:
        raise invalid("customer.id", "is missing from the redaction request")
    return tuple(found)


def executor(tables):
    """The writer executor: each delivery recorded once, then its effect, in the group's transaction."""

    def run(cur, deliveries: list[Delivery], now) -> list[Outcome]:
        return [_write(cur, tables, d, now) for d in deliveries]

    return run


def _write(cur, tables, delivery: Delivery, now) -> Outcome:
    first = cur.execute(
        "INSERT INTO inbound_seen (source, event_id, kind, received_at, detail) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        [SOURCE, delivery.webhook_id, delivery.topic, now,
         json.dumps({"shop": delivery.shop, "action": delivery.action})]).fetchall()
    if not first:
        return Outcome(True, delivery.action)
    if delivery.action == "order":
        with tempfile.TemporaryDirectory(prefix="linkstar-shopify-") as workdir:
            staged = StagedFile(cur, tables, "orders", "update", Path(workdir))
            try:
                staged.add(delivery.record)
                effects = staged.merge()
            finally:
                staged.close()
        return Outcome(False, "order", {"tables": {t: dict(c) for t, c in effects.tables.items()}})
    if delivery.action == "refund":
        e = delivery.event
        written = cur.execute("INSERT INTO order_events (id, order_id, event, occurred_at, data) "
                              "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING 1", [e["id"], e["order_id"], e["event"], e["occurred_at"], e["data"]])
        return Outcome(False, "refund", {"stored": len(written.fetchall())})
    if delivery.action == "redact":
        erased = [c for c in delivery.customers
                  if erasure.erase(cur, c, now, f"Shopify customers/redact {delivery.webhook_id}", SOURCE)]
        return Outcome(False, "redact", {"erased": erased})
    return Outcome(False, "ignore")
