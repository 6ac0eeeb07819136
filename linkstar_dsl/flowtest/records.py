"""The data of a flow test, table by table: each record checked, completed with defaults, and turned
into rows for the store.

A customer needs only `id` and `country`, an order only `id`, `customer` and `placed_at`; the rest
has defaults (SPEC.md, "Flow tests").  Events are written as keys named after them
(`delivered = "2026-09-01T10:00"`), and times may count from another time of the same record or
of the order or customer it names (`refunded = "delivered + 1d"`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..importers.markets import CURRENCY_OF_COUNTRY, customer_market
from ..schema import CHANNELS, PURPOSES
from ..suggest import did_you_mean
from .model import Fixtures
from .values import TestFileError, Times, parse_date, parse_money

TABLES = ("customer", "order", "cart", "event", "consent", "suppression", "sent")

CUSTOMER = {"id": "id", "country": "country", "source": "marketplace", "name": "text", "email": "text",
            "phone": "text", "line_user_id": "text", "whatsapp": "text", "locale": "locale",
            "timezone": "zone", "tags": "tags", "birthday": "date", "first_order_at": "time",
            "last_order_at": "time", "order_count": "int", "lifetime_value": "money"}
ORDER = {"id": "id", "customer": "id", "placed_at": "time", "marketplace": "marketplace",
         "fulfillment": "fulfillment", "status": "order_status", "country": "country", "state": "text",
         "total": "money", "item_count": "int", "shipped_at": "time", "delivered_at": "time",
         "estimated_delivery_at": "time", "tracking_url": "text", "gift": "bool", "rating": "rating",
         "review_text": "text"}
CART = {"id": "id", "customer": "id", "total": "money", "item_count": "int", "url": "text",
        "abandoned": "time"}
EVENT = {"event": "id", "order": "id", "customer": "id", "cart": "id", "at": "time", "data": "table"}
CONSENT = {"customer": "id", "channel": "consent_channel", "purpose": "purpose", "level": "consent_level",
           "granted_at": "time", "revoked_at": "time", "double_opt_in_at": "time", "source": "text"}
SUPPRESSION = {"customer": "id", "channel": "channel", "reason": "text", "at": "time", "source": "text"}
SENT = {"flow": "id", "customer": "id", "order": "id", "purpose": "purpose", "channel": "channel",
        "template": "text", "at": "time"}
REQUIRED = {"customer": ("id", "country"), "order": ("id", "customer", "placed_at"),
            "cart": ("id", "customer", "total"), "event": ("event", "at"), "consent": ("customer", "channel"),
            "suppression": ("customer",), "sent": ("flow", "at")}
#: The order's status, from the last of these events it had (`paid` when none).
STATUS_OF_EVENT = {"paid": "paid", "shipped": "shipped", "out_for_delivery": "shipped",
                   "delivery_failed": "shipped", "delivered": "delivered", "canceled": "canceled",
                   "refunded": "refunded", "returned": "returned"}
TABLE_ROWS = ("customers", "orders", "reviews", "carts", "order_events", "customer_events", "consents",
              "suppressions", "ledger")
#: How long before the test's earliest time consents and suppressions start, when not written.
LONG_BEFORE = timedelta(days=30)


def _a(table: str) -> str:
    """`an `order``, `a `customer``: the table's name with its article."""
    return ("an" if table[0] in "aeiou" else "a") + f" `{table}`"


class Record:
    """One table entry of the file: its values and the line of each key."""

    def __init__(self, table: str, data: dict, line: Callable[..., int | None]) -> None:
        self.table, self.data, self._line = table, data, line

    def line(self, key: str | None = None) -> int | None:
        return self._line(key) if key is not None else self._line()


