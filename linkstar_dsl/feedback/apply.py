"""Write normalized provider feedback into the store, in one transaction.

For each event not seen before (`feedback_seen`, keyed on provider and event id):

1. **who**: the ledger row it is about (by our ledger key when the provider echoed it, else by the
   provider's message id in `ledger.provider_id`) and every customer whose address on that
   channel is the event's address (email compared without case, phone numbers by their digits);
2. **suppression** on the event's channel, never on every channel: hard bounce (`hard_bounce` for
   email, `undeliverable` for a number), complaint, unsubscribe (`whatsapp_marketing_opt_out` on
   WhatsApp), LINE unfollow (`line_unfollow`), SMS STOP (`sms_stop`).  A suppression already in
   force with the same channel and reason is not written twice;
3. **lift**: SMS START lifts `sms_stop` and a LINE follow lifts `line_unfollow` on that channel:
   the suppression rows are moved to `suppression_lifts` with the time and the event that lifted
   them, so the gates stop seeing them and the history stays;
4. **ledger**: `delivery` (delivered | failed | bounced) and `delivery_at` of the matching send,
   unless a later report already set them;
5. **customer event** named as in `stdlib/schema.flow`: opened, clicked, replied, unsubscribed
   (also for an SMS STOP), complained, bounced (hard bounces only), line_followed, line_unfollowed.
   A message's delivery is not a customer event (`delivered` is the parcel's, on the order).

An event no customer matches is recorded as seen and counted in the report, not raised.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import attrs
import duckdb

from .events import FeedbackEvent

ADDRESS_COLUMNS = {"email": "email", "sms": "phone", "whatsapp": "whatsapp", "line": "line_user_id"}
DELIVERY = {"delivered": "delivered", "failed": "failed", "bounced_hard": "bounced", "bounced_soft": "bounced"}
CUSTOMER_EVENTS = {"opened": "opened", "clicked": "clicked", "replied": "replied", "unsubscribed": "unsubscribed",
                   "stop": "unsubscribed", "complaint": "complained", "bounced_hard": "bounced",
                   "followed": "line_followed", "unfollowed": "line_unfollowed"}
#: Suppression reasons an opt-in lifts (`line_blocked` is the older name of `line_unfollow`).
LIFTS = {"start": ("sms", ("sms_stop",)), "followed": ("line", ("line_unfollow", "line_blocked"))}
#: Fields of an event's detail worth keeping on the customer event.
EVENT_DATA = ("keyword", "type", "url", "purpose", "asm_group_id", "code", "status")


def suppression_reason(event: FeedbackEvent) -> str | None:
    """The suppression an event writes on its channel, or None."""
    if event.kind == "bounced_hard":
        return "hard_bounce" if event.channel == "email" else "undeliverable"
    if event.kind == "complaint":
        return "complaint"
    if event.kind == "unsubscribed":
        return "whatsapp_marketing_opt_out" if event.channel == "whatsapp" else "unsubscribed"
    if event.kind == "unfollowed" and event.channel == "line":
        return "line_unfollow"
    if event.kind == "stop" and event.channel == "sms":
        return "sms_stop"
    return None


@attrs.define
class ApplyReport:
    """What one `apply` did; `unmatched_events` names (provider, event id) no customer matched."""

    applied: int = 0
    duplicates: int = 0
    unmatched: int = 0
    suppressions: int = 0
    lifted: int = 0
    ledger_updates: int = 0
    customer_events: int = 0
    unmatched_events: list[tuple[str, str]] = attrs.field(factory=list)

    def summary(self) -> str:
        return (f"{self.applied} applied, {self.duplicates} already seen, {self.unmatched} without a customer; "
                f"{self.suppressions} suppression(s), {self.lifted} lifted, {self.ledger_updates} ledger update(s), "
                f"{self.customer_events} customer event(s)")


def apply(con: duckdb.DuckDBPyConnection, events: Iterable[FeedbackEvent], now: datetime) -> ApplyReport:
    """Apply `events` in the order given; all of it or (on an error) none of it is written."""
    events = list(events)
    report = ApplyReport()
    con.execute("BEGIN TRANSACTION")
    try:
        _Batch(con, events, now, report).run()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report


class _Batch:
    def __init__(self, con, events: list[FeedbackEvent], now: datetime, report: ApplyReport) -> None:
        self.con, self.events, self.now, self.report = con, events, now, report

    def run(self) -> None:
        seen = self._seen()
        ledger = self._ledger_rows()
        customers = self._customers_by_address()
        for event in self.events:
            ident = (event.provider, event.provider_event_id)
            if ident in seen:
                self.report.duplicates += 1
                continue
            seen.add(ident)
            row = ledger.get(("key", event.ledger_key)) or ledger.get(("provider", event.provider_message_id))
            who = set(customers.get((event.channel, _normal(event.channel, event.address)), ()))
            if row is not None:
                who.add(row["customer_id"])
            self._record(event, row, sorted(who))
            self.report.applied += 1
            if not who:
                self.report.unmatched += 1
                self.report.unmatched_events.append(ident)
                continue
            at = min(event.occurred_at or self.now, self.now)
            if row is not None:
                self._update_ledger(event, row, at)
            for customer in sorted(who):
                self._suppress(event, customer, at)
                self._lift(event, customer, at)
                self._customer_event(event, customer, row, at, several=len(who) > 1)

    # -- lookups, one query each for the whole batch -----------------------------------------

    def _seen(self) -> set[tuple[str, str]]:
        if not self.events:
            return set()
        wanted = {(e.provider, e.provider_event_id) for e in self.events}
        rows = self.con.execute("SELECT provider, event_id FROM feedback_seen WHERE event_id IN (SELECT unnest(?))",
                                [sorted({e for _, e in wanted})]).fetchall()
        return {pair for pair in rows if pair in wanted}

    def _ledger_rows(self) -> dict[tuple[str, str], dict]:
        keys = sorted({e.ledger_key for e in self.events if e.ledger_key})
        ids = sorted({e.provider_message_id for e in self.events if e.provider_message_id})
        if not keys and not ids:
            return {}
        cursor = self.con.execute(
            "SELECT key, provider_id, customer_id, order_id FROM ledger "
            "WHERE key IN (SELECT unnest(?)) OR provider_id IN (SELECT unnest(?))", [keys, ids])
        found: dict[tuple[str, str], dict] = {}
        for key, provider_id, customer_id, order_id in cursor.fetchall():
            row = {"key": key, "customer_id": customer_id, "order_id": order_id}
            if key in keys:
                found[("key", key)] = row
            if provider_id in ids:
                found[("provider", provider_id)] = row
        return found

    def _customers_by_address(self) -> dict[tuple[str, str], list[str]]:
        found: dict[tuple[str, str], list[str]] = {}
        for channel, column in ADDRESS_COLUMNS.items():
            wanted = sorted({_normal(channel, e.address) for e in self.events
                             if e.channel == channel and e.address} - {""})
            if not wanted:
                continue
            expression = _sql_normal(channel, column)
            rows = self.con.execute(
                f"SELECT {expression} AS a, id FROM customers WHERE {expression} IN (SELECT unnest(?))",
                [wanted]).fetchall()
            for address, customer in rows:
                found.setdefault((channel, address), []).append(customer)
        return found

    # -- writes --------------------------------------------------------------------------------

    def _record(self, event: FeedbackEvent, row: dict | None, who: list[str]) -> None:
        self.con.execute(
            "INSERT INTO feedback_seen VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [event.provider, event.provider_event_id, event.kind, event.channel, who, row["key"] if row else None,
             event.occurred_at, self.now, json.dumps(dict(event.detail), ensure_ascii=False, default=str)])

    def _update_ledger(self, event: FeedbackEvent, row: dict, at: datetime) -> None:
        state = DELIVERY.get(event.kind)
        if state is None and str(event.detail.get("status", "")).lower() in ("failed", "undelivered"):
            state = "failed"  # a status callback that also opts the recipient out (21610, 131050)
        if state is None:
            return
        changed = self.con.execute(
            "UPDATE ledger SET delivery = ?, delivery_at = ? WHERE key = ? "
            "AND (delivery_at IS NULL OR delivery_at <= ?) RETURNING key", [state, at, row["key"], at]).fetchall()
        self.report.ledger_updates += len(changed)

    def _suppress(self, event: FeedbackEvent, customer: str, at: datetime) -> None:
        reason = suppression_reason(event)
        if reason is None:
            return
        exists = self.con.execute(
            "SELECT count(*) FROM suppressions WHERE customer_id = ? AND channel = ? AND reason = ?",
            [customer, event.channel, reason]).fetchone()[0]
        if exists:
            return
        self.con.execute("INSERT INTO suppressions (customer_id, channel, reason, occurred_at, source) "
                         "VALUES (?, ?, ?, ?, ?)", [customer, event.channel, reason, at, event.provider])
        self.report.suppressions += 1

    def _lift(self, event: FeedbackEvent, customer: str, at: datetime) -> None:
        lift = LIFTS.get(event.kind)
        if lift is None or lift[0] != event.channel:
            return
        channel, reasons = lift
        where = ("customer_id = ? AND channel = ? AND reason IN (SELECT unnest(?)) AND occurred_at <= ?")
        params = [customer, channel, list(reasons), at]
        moved = self.con.execute(
            f"INSERT INTO suppression_lifts SELECT customer_id, channel, reason, occurred_at, source, ?, ? "
            f"FROM suppressions WHERE {where} RETURNING 1",
            [at, f"{event.provider}:{event.provider_event_id}", *params]).fetchall()
        if moved:
            self.con.execute(f"DELETE FROM suppressions WHERE {where}", params)
            self.report.lifted += len(moved)

    def _customer_event(self, event: FeedbackEvent, customer: str, row: dict | None, at: datetime,
                        several: bool) -> None:
        name = CUSTOMER_EVENTS.get(event.kind)
        if name is None:
            return
        data = {"channel": event.channel, "provider": event.provider,
                **{k: event.detail[k] for k in EVENT_DATA if k in event.detail}}
        if event.kind == "bounced_hard":
            data["type"] = "hard"
        if row is not None:
            data["ledger_key"] = row["key"]
        ident = f"{event.provider}:{event.provider_event_id}" + (f":{customer}" if several else "")
        written = self.con.execute(
            "INSERT INTO customer_events (id, customer_id, event, occurred_at, cart_id, order_id, data) "
            "VALUES (?, ?, ?, ?, NULL, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id",
            [ident, customer, name, at, row["order_id"] if row else None,
             json.dumps(data, ensure_ascii=False, default=str)]).fetchall()
        self.report.customer_events += len(written)


def _normal(channel: str, address: str | None) -> str:
    """An address as it is compared: email without case, numbers by their digits."""
    if not address:
        return ""
    if channel == "email":
        return address.strip().lower()
    if channel in ("sms", "whatsapp"):
        return "".join(ch for ch in address if ch.isdigit())
    return address.strip()


def _sql_normal(channel: str, column: str) -> str:
    if channel == "email":
        return f"lower(trim({column}))"
    if channel in ("sms", "whatsapp"):
        return f"regexp_replace({column}, '[^0-9]', '', 'g')"
    return f"trim({column})"
