"""Canonical JSON events, as `POST /v1/events/orders` and `/v1/events/customers` take them.

A request holds one event, a JSON array of events, or `{"events": [...]}`.  An order event:

    {"id": "evt-1001-delivered", "order_id": "1001", "event": "delivered",
     "occurred_at": "2026-09-01T10:00:00+09:00", "data": {...},
     "order": {...}, "customer": {...}}

a customer event: `id`, `customer_id`, `event`, `occurred_at`, optionally `cart_id`, `order_id`,
`data`, and the records `customer` and `cart`.  The records carry the store's columns
(SPEC.md §9.2), read and checked as `linkstar import` reads them: the same dates, money, closed
sets of values, E.164 numbers.  An id left out of a record is taken from the event (and the
other way round); two that disagree are refused.

Every value is checked before anything is written; the first problem refuses the whole request
with a message naming the field (`events[2].order.total: "12,5" is not a number`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping

import attrs

from ..importers.dates import DateReader
from ..importers.messages import RowError
from ..importers.tables import Table
from ..importers.values import coerce
from .refusal import invalid

MAX_ID = 256


@attrs.frozen
class Kind:
    """One endpoint's events: the table, the subject's column, and the records an event may carry."""

    name: str                       # orders | customers
    subject: str                    # order | customer
    table: str                      # order_events | customer_events
    owner: str                      # order_id | customer_id
    links: tuple[str, ...]          # other id columns of the event row
    records: dict                   # record name → (table, {record column: event column})


ORDERS = Kind("orders", "order", "order_events", "order_id", (),
              {"customer": ("customers", {}), "order": ("orders", {"id": "order_id"})})
CUSTOMERS = Kind("customers", "customer", "customer_events", "customer_id", ("cart_id", "order_id"),
                 {"customer": ("customers", {"id": "customer_id"}),
                  "cart": ("carts", {"id": "cart_id", "customer_id": "customer_id"})})
KINDS = {"orders": ORDERS, "customers": CUSTOMERS}


@attrs.frozen
class Event:
    """One event, checked: the row for the events table and the records it brings along."""

    where: str
    id: str
    row: dict                       # column → value for the events table
    records: tuple                  # (record name, table, values) in write order


@attrs.frozen
class Batch:
    kind: Kind
    events: tuple[Event, ...]


def parse(kind: Kind, body: bytes, tables: Mapping[str, Table], events: Mapping[str, str],
          max_events: int) -> Batch:
    """The checked events of a request body; `Refusal` (400) for the first thing wrong.

    `events` maps each event name the flows know to its subject (`order` or `customer`).
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise invalid(None, "the body is not UTF-8 text") from None
    except ValueError as exc:
        raise invalid(None, f"the body is not valid JSON ({exc})") from None
    if isinstance(document, dict) and "events" in document:
        extra = sorted(set(document) - {"events"})
        if extra:
            raise invalid(extra[0], "unknown field; a batch is {\"events\": [...]}")
        items, prefix = document["events"], "events"
        if not isinstance(items, list):
            raise invalid("events", "must be an array of events")
    elif isinstance(document, list):
        items, prefix = document, "events"
    elif isinstance(document, dict):
        items, prefix = [document], None
    else:
        raise invalid(None, "the body must be an event (a JSON object), an array of events or {\"events\": [...]}")
    if not items:
        raise invalid(prefix, "there are no events")
    if len(items) > max_events:
        raise invalid(prefix, f"{len(items)} events in one request; at most {max_events}")
    reader = _Reader(kind, tables, events)
    return Batch(kind, tuple(reader.event(item, f"{prefix}[{i}]" if prefix else "")
                             for i, item in enumerate(items)))