class Builder:
    """Reads the records of one test (the file's shared ones first) into store rows."""

    def __init__(self, path: str, zone: ZoneInfo, schema, plans_by_name: dict) -> None:
        self.path, self.zone, self.schema, self.plans = path, zone, schema, plans_by_name
        self.order_events = sorted(n for n, e in schema.events.items() if e.subject.value == "order")
        self.customer_events = sorted(n for n, e in schema.events.items() if e.subject.value == "customer"
                                      and n not in ("last_order", "birthday"))
        self.rows: dict[str, list[dict]] = {t: [] for t in TABLE_ROWS}
        self.customers: dict[str, dict] = {}
        self.orders: dict[str, dict] = {}
        self.carts: dict[str, dict] = {}
        self.times: dict[tuple[str, str], dict[str, datetime]] = {}  # (table, id) → resolved times
        self.occurrences: list[tuple[str, str, datetime]] = []
        self.figures_given: dict[str, bool] = {}

    # ------------------------------------------------------------------ helpers

    def fail(self, record: Record, key: str | None, message: str) -> TestFileError:
        return TestFileError(self.path, record.line(key), message)

    def _check_keys(self, record: Record, spec: dict, extra: tuple[str, ...] = ()) -> None:
        for key in record.data:
            if key in spec or key in extra:
                continue
            guess = did_you_mean(key, list(spec) + list(extra))
            hint = f"; did you mean `{guess}`?" if guess else f" (known: {', '.join(spec)})"
            raise self.fail(record, key, f"unknown field `{key}` in {_a(record.table)}{hint}")
        for key in REQUIRED[record.table]:
            if key not in record.data:
                raise self.fail(record, None, f"{_a(record.table)} needs `{key}`")

    def _value(self, record: Record, key: str, kind: str):
        value = record.data[key]
        if kind == "id":
            if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
                raise self.fail(record, key, f"`{key}` must be a name or number, such as \"c1\"")
            return str(value)
        if kind == "text":
            if not isinstance(value, str):
                raise self.fail(record, key, f"`{key}` must be text in quotes")
            return value if value != "" else None
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self.fail(record, key, f"`{key}` must be a whole number, such as 2")
            return value
        if kind == "rating":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
                raise self.fail(record, key, f"`{key}` must be a number of stars from 1 to 5")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.fail(record, key, f"`{key}` must be true or false")
            return value
        if kind == "tags":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.fail(record, key, f"`{key}` must be a list of texts, such as [\"vip\"]")
            return value
        if kind == "table":
            if not isinstance(value, dict):
                raise self.fail(record, key, f"`{key}` must be a table, such as {{ rating = 1 }}")
            return json.dumps(value, default=str)
        if kind == "date":
            day = parse_date(value)
            if day is None:
                raise self.fail(record, key, f"`{key}` must be a date such as 1990-09-05")
            return day
        if kind == "zone":
            try:
                ZoneInfo(str(value))
            except (ZoneInfoNotFoundError, ValueError):
                message = f"`{key}`: \"{value}\" is not an IANA time zone such as Asia/Tokyo"
                raise self.fail(record, key, message) from None
            return str(value)
        if kind in ("channel", "consent_channel"):
            known = CHANNELS + (("any",) if kind == "consent_channel" else ())
            return self._one_of(record, key, value, known, "a channel")
        if kind == "purpose":
            return self._one_of(record, key, value, PURPOSES + ("any",), "a purpose")
        enum = self.schema.enums.get(kind)
        if enum is not None:
            values = tuple(v.value for v in enum.values)
            return self._one_of(record, key, value, values, f"a {kind.replace('_', ' ')}")
        raise AssertionError(kind)

    def _get(self, record: Record, key: str, kind: str, default=None):
        """The value of `key` read as `kind`, or `default` when the record does not say."""
        return self._value(record, key, kind) if key in record.data else default

    def _one_of(self, record: Record, key: str, value, known: tuple[str, ...], what: str) -> str:
        if isinstance(value, str) and value in known:
            return value
        guess = did_you_mean(str(value), known) if isinstance(value, str) else None
        hint = f"; did you mean {guess}?" if guess else f" ({', '.join(known)})"
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        raise self.fail(record, key, f"`{key}`: {shown} is not {what}{hint}")

    def _money(self, record: Record, key: str, country: str | None) -> tuple[Decimal, str]:
        money = parse_money(record.data[key], CURRENCY_OF_COUNTRY.get(country or "", "USD"))
        if money is None:
            raise self.fail(record, key, f"`{key}` must be an amount such as \"25 USD\" or \"5000 JPY\"")
        return money

    def _resolve(self, record: Record, keys: list[str], scopes=()) -> dict[str, datetime]:
        """The record's time fields; each event key may hold one time or a list of them."""
        raw: dict[str, tuple[object, int]] = {}
        for key in keys:
            value = record.data[key]
            if isinstance(value, list):
                for i, item in enumerate(value):
                    raw[key if i == 0 else f"{key}#{i + 1}"] = (item, record.line(key))
            else:
                raw[key] = (value, record.line(key))
        return Times(self.path, self.zone, raw, tuple(scopes)).resolve()

    def _known(self, record: Record, key: str, ids: dict, what: str) -> str:
        value = self._value(record, key, "id")
        if value not in ids:
            guess = did_you_mean(value, ids)
            hint = f"; did you mean {guess}?" if guess else (
                f" (this test has {', '.join(sorted(ids))})" if ids else f" (this test has no {what}s)")
            raise self.fail(record, key, f"`{key}`: no {what} \"{value}\" in this test{hint}")
        return value

    def _unique(self, record: Record, ids: dict, what: str) -> str:
        value = self._value(record, "id", "id")
        if value in ids:
            raise self.fail(record, "id", f"a second {what} with the id \"{value}\"")
        return value

    @staticmethod
    def _events(times: dict[str, datetime], names: list[str]) -> list[tuple[str, datetime]]:
        return sorted(((k.split("#")[0], t) for k, t in times.items() if k.split("#")[0] in names),
                      key=lambda item: item[1])

    # ------------------------------------------------------------------ tables

    def customer(self, record: Record) -> None:
        self._check_keys(record, CUSTOMER, tuple(self.customer_events))
        cid = self._unique(record, self.customers, "customer")
        country = self._value(record, "country", "country")
        row = {"id": cid, "country": country, "source": "web", "email": f"{cid}@example.com", "tags": [],
               **customer_market(country)}
        for key, kind in CUSTOMER.items():
            if key in ("id", "country") or key not in record.data or kind in ("time", "money"):
                continue
            row[key] = self._value(record, key, kind)
        if "lifetime_value" in record.data:
            money = self._money(record, "lifetime_value", country)
            row["lifetime_value"], row["lifetime_value_currency"] = money
        time_keys = [k for k in record.data if CUSTOMER.get(k) == "time" or k in self.customer_events]
        times = self._resolve(record, time_keys)
        row.update({k: times[k] for k in ("first_order_at", "last_order_at") if k in times})
        figures = ("first_order_at", "last_order_at", "order_count", "lifetime_value")
        self.figures_given[cid] = any(k in record.data for k in figures)
        for n, (event, moment) in enumerate(self._events(times, self.customer_events)):
            self._customer_event(f"{cid}:{event}:{n + 1}", cid, event, moment)
        self.customers[cid] = row
        self.times[("customer", cid)] = times
        self.rows["customers"].append(row)

    def _customer_event(self, eid: str, cid: str, event: str, moment: datetime, cart=None, order=None,
                        data=None) -> None:
        self.rows["customer_events"].append({"id": eid, "customer_id": cid, "event": event,
                                             "occurred_at": moment, "cart_id": cart, "order_id": order,
                                             "data": data})
        self.occurrences.append((event, cid, moment))

    def _order_event(self, eid: str, oid: str, event: str, moment: datetime, data=None) -> None:
        self.rows["order_events"].append({"id": eid, "order_id": oid, "event": event, "occurred_at": moment,
                                          "data": data})
        self.occurrences.append((event, oid, moment))

    def order(self, record: Record) -> None:
        self._check_keys(record, ORDER, tuple(self.order_events))
        oid = self._unique(record, self.orders, "order")
        cid = self._known(record, "customer", self.customers, "customer")
        customer = self.customers[cid]
        row = {"id": oid, "customer_id": cid, "marketplace": "web", "fulfillment": "merchant",
               "country": customer["country"], "item_count": 1, "gift": False}
        for key, kind in ORDER.items():
            if key in record.data and kind != "time" and key not in ("id", "customer", "total", "rating",
                                                                       "review_text"):
                row[key] = self._value(record, key, kind)
        if "total" in record.data:
            row["total"], row["total_currency"] = self._money(record, "total", row["country"])
        else:
            currency = CURRENCY_OF_COUNTRY.get(row["country"], "USD")
            # 100 of most currencies; in yen or won that is too little to pass a typical threshold.
            row["total"] = Decimal(10000 if currency in ("JPY", "KRW") else 100)
            row["total_currency"] = currency
        time_keys = [k for k in record.data if ORDER.get(k) == "time" or k in self.order_events]
        times = self._resolve(record, time_keys, [self.times[("customer", cid)]])
        row["placed_at"] = times["placed_at"]
        events = self._events(times, self.order_events)
        if not any(event == "ordered" for event, _ in events):
            events.insert(0, ("ordered", times["placed_at"]))
        rating = self._get(record, "rating", "rating")
        for n, (event, moment) in enumerate(events):
            data = json.dumps({"rating": rating}) if event == "reviewed" and rating is not None else None
            self._order_event(f"{oid}:{event}:{n + 1}", oid, event, moment, data)
        for column, event in (("shipped_at", "shipped"), ("delivered_at", "delivered")):
            row[column] = times.get(column) or next((t for e, t in events if e == event), None)
        row["estimated_delivery_at"] = times.get("estimated_delivery_at")
        if "status" not in row:
            statuses = [STATUS_OF_EVENT[e] for e, _ in events if e in STATUS_OF_EVENT]
            row["status"] = statuses[-1] if statuses else "paid"
        reviewed = next((t for e, t in events if e == "reviewed"), None)
        if rating is not None or "review_text" in record.data or reviewed is not None:
            self.rows["reviews"].append({"order_id": oid, "rating": rating, "reviewed_at": reviewed,
                                         "text": self._get(record, "review_text", "text")})
        self.orders[oid] = row
        self.times[("order", oid)] = {**times, **{e: t for e, t in events}}
        self.rows["orders"].append(row)

    def cart(self, record: Record) -> None:
        self._check_keys(record, CART)
        kid = self._unique(record, self.carts, "cart")
        cid = self._known(record, "customer", self.customers, "customer")
        total, currency = self._money(record, "total", self.customers[cid]["country"])
        row = {"id": kid, "customer_id": cid, "total": total, "total_currency": currency, "item_count": 1,
               "url": None}
        for key in ("item_count", "url"):
            if key in record.data:
                row[key] = self._value(record, key, CART[key])
        keys = [k for k in ("abandoned",) if k in record.data]
        times = self._resolve(record, keys, [self.times[("customer", cid)]])
        if "abandoned" in times:
            self._customer_event(f"{kid}:cart_abandoned", cid, "cart_abandoned", times["abandoned"], cart=kid)
        self.carts[kid] = row
        self.rows["carts"].append(row)

    def _scopes(self, record: Record, order: str | None, customer: str | None) -> list[dict]:
        scopes = []
        if order is not None:
            scopes.append(self.times[("order", order)])
        if customer is not None:
            scopes.append(self.times[("customer", customer)])
        return scopes

    def _subject(self, record: Record, need_customer: bool = True) -> tuple[str | None, str | None]:
        """(order, customer) a record names; the customer may come from the order."""
        order = self._known(record, "order", self.orders, "order") if "order" in record.data else None
        customer = None
        if "customer" in record.data:
            customer = self._known(record, "customer", self.customers, "customer")
        if order is not None:
            owner = self.orders[order]["customer_id"]
            if customer is not None and customer != owner:
                raise self.fail(record, "customer",
                                f"order {order} belongs to customer {owner}, not {customer}")
            customer = owner
        if need_customer and customer is None:
            raise self.fail(record, None, f"this `{record.table}` needs `customer` (or `order`)")
        return order, customer

    def event(self, record: Record) -> None:
        self._check_keys(record, EVENT)
        name = self._value(record, "event", "id")
        if name not in self.schema.events or name in ("last_order", "birthday"):
            known = self.order_events + self.customer_events
            guess = did_you_mean(name, known)
            hint = f"; did you mean {guess}?" if guess else ""
            extra = (" (it comes from the customers' orders and `birthday`)"
                     if name in ("last_order", "birthday") else "")
            raise self.fail(record, "event", f"`{name}` is not an event a test can write{extra}{hint}")
        on_order = self.schema.events[name].subject.value == "order"
        order, customer = self._subject(record, need_customer=not on_order)
        if on_order and order is None:
            raise self.fail(record, None, f"`{name}` happens to an order: say which with `order = ...`")
        cart = self._known(record, "cart", self.carts, "cart") if "cart" in record.data else None
        moment = self._resolve(record, ["at"], self._scopes(record, order, customer))["at"]
        data = self._get(record, "data", "table")
        n = len(self.rows["order_events"]) + len(self.rows["customer_events"]) + 1
        if on_order:
            self._order_event(f"{order}:{name}:e{n}", order, name, moment, data)
            self.times[("order", order)].setdefault(name, moment)
        else:
            self._customer_event(f"{customer}:{name}:e{n}", customer, name, moment, cart, order, data)

    def consent(self, record: Record, earliest: datetime) -> None:
        self._check_keys(record, CONSENT)
        _, customer = self._subject(record)
        row = {"customer_id": customer, "channel": self._value(record, "channel", "consent_channel"),
               "purpose": self._get(record, "purpose", "purpose", "any"),
               "level": self._get(record, "level", "consent_level", "express"),
               "source": self._get(record, "source", "text", "test"),
               "granted_at": earliest - LONG_BEFORE, "revoked_at": None, "double_opt_in_at": None,
               "evidence": None}
        keys = [k for k in ("granted_at", "revoked_at", "double_opt_in_at") if k in record.data]
        row.update(self._resolve(record, keys, self._scopes(record, None, customer)))
        if row["level"] == "double_opt_in" and row["double_opt_in_at"] is None:
            row["double_opt_in_at"] = row["granted_at"]
        self.rows["consents"].append(row)

    def suppression(self, record: Record, earliest: datetime) -> None:
        self._check_keys(record, SUPPRESSION)
        _, customer = self._subject(record)
        keys = [k for k in ("at",) if k in record.data]
        times = self._resolve(record, keys, self._scopes(record, None, customer))
        self.rows["suppressions"].append({
            "customer_id": customer, "channel": self._get(record, "channel", "channel"),
            "reason": self._get(record, "reason", "text", "unsubscribed"),
            "occurred_at": times.get("at", earliest - LONG_BEFORE),
            "source": self._get(record, "source", "text", "test")})

    def sent(self, record: Record) -> None:
        self._check_keys(record, SENT)
        flow = self._value(record, "flow", "id")
        order, customer = self._subject(record)
        plan = self.plans.get(flow)
        if "purpose" in record.data:
            purpose = self._value(record, "purpose", "purpose")
        elif plan is not None:
            purpose = plan.purpose
        else:
            raise self.fail(record, "flow", f"`{flow}` is not a flow of this test: say what the message was "
                                            "with `purpose = ...`")
        moment = self._resolve(record, ["at"], self._scopes(record, order, customer))["at"]
        n = len(self.rows["ledger"]) + 1
        # The `test:` prefix keeps these rows apart from the decisions of the run (runner.trace_lines).
        self.rows["ledger"].append({
            "key": f"test:{flow}:{n}", "flow": flow, "step": 0, "occurrence": f"test:{n}", "order_id": order,
            "customer_id": customer, "channel": self._get(record, "channel", "channel"),
            "template": self._get(record, "template", "text"), "purpose": purpose, "decision": "send",
            "reason": "sent", "due_at": moment, "send_at": moment, "status": "sent"})

    # ------------------------------------------------------------------ all of it

    def build(self, records: dict[str, list[Record]]) -> Fixtures:
        for record in records.get("customer", ()):
            self.customer(record)
        for record in records.get("order", ()):
            self.order(record)
        for record in records.get("cart", ()):
            self.cart(record)
        for record in records.get("event", ()):
            self.event(record)
        self._derive_figures()
        written = [t for times in self.times.values() for t in times.values()]
        written += [t for _, _, t in self.occurrences]
        earliest = min(written) if written else datetime(2000, 1, 1, tzinfo=UTC)
        for record in records.get("consent", ()):
            self.consent(record, earliest)
        for record in records.get("suppression", ()):
            self.suppression(record, earliest)
        for record in records.get("sent", ()):
            self.sent(record)
        return Fixtures(self.rows, tuple(self.occurrences), dict(self.figures_given))

    def _derive_figures(self) -> None:
        """`last_order` occurrences: the written `last_order_at`, else the last order not canceled."""
        for cid, row in self.customers.items():
            last = row.get("last_order_at")
            if last is None:
                placed = [o["placed_at"] for o in self.orders.values()
                          if o["customer_id"] == cid and o["status"] != "canceled"]
                last = max(placed) if placed else None
            if last is not None:
                self.occurrences.append(("last_order", cid, last))
