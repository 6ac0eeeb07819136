"""Erasing a customer's personal data on request (GDPR Art. 17, CCPA deletion), keeping the evidence.

`erase(cur, customer_id, now, reason, source)` runs inside the caller's transaction:

* **cleared**: the customer's name, email, phone, LINE user id, WhatsApp number, birthday and
  tags; their orders' shipping state and tracking links; their carts' links; their reviews' text;
  the JSON data of their orders' events and of their own events; the evidence of their consents
  (IP addresses, form texts) and of their link clicks;
* **kept**, as the record of what was sent and why: the ledger's keys, flows, steps, times,
  decisions, reasons, channels and purposes, the orders' ids, amounts, dates and countries, the
  consents' levels and times (open ones are revoked now), the suppressions.  Any of the erased
  values found in a ledger row's detail or a provider event's detail is replaced there by the
  customer's pseudonym (`erased-` and 16 hex digits of the SHA-256 of the id);
* **added**: a suppression `erasure` on every channel, so nothing is ever sent to them again, and
  a row in `erasures` with the time, the reason and how many rows of each table were cleared.

The customer id stays: it is the key the ledger's evidence and the suppression hang on.  Ids
should therefore be opaque (the shop's customer number), not an address.  Erasing a customer
twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import attrs

#: Customer columns holding personal data, and what they become.
PERSONAL = {"name": None, "email": None, "phone": None, "line_user_id": None, "whatsapp": None,
            "birthday": None, "tags": []}
ERASED_EVIDENCE = json.dumps({"erased": True})


@attrs.frozen
class Erasure:
    customer_id: str
    pseudonym: str
    erased_at: datetime
    cleared: dict
    already: bool = False


def pseudonym(customer_id: str) -> str:
    return "erased-" + hashlib.sha256(customer_id.encode()).hexdigest()[:16]


def erase(cur, customer_id: str, now: datetime, reason: str | None, source: str) -> Erasure | None:
    """Erase the customer; None when the store holds nothing about them."""
    done = cur.execute("SELECT pseudonym, erased_at, cleared FROM erasures WHERE customer_id = ?",
                       [customer_id]).fetchone()
    if done:
        return Erasure(customer_id, done[0], done[1], json.loads(done[2]), already=True)
    row = cur.execute("SELECT name, email, phone, line_user_id, whatsapp FROM customers WHERE id = ?",
                      [customer_id]).fetchone()
    if row is None and not _mentioned(cur, customer_id):
        return None
    alias = pseudonym(customer_id)
    values = {v for v in (row or ()) if isinstance(v, str) and len(v) >= 3}
    values |= {v[1:] for v in values if v.startswith("+")}  # numbers also appear without their plus
    secrets = sorted(values, key=len, reverse=True)
    orders = [o for (o,) in cur.execute("SELECT id FROM orders WHERE customer_id = ?", [customer_id]).fetchall()]
    cleared = {}

    def count(table: str, sql: str, params: list) -> None:
        changed = len(cur.execute(sql + " RETURNING 1", params).fetchall())
        if changed:
            cleared[table] = cleared.get(table, 0) + changed

    assignments = ", ".join(f"{name} = ?" for name in PERSONAL)
    count("customers", f"UPDATE customers SET {assignments} WHERE id = ?", [*PERSONAL.values(), customer_id])
    count("orders", "UPDATE orders SET state = NULL, tracking_url = NULL WHERE customer_id = ? "
                    "AND (state IS NOT NULL OR tracking_url IS NOT NULL)", [customer_id])
    count("order_events", "UPDATE order_events SET data = NULL WHERE order_id IN (SELECT unnest(?::VARCHAR[])) "
                          "AND data IS NOT NULL", [orders])
    count("customer_events", "UPDATE customer_events SET data = NULL WHERE customer_id = ? AND data IS NOT NULL",
          [customer_id])
    count("carts", "UPDATE carts SET url = NULL WHERE customer_id = ? AND url IS NOT NULL", [customer_id])
    count("reviews", "UPDATE reviews SET text = NULL WHERE order_id IN (SELECT unnest(?::VARCHAR[])) "
                     "AND text IS NOT NULL", [orders])
    count("consents", "UPDATE consents SET evidence = ?, revoked_at = coalesce(revoked_at, ?) WHERE customer_id = ?",
          [ERASED_EVIDENCE, now, customer_id])
    count("preference_changes", "UPDATE preference_changes SET evidence = ? WHERE customer_id = ?",
          [ERASED_EVIDENCE, customer_id])
    _scrub(cur, "ledger", "key", "SELECT key, detail FROM ledger WHERE customer_id = ? AND detail IS NOT NULL",
           customer_id, secrets, alias, cleared)
    _scrub_feedback(cur, customer_id, secrets, alias, cleared)
    cur.execute("INSERT INTO suppressions (customer_id, channel, reason, occurred_at, source) "
                "VALUES (?, NULL, 'erasure', ?, ?)", [customer_id, now, source])
    cur.execute("INSERT INTO erasures (customer_id, pseudonym, erased_at, reason, source, cleared) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [customer_id, alias, now, reason, source, json.dumps(cleared)])
    return Erasure(customer_id, alias, now, cleared)


def _mentioned(cur, customer_id: str) -> bool:
    for table in ("orders", "consents", "suppressions", "customer_events", "ledger", "carts"):
        if cur.execute(f"SELECT count(*) FROM {table} WHERE customer_id = ?", [customer_id]).fetchone()[0]:
            return True
    return False


def _replace(text: str, secrets: list[str], alias: str) -> str:
    for secret in secrets:
        for form in {secret, json.dumps(secret)[1:-1]}:
            text = text.replace(form, alias)
    return text


def _scrub(cur, table: str, key: str, select: str, customer_id: str, secrets: list[str], alias: str,
           cleared: dict) -> None:
    """Replace the erased values in a JSON column by the pseudonym (the table and key are ours)."""
    if not secrets:
        return
    changed = []
    for ident, detail in cur.execute(select, [customer_id]).fetchall():
        scrubbed = _replace(detail, secrets, alias)
        if scrubbed != detail:
            changed.append([scrubbed, ident])
    if changed:
        cur.executemany(f"UPDATE {table} SET detail = ? WHERE {key} = ?", changed)
        cleared[table] = cleared.get(table, 0) + len(changed)


def _scrub_feedback(cur, customer_id: str, secrets: list[str], alias: str, cleared: dict) -> None:
    rows = cur.execute("SELECT provider, event_id, detail FROM feedback_seen WHERE list_contains(customer_ids, ?) "
                       "AND detail IS NOT NULL", [customer_id]).fetchall()
    changed = []
    for provider, event_id, detail in rows:
        data = json.loads(detail)
        data.pop("url", None)  # a clicked link may carry the buyer's details in its query
        scrubbed = _replace(json.dumps(data, ensure_ascii=False), secrets, alias)
        if json.loads(scrubbed) != json.loads(detail):
            changed.append([scrubbed, provider, event_id])
    if changed:
        cur.executemany("UPDATE feedback_seen SET detail = ? WHERE provider = ? AND event_id = ?", changed)
        cleared["feedback_seen"] = len(changed)