class _Reader:
    def __init__(self, kind: Kind, tables: Mapping[str, Table], events: Mapping[str, str]) -> None:
        self.kind, self.tables, self.events = kind, tables, events
        self.dates = DateReader()
        self.fields = ("id", kind.owner, "event", "occurred_at", *kind.links, "data", *kind.records)

    def event(self, item, where: str) -> Event:
        at = (lambda name: f"{where}.{name}" if where else name)
        if not isinstance(item, dict):
            raise invalid(where or None, "an event must be a JSON object")
        for name in item:
            if name not in self.fields:
                raise invalid(at(name), f"unknown field; an {self.kind.subject} event has {', '.join(self.fields)}")
        row = {"id": _ident(item.get("id"), at("id"), required=True)}
        for name in (self.kind.owner, *self.kind.links):
            row[name] = _ident(item.get(name), at(name), required=False)
        row["event"] = self._event_name(item.get("event"), at("event"))
        try:
            row["occurred_at"] = self._value("occurred_at", item.get("occurred_at"), at("occurred_at"),
                                             self.kind.table)
        except RowError as error:
            raise invalid(at("occurred_at"), _text(error)) from None
        if row["occurred_at"] is None:
            raise invalid(at("occurred_at"), "is required (ISO 8601 with an offset, e.g. 2026-09-01T10:00:00+09:00)")
        data = item.get("data")
        if data is not None and not isinstance(data, dict):
            raise invalid(at("data"), "must be a JSON object")
        row["data"] = data
        records = []
        for name, (table, ids) in self.kind.records.items():
            if item.get(name) is None:
                continue
            values = self._record(table, item[name], at(name))
            for column, event_column in ids.items():
                values[column] = self._join(values.get(column), row, event_column, at(f"{name}.{column}"))
            records.append((name, table, values))
        if self.kind is ORDERS:
            self._order_customer(records, at)
        if row[self.kind.owner] is None:
            raise invalid(at(self.kind.owner), f"is required (or give the {self.kind.subject} record with its id)")
        for _, table, values in records:
            if values.get("id") is None:
                raise invalid(at(f"{_record_name(self.kind, table)}.id"), "is required")
        order = {"customers": 0, "carts": 1, "orders": 2}  # customers first: orders and carts name them
        records.sort(key=lambda r: order[r[1]])
        return Event(where, row["id"], row, tuple(records))

    def _order_customer(self, records: list, at) -> None:
        """An order's customer id and its customer record's id: one fills the other."""
        found = {name: values for name, _, values in records}
        order, customer = found.get("order"), found.get("customer")
        if order is None or customer is None:
            return
        if order.get("customer_id") is None:
            order["customer_id"] = customer.get("id")
        elif customer.get("id") is None:
            customer["id"] = order["customer_id"]
        elif customer["id"] != order["customer_id"]:
            raise invalid(at("customer.id"), f"{customer['id']!r} is not the order's customer_id "
                                             f"{order['customer_id']!r}")

    def _join(self, value, row: dict, column: str, where: str):
        if row.get(column) is None:
            row[column] = value
            return value
        if value is None:
            return row[column]
        if str(value) != row[column]:
            raise invalid(where, f"{value!r} is not the event's {column} {row[column]!r}")
        return row[column]

    def _event_name(self, value, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise invalid(where, f"is required: the name of an {self.kind.subject} event")
        subject = self.events.get(value)
        if subject == self.kind.subject:
            return value
        if subject is not None:
            hint = f"`{value}` is a {subject} event: post it to /v1/events/{subject}s"
        else:
            names = sorted(n for n, s in self.events.items() if s == self.kind.subject)
            close = difflib.get_close_matches(value, names, n=1)
            hint = (f"`{value}` is not an {self.kind.subject} event"
                    + (f"; did you mean `{close[0]}`?" if close else f" (known: {', '.join(names)})"))
        raise invalid(where, hint)

    def _record(self, table_name: str, value, where: str) -> dict:
        if not isinstance(value, dict):
            raise invalid(where, "must be a JSON object")
        table = self.tables[table_name]
        values = {}
        for name, cell in value.items():
            if name not in table.columns:
                close = difflib.get_close_matches(name, list(table.columns), n=1)
                raise invalid(f"{where}.{name}", "unknown field" + (f"; did you mean `{close[0]}`?" if close else
                                                                     f" (fields: {', '.join(table.columns)})"))
            try:
                values[name] = self._value(name, cell, f"{where}.{name}", table_name)
            except RowError as error:
                raise invalid(f"{where}.{name}", _text(error)) from None
        return values

    def _value(self, name: str, cell, where: str, table_name: str):
        if isinstance(cell, (dict, list)) and self.tables[table_name].columns[name].kind not in ("json", "list"):
            raise invalid(where, "must be a single value, not an object or array")
        if isinstance(cell, float) and self.tables[table_name].columns[name].kind == "decimal":
            cell = repr(cell)  # read the decimal as written, not as a binary fraction
        return coerce(self.tables[table_name].columns[name], cell, self.dates)


def _ident(value, where: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise invalid(where, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid(where, "must be a string")
    text = str(value)
    if len(text) > MAX_ID or not text.isprintable():
        raise invalid(where, f"must be printable text of at most {MAX_ID} characters")
    return text


def _text(error: RowError) -> str:
    problem = error.problem
    return problem.message if problem.field is None else problem.message.split(": ", 1)[-1]


def _record_name(kind: Kind, table: str) -> str:
    return next(name for name, (t, _) in kind.records.items() if t == table)
