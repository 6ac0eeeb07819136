"""Writing checked canonical events (`canonical.Batch`) into the store, many requests at a time.

Inside the writer's transaction, for every request of the group in arrival order:

* an event whose id is already stored, or came earlier in the group, is a **duplicate**: it and
  the records it carries change nothing (a replay answers 200 and writes nothing);
* a record (order, customer, cart) for a row not in the store must carry every required column;
  if one does not, that request alone is refused (400) and the others go in;
* then the new events are inserted in one statement; their records are merged (the values given
  replace the stored ones, those left out are kept), customers first; an order whose customer is
  not in the store creates one from the order, as `linkstar import` does; and the order figures
  of every customer an order touched are recomputed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

import attrs
import duckdb

from ..importers import sql as import_sql
from ..importers.markets import customer_market
from ..importers.tables import Table, quote
from .canonical import Batch, Event
from .refusal import Refusal

#: Order columns the customers' figures (first and last order, count, lifetime value) are made of,
#: besides the customer, and the statuses that take an order out of them (`importers/sql.py`, CUSTOMER_FIGURES).
FIGURE_COLUMNS = ("placed_at", "total", "total_currency")
UNCOUNTED_STATUSES = ("canceled", "refunded", "returned")
#: Record tables and the events table's columns in the JSON a bulk insert reads.
_EVENT_TYPES = {"id": "VARCHAR", "order_id": "VARCHAR", "customer_id": "VARCHAR", "cart_id": "VARCHAR",
                "event": "VARCHAR", "occurred_at": "TIMESTAMPTZ", "data": "JSON"}


@attrs.frozen
class Stored:
    """What one request wrote: the ids of its new events and of the duplicates it repeated."""

    stored: tuple[str, ...]
    duplicates: tuple[str, ...]


def executor(tables: Mapping[str, Table]):
    """The writer executor for canonical event batches (orders and customers alike)."""

    def run(cur: duckdb.DuckDBPyConnection, batches: list[Batch], now) -> list:
        return _Group(cur, tables, batches).write()

    return run


class _Group:
    def __init__(self, cur, tables: Mapping[str, Table], batches: list[Batch]) -> None:
        self.cur, self.tables, self.batches = cur, tables, batches
        self.kind = batches[0].kind

    def write(self) -> list:
        seen = self._existing(self.kind.table, {e.id for b in self.batches for e in b.events})
        record_ids: dict[str, set] = {}
        for batch in self.batches:
            for event in batch.events:
                for _, table, values in event.records:
                    record_ids.setdefault(table, set()).add(values["id"])
        self.stored_orders = self._stored_orders(record_ids.get("orders", set()))
        known = {table: (set(self.stored_orders) if table == "orders" else self._existing(table, ids))
                 for table, ids in record_ids.items()}
        results, fresh = [], []
        for batch in self.batches:
            outcome, mine = self._admit(batch, seen, known)
            results.append(outcome)
            fresh += mine
        if fresh:
            self._insert_events(fresh)
        self._merge_records([(table, values) for e in fresh for _, table, values in e.records])
        return results

    def _admit(self, batch: Batch, seen: set, known: dict) -> tuple[Stored | Refusal, list[Event]]:
        """Which events of `batch` are new; a Refusal if a new row lacks a required column."""
        fresh, duplicates, ids, added = [], [], set(), {}
        for event in batch.events:
            if event.id in seen or event.id in ids:
                duplicates.append(event.id)
                continue
            problem = self._check_records(event, known, added)
            if problem is not None:
                return problem, []
            ids.add(event.id)
            fresh.append(event)
        seen.update(ids)
        for table, added_ids in added.items():
            known.setdefault(table, set()).update(added_ids)
        return Stored(tuple(e.id for e in fresh), tuple(duplicates)), fresh

    def _check_records(self, event: Event, known: dict, added: dict) -> Refusal | None:
        for name, table, values in event.records:
            ident = values["id"]
            if ident in known.get(table, ()) or ident in added.get(table, ()):
                continue
            missing = [c for c in self.tables[table].required if values.get(c) is None]
            if missing:
                where = f"{event.where}.{name}" if event.where else name
                return Refusal(400, "invalid", f"{where}: {name} {ident!r} is not in the store yet, so "
                                               f"{', '.join(missing)} must be given", where)
            added.setdefault(table, set()).add(ident)
        return None

    def _existing(self, table: str, ids: set) -> set:
        if not ids:
            return set()
        rows = self.cur.execute(f"SELECT id FROM main.{quote(table)} WHERE id IN (SELECT unnest(?::VARCHAR[]))",
                                [sorted(ids)]).fetchall()
        return {r[0] for r in rows}

    def _insert_events(self, events: list[Event]) -> None:
        table = self.tables[self.kind.table]
        columns = [c for c in table.columns if c in _EVENT_TYPES]
        structure = json.dumps([{c: _EVENT_TYPES[c] for c in columns}])
        document = json.dumps([{c: _plain(e.row.get(c)) for c in columns} for e in events], ensure_ascii=False)
        names = ", ".join(quote(c) for c in columns)
        self.cur.execute(f"INSERT INTO main.{quote(table.name)} ({names}) SELECT {names} FROM "
                         f"(SELECT unnest(from_json(?, {_literal(structure)}), recursive := true)) "
                         "ON CONFLICT (id) DO NOTHING", [document])

    def _merge_records(self, records: list[tuple[str, dict]]) -> None:
        """Upsert the records in order: each run of records with the same columns in bulk."""
        orders: list[dict] = []
        run: list[tuple[str, dict]] = []
        for table, values in records:
            if run and (run[0][0], tuple(run[0][1])) != (table, tuple(values)):
                self._upsert(run)
                run = []
            run.append((table, values))
            if table == "orders":
                orders.append(values)
        if run:
            self._upsert(run)
        if not orders:
            return
        self._placeholder_customers(orders)
        touched = set()
        for order in orders:
            before = self.stored_orders.get(order["id"])
            if before is None or _moves_figures(order, before):
                touched |= {order.get("customer_id") or (before or {}).get("customer_id"),
                            (before or {}).get("customer_id")} - {None}
        if not touched:
            return
        self.cur.execute("CREATE OR REPLACE TEMP TABLE import_touched AS "
                         "SELECT unnest(?::VARCHAR[]) AS customer_id", [sorted(touched)])
        import_sql.Statement(import_sql.CUSTOMER_FIGURES).run(self.cur)
        self.cur.execute("DROP TABLE import_touched")

    def _upsert(self, run: list[tuple[str, dict]]) -> None:
        """One statement per round; a row named twice goes in a later round (one statement cannot
        change a row twice), so the later record still wins."""
        table = self.tables[run[0][0]]
        columns = list(run[0][1])
        rounds: list[list[dict]] = []
        seen: dict[str, int] = {}
        for _, values in run:
            n = seen.get(values["id"], 0)
            seen[values["id"]] = n + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(values)
        names = ", ".join(quote(c) for c in columns)
        updates = [c for c in columns if c not in table.key]
        tail = ("DO UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updates)
                if updates else "DO NOTHING")
        structure = json.dumps([{c: table.columns[c].sql_type for c in columns}])
        sql = (f"INSERT INTO main.{quote(table.name)} ({names}) SELECT {names} FROM "
               f"(SELECT unnest(from_json(?, {_literal(structure)}), recursive := true)) ON CONFLICT (id) {tail}")
        for rows in rounds:
            document = json.dumps([{c: _plain(values[c]) for c in columns} for values in rows],
                                  ensure_ascii=False)
            self.cur.execute(sql, [document])

    def _placeholder_customers(self, orders: list[dict]) -> None:
        """Customers named by orders but not stored: made from the order, as the importer does."""
        wanted = {o["customer_id"]: o for o in orders if o.get("customer_id")}
        missing = set(wanted) - self._existing("customers", set(wanted))
        if not missing:
            return
        choices = self.tables["customers"].columns["source"].choices or ()
        rows = []
        for ident in sorted(missing):
            order = wanted[ident]
            if order.get("country") is None:
                order = self._stored_order(order["id"])
            market = customer_market(order.get("country"))
            source = order.get("marketplace") if order.get("marketplace") in choices else "web"
            rows.append([ident, order.get("country"), source, market.get("locale", "en"), market.get("timezone")])
        self.cur.executemany("INSERT INTO customers (id, country, source, locale, timezone) VALUES (?, ?, ?, ?, ?) "
                             "ON CONFLICT (id) DO NOTHING", rows)

    def _stored_order(self, order_id: str) -> dict:
        row = self.cur.execute("SELECT country, marketplace FROM orders WHERE id = ?", [order_id]).fetchone()
        return {"country": row[0], "marketplace": row[1]} if row else {}

    def _stored_orders(self, ids: set) -> dict[str, dict]:
        """The stored orders among `ids`, with what the customers' figures depend on."""
        if not ids:
            return {}
        rows = self.cur.execute("SELECT id, customer_id, status FROM orders WHERE id IN (SELECT unnest(?::VARCHAR[]))",
                                [sorted(ids)]).fetchall()
        return {ident: {"customer_id": customer, "status": status} for ident, customer, status in rows}


def _moves_figures(order: dict, before: dict) -> bool:
    """Whether a record for a stored order can change its customer's order figures."""
    if any(order.get(c) is not None for c in FIGURE_COLUMNS):
        return True
    if order.get("customer_id") not in (None, before["customer_id"]):
        return True
    status = order.get("status")
    return status not in (None, before["status"]) and bool({status, before["status"]} & set(UNCOUNTED_STATUSES))


def _plain(value):
    """A value as JSON holds it for `from_json`: times as ISO 8601, exact decimals as text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
