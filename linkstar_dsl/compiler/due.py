"""The due query: a tick's SQL, for every step of every flow at once (`build_tick`).

It selects the trigger occurrences whose due time falls in (since, now], plus those the ledger
deferred to a time now past, leaves out those the ledger already decided, and evaluates the guards,
exits and `unless` at `now`.  Its cost follows what is due, not the size of the history: see
`build_tick` for how.  The recipients' suppressions, consents and past sends are fetched for the
whole tick at once (`gate_inputs.py`); `build_explain`, for one order or customer, computes them in
the same query.

SQL text and its parameters are built together as `Q` values, so a `?` and its value can never
drift apart; a tick then reads all its values from one SQL variable (`by_variable`).
"""

from __future__ import annotations

import calendar
import itertools
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs

from ..schema import Schema
from .plan import FlowPlan, StepPlan
from .sql import _NOW, ExprCompiler, Sources

#: Customer columns the gates read (addresses, where the buyer is, their language).
CUSTOMER_COLUMNS = ("timezone", "country", "locale", "email", "phone", "line_user_id", "whatsapp", "source")


@attrs.frozen
class Named:
    """A parameter filled in at execution time: `now`, `since`, `flow`, `step`, or a value a tick
    derives from its clock (`clock_value`)."""

    name: str
    #: Its SQL type; a list type (`DATE[]`) travels in a variable of its own (`by_variable`).
    sql_type: str = "TIMESTAMPTZ"


NOW, SINCE, FLOW, STEP = Named("now"), Named("since"), Named("flow"), Named("step")


@attrs.frozen
class Rows:
    """A constant table as one parameter, read by `SELECT unnest(…, recursive := true)`: it travels
    as a list of structs (`by_variable`), which a statement casts once where a `VALUES` list would
    read and cast each of its cells."""

    #: (name, SQL type) of each column.
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple, ...]

    @property
    def sql_type(self) -> str:
        return "STRUCT(" + ", ".join(f"{name} {kind}" for name, kind in self.columns) + ")[]"

    def document(self, named: dict) -> str:
        """The rows as JSON, each `Named` cell given its value in this tick (`document`)."""
        names = [name for name, _ in self.columns]
        return json.dumps([{name: _plain(_value(cell, named)) for name, cell in zip(names, row)} for row in self.rows],
                          ensure_ascii=False)


def shifted(edge: str, offset: int) -> Named:
    """`now` or `since` moved back by a step's offset (seconds): a bound of the trigger's time."""
    return Named(f"{edge}@{offset}") if offset else Named(edge)


def window_day(edge: str, offset: int) -> Named:
    """The UTC day before the window's start (`first`), or after its end (`last`), moved back by
    the offset: every local midnight in the window falls between them."""
    return Named(f"{edge}-day@{offset}", "DATE")


def birth_dates(offset: int) -> Named:
    """Every birth date (from 1900) whose anniversary may have its local midnight in the window
    moved back by the offset (`anniversary_days`)."""
    return Named(f"birth-dates@{offset}", "DATE[]")


#: The days a deferral's birthday may fall on: within the year before `now` (SPEC.md §7.3).
DEFERRAL_FIRST_DAY, DEFERRAL_LAST_DAY = Named("deferral-first-day", "DATE"), Named("deferral-last-day", "DATE")


def clock_value(name: str, now: datetime, since: datetime):
    """The value of a `Named` derived from the tick's clock (the names made above; an offset
    may be negative: `on birthday - 7d`)."""
    if name == "deferral-first-day":
        return _utc_day(now) - timedelta(days=400)
    if name == "deferral-last-day":
        return _utc_day(now) + timedelta(days=1)
    head, _, offset = name.partition("@")
    back = timedelta(seconds=int(offset))
    if head in ("now", "since"):
        return (now if head == "now" else since) - back
    first, last = _utc_day(since - back) - timedelta(days=1), _utc_day(now - back) + timedelta(days=1)
    if head == "first-day":
        return first
    if head == "last-day":
        return last
    if head == "birth-dates":
        return birth_dates_between(*anniversary_days(since - back, now - back))
    raise KeyError(name)


def anniversary_days(low: datetime, high: datetime) -> tuple[date, date]:
    """The first and last day whose local midnight may fall in (low, high] somewhere.

    A UTC offset is less than a day, so such a day's UTC midnight lies strictly between a day
    before `low` and a day after `high`: two days for an hour's window, where the `window_day`s
    span three or four.  Fewer days, fewer customers to place in their time zones.
    """
    return _utc_day(low), _utc_day(high - timedelta(microseconds=1)) + timedelta(days=1)


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def birth_dates_between(first: date, last: date) -> list[date]:
    """The birth dates, from 1900 on, whose anniversary falls on a day from `first` to `last`.

    29 February counts in the years it exists and falls on 1 March in the others, so a window
    holding 1 March also takes every 29 February.  A window of a year or more takes every date.
    """
    days = [first + timedelta(days=n) for n in range(min((last - first).days + 1, 366))]
    month_days = {(d.month, d.day) for d in days}
    if (3, 1) in month_days:
        month_days.add((2, 29))
    found = []
    for year in range(1900, last.year + 1):
        for month, day in sorted(month_days):
            if month == 2 and day == 29 and not calendar.isleap(year):
                continue
            found.append(date(year, month, day))
    return found
#: The trigger occurrence's time in the due query: events in `unless` and `exit when` count only after it.
AFTER_TRIGGER = "e.occurred_at"
SUBJECT = Named("subject")


@attrs.frozen
class Q:
    sql: str
    params: tuple = ()

    def __add__(self, other: Q | str) -> Q:
        if isinstance(other, str):
            return Q(self.sql + other, self.params)
        return Q(self.sql + other.sql, self.params + other.params)


def q(template: str, *parts) -> Q:
    """`template` with each `{}` replaced by a part: a `Q`, or a value that becomes a parameter."""
    pieces = template.split("{}")
    if len(pieces) != len(parts) + 1:
        raise ValueError("placeholder count mismatch")
    out = Q(pieces[0])
    for part, text in zip(parts, pieces[1:]):
        out = out + (part if isinstance(part, Q) else Q("?", (part,))) + text
    return out


def expr(compiler_schema: Schema, e, after: str | None = None) -> Q:
    c = ExprCompiler(compiler_schema, after)
    sql = c.compile(e)
    return Q(sql, tuple(NOW if p is _NOW else p for p in c.params))


@attrs.frozen
class DueQuery:
    sql: str
    params: tuple
    #: A cheap query that counts the due rows, to skip the full one when nothing is due.
    probe_sql: str | None = None
    probe_params: tuple = ()

    def bind(self, *, now, since=None, flow: str, step: int, subject: str | None = None,
             probe: bool = False) -> list:
        values = {"now": now, "since": since, "flow": flow, "step": step, "subject": subject}
        params = self.probe_params if probe else self.params
        return [values[p.name] if isinstance(p, Named) else p for p in params]


def conjuncts(e) -> list:
    """The top-level `and` operands of a condition (the condition itself if it is not an `and`)."""
    from .. import ast

    if isinstance(e, ast.BoolOp) and e.op == "and":
        return [c for op in e.operands for c in conjuncts(op)]
    return [e]


#: The SQL variable that carries a tick's values (`document`).
VARIABLE = "linkstar_tick"


def by_variable(statements) -> tuple[list[str], tuple]:
    """The statements (`Q`s) with each `?` read from the JSON document in `VARIABLE`, and its slots.

    DuckDB's Python client converts every bound value on its own, at a cost that grows with their
    number; one document set with a single parameter carries them all.  `getvariable` is folded
    into a constant when a statement is planned, so the values still narrow scans as literals
    would.  Equal values share a slot.
    """
    slots: list = []
    index: dict = {}
    texts = []
    for statement in statements:
        pieces = statement.sql.split("?")
        if len(pieces) != len(statement.params) + 1:
            raise ValueError("placeholder count mismatch")
        out = [pieces[0]]
        for value, text in zip(statement.params, pieces[1:]):
            key = ("named", value.name) if isinstance(value, Named) else (type(value).__name__, repr(value))
            if key not in index:
                index[key] = len(slots)
                slots.append(value)
            out.append(_read(index[key], _sql_type(value)) + text)
        texts.append("".join(out))
    return texts, tuple(slots)


def _read(slot: int, kind: str) -> str:
    """SQL reading one slot: a value of the document, or a list from the variable of its own."""
    if kind.endswith("[]"):
        return f"CAST(CAST(getvariable('{VARIABLE}_{slot}') AS JSON) AS {kind})"
    read = f"(getvariable('{VARIABLE}') ->> '$[{slot}]')"
    return read if kind == "VARCHAR" else f"CAST({read} AS {kind})"


def _sql_type(value) -> str:
    if isinstance(value, (Named, Rows)):
        return value.sql_type
    if isinstance(value, datetime):
        return "TIMESTAMPTZ"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, Decimal):
        return f"DECIMAL(38, {max(0, -value.as_tuple().exponent)})"
    if isinstance(value, float):
        return "DOUBLE"
    return "VARCHAR"


def document(slots: tuple, **named) -> str:
    """The JSON document for `VARIABLE`: each slot's value, `Named` ones taken from `named` or
    derived from its `now` and `since` (`clock_value`); a list's slot holds null."""
    return json.dumps([None if _is_list(slot) else _plain(_value(slot, named)) for slot in slots], ensure_ascii=False)


def _plain(value):
    """A value as JSON holds it (instants and days as ISO text, decimals as text)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def list_documents(slots: tuple, **named) -> list[tuple[str, str]]:
    """(variable, JSON array) for each list slot: a list travels alone, so that the many short
    reads of `VARIABLE` a statement folds do not parse it each time."""
    return [(f"{VARIABLE}_{i}", slot.document(named) if isinstance(slot, Rows)
             else json.dumps([v.isoformat() for v in _value(slot, named)]))
            for i, slot in enumerate(slots) if _is_list(slot)]


def _is_list(slot) -> bool:
    return isinstance(slot, Rows) or isinstance(slot, Named) and slot.sql_type.endswith("[]")


def _value(slot, named: dict):
    if not isinstance(slot, Named):
        return slot
    if slot.name in named:
        return named[slot.name]
    return clock_value(slot.name, named["now"], named["since"])


@attrs.frozen
class TickQuery:
    """A whole tick as a few statements run in order: every step's due occurrences, with guards,
    exits and `unless` evaluated.

    The last statement returns the rows; each carries `s`, the index of its step in `steps`, and
    they come ordered by step, then due time and key.  Each statement's `params` hold the values
    of its `?` in order (`NOW` and `SINCE` included).  The others fill a temporary table, or count
    (`defers_due`), and return how many rows they found.

    A statement runs only if the one `needs` names found rows; skipped, its table is left as it
    was, and no statement of the tick reads it.  So a tick with no deferral due does not look them
    up, and one with nothing due stops after `due`, with no rows.  The `due` statement reads only
    the pending tables that found rows: `due` holds it for each set of them (the one in
    `statements` reads them all).
    """

    #: (name, statement) in the order they run.
    statements: tuple[tuple[str, Q], ...]
    steps: tuple[tuple[FlowPlan, StepPlan], ...]
    due: dict[frozenset[str], Q]
    needs: dict[str, str]


#: Where each kind of trigger occurrence comes from (besides `last_order` and `birthday`).
_ORDER_SOURCE, _CUSTOMER_SOURCE = "order", "customer"
#: Prefix of the temporary tables a tick fills (per connection, replaced by the next tick).
TEMP = "linkstar_tick_"
#: Order columns every due row carries (`ship_country`, `ship_state`, `marketplace`).
ORDER_COLUMNS = ("id", "customer_id", "country", "state", "marketplace")
#: Guards read events from per-row lists: the order's, the customer's, the customer's orders'.
_LISTS = Sources(order_events="oev.evs", customer_events="cev.evs", orders="coev.evs", lists=True)


def build_tick(plans, schema: Schema) -> TickQuery:
    """The tick: for every step, the occurrences due in (since, now] and the deferrals now due that
    the ledger has not decided, with their guards evaluated at `now`.

    The work follows what is due, not the size of the history.  Each step's window is a range on
    `occurred_at`, which the events tables' zone maps narrow to the row groups of that time, as
    events are stored in about the order they happen.  Everything else is fetched for the due rows
    only, by key: the ledger rows already decided, the orders, customers, reviews and carts, and
    the events the guards read, as one list per order and per customer.  Each of those is a
    temporary table filled by a statement whose only filter is the key, which DuckDB answers from
    the key's ART index (`store.key_lookups`); as tables they also give the planner exact sizes.
    The last statement joins them once and picks each row's guards by its step.
    """
    steps = tuple((plan, step) for plan in plans for step in plan.steps)
    compiled = [_StepSql(plan, step, schema) for plan, step in steps]
    fields = set().union(*(c.fields for c in compiled)) if compiled else set()
    reads = set().union(*(c.reads for c in compiled)) if compiled else set()
    kinds = {_kind(plan) for plan, _ in steps}
    uses = {alias for alias, _ in fields}
    pending = q(f"(SELECT occurrence FROM {TEMP}defers WHERE send_at <= {{}})", NOW)

    # Each step's number in the `s` column, with what a due row takes from its step.
    step_values = q("tick_steps AS (SELECT unnest({}, recursive := true))", Rows(
        (("s", "INTEGER"), ("flow", "VARCHAR"), ("step", "BIGINT"), ("event", "VARCHAR"), ("off", "BIGINT"),
         ("kind", "VARCHAR")),
        tuple((i, plan.name, step.index, plan.event, step.offset, _kind(plan)) for i, (plan, step) in enumerate(steps))))
    pending_tables = sorted({_pending_table(kind) for kind in kinds})
    statements = [
        _table("fresh", _union(_fresh(steps))),
        # The ledger's `decision` index finds the deferrals when the statement filters on it alone.
        _table("defers", Q("SELECT flow, step, occurrence, customer_id, send_at FROM ledger WHERE decision = 'defer'")),
        # How many of them are due: with none, the statements reading them are skipped (`TickQuery`).
        ("defers_due", q(f"SELECT count(*) FROM {TEMP}defers WHERE send_at <= {{}}", NOW))]
    if _ORDER_SOURCE in kinds:
        statements.append(_table("pending_oe", Q("SELECT id, order_id, event, occurred_at FROM order_events "
                                                 "WHERE id IN ") + pending))
    if _CUSTOMER_SOURCE in kinds:
        statements.append(_table("pending_ce", Q("SELECT id, customer_id, order_id, cart_id, event, occurred_at "
                                                 "FROM customer_events WHERE id IN ") + pending))
    if "pending_c" in pending_tables:
        statements.append(_table("pending_c", q(
            "SELECT id, timezone, birthday, last_order_at FROM customers WHERE id IN "
            f"(SELECT customer_id FROM {TEMP}defers WHERE send_at <= {{}})", NOW)))

    def due(held) -> tuple[str, Q]:
        """The due occurrences: those found fresh and not yet decided, and those deferred from the
        kinds whose pending table holds rows (`held`)."""
        deferred = [_deferred(kind) for kind in sorted(kinds) if _pending_table(kind) in held]
        return _table("due", Q("WITH ") + step_values + Q(
            ",\nk AS (SELECT f.s, concat(st.flow, ':', st.step, ':', f.occurrence) AS key, f.occurrence, "
            "f.order_id, f.customer_id, f.cart_id, f.occurred_at, f.occurred_at + to_seconds(st.off) AS due_at "
            f"FROM {TEMP}fresh f JOIN tick_steps st ON st.s = f.s),\n"
            "decided AS MATERIALIZED (SELECT key FROM ledger WHERE key IN (SELECT key FROM k))\n"
            "SELECT * FROM k WHERE NOT EXISTS (SELECT 1 FROM decided d WHERE d.key = k.key)")
            + (Q("\n  UNION ALL\n") + _union(deferred) if deferred else Q("")))

    statements.append(due(pending_tables))
    latest = kinds != {_ORDER_SOURCE}
    if latest:
        # A customer's occurrence that names no order reads the customer's most recent order.
        statements.append(_table("latest", Q(
            f"SELECT customer_id, arg_max(id, placed_at) AS id FROM orders WHERE customer_id IN "
            f"(SELECT customer_id FROM {TEMP}due WHERE order_id IS NULL) GROUP BY customer_id")))
    statements.append(_table("ord", Q(
        f"SELECT {_columns('o', ORDER_COLUMNS, fields)} FROM orders WHERE id IN (SELECT order_id FROM {TEMP}due"
        + (f" UNION ALL SELECT id FROM {TEMP}latest)" if latest else ")"))))
    order = "coalesce(d.order_id, lt.id)" if latest else "d.order_id"
    statements.append(_table("rows", Q(
        f"SELECT d.s, d.key, d.occurrence, {order} AS order_id, coalesce(d.customer_id, o.customer_id) AS customer_id, "
        "d.cart_id, d.occurred_at, d.due_at, d.customer_id IS NULL AS by_order "
        f"FROM {TEMP}due d "
        + (f"LEFT JOIN {TEMP}latest lt ON d.order_id IS NULL AND lt.customer_id = d.customer_id " if latest else "")
        + f"LEFT JOIN {TEMP}ord o ON o.id = {order}")))
    statements.append(_table("cust", Q(
        f"SELECT {_columns('c', ('id', *CUSTOMER_COLUMNS), fields)} FROM customers "
        f"WHERE id IN (SELECT customer_id FROM {TEMP}rows)")))

    def rows_of(needs) -> str:
        """The due rows of the steps whose conditions read something (`needs(step)`)."""
        numbers = [str(i) for i, c in enumerate(compiled) if needs(c)]
        return f"{TEMP}rows WHERE s IN ({', '.join(numbers)})" if numbers else f"{TEMP}rows WHERE FALSE"

    if "r" in uses:
        statements.append(_table("rev", Q(
            f"SELECT {_columns('r', ('order_id',), fields)} FROM reviews WHERE order_id IN "
            f"(SELECT order_id FROM {rows_of(lambda c: 'r' in c.uses)})")))
    if "ct" in uses:
        statements.append(_table("crt", Q(
            f"SELECT {_columns('ct', ('id',), fields)} FROM carts WHERE id IN "
            f"(SELECT cart_id FROM {rows_of(lambda c: 'ct' in c.uses)})")))
    event = "list(struct_pack(event := e.event, ts := e.occurred_at)) AS evs"
    orders_read = f"SELECT order_id FROM {rows_of(lambda c: 'order_events' in c.reads)}"
    if "order_events" in reads:
        statements.append(_table("oev", Q(f"SELECT e.order_id, {event} FROM order_events e "
                                          f"WHERE e.order_id IN ({orders_read}) GROUP BY e.order_id")))
    if "customer_orders" in reads:
        # Apart from the due orders' events: DuckDB reads through an index only while the rows a
        # statement matches stay under `index_scan_max_count` (or 0.1% of the table), and scans the
        # whole table past it.
        statements.append(_table("cord", Q(
            f"SELECT id, customer_id FROM orders WHERE customer_id IN "
            f"(SELECT customer_id FROM {rows_of(lambda c: 'customer_orders' in c.reads)})")))
        statements.append(_table("coev", Q(
            f"SELECT o.customer_id, {event} FROM (SELECT order_id, event, occurred_at FROM order_events "
            f"WHERE order_id IN (SELECT id FROM {TEMP}cord)) e JOIN {TEMP}cord o ON o.id = e.order_id "
            "GROUP BY o.customer_id")))
    if "customer_events" in reads:
        statements.append(_table("cev", Q(
            f"SELECT e.customer_id, {event} FROM customer_events e WHERE e.customer_id IN "
            f"(SELECT customer_id FROM {rows_of(lambda c: 'customer_events' in c.reads)}) GROUP BY e.customer_id")))
    statements.append(("result", _final(compiled, uses, reads)))
    names = [name for name, _ in statements]
    needs = {"defers_due": "defers", **dict.fromkeys(pending_tables, "defers_due"),
             **dict.fromkeys(names[names.index("due") + 1:], "due")}
    return TickQuery(tuple(statements), steps, {held: due(held)[1] for held in _subsets(pending_tables)}, needs)


def _final(compiled: list[_StepSql], uses: set[str], reads: set[str]) -> Q:
    """One row per due occurrence, with the guards, `unless` and exits of its own step."""
    def by_step(part: str, otherwise: str) -> Q:
        # Steps of one flow share their conditions: one branch each.
        cases: dict[Q, list[int]] = {}
        for i, c in enumerate(compiled):
            if getattr(c, part) is not None:
                cases.setdefault(getattr(c, part), []).append(i)
        if not cases:
            return Q(otherwise)
        out = Q("CASE")
        for sql, numbers in cases.items():
            out = out + f" WHEN d.s IN ({', '.join(map(str, numbers))}) THEN " + sql
        return out + f" ELSE {otherwise} END"

    columns = ", ".join(f'c."{col}" AS "{col}"' for col in CUSTOMER_COLUMNS)
    head = Q("SELECT d.s, d.key, d.occurrence, o.id AS order_id, c.id AS customer_id, d.due_at, "
             f"o.country AS ship_country, o.state AS ship_state, o.marketplace AS marketplace, {columns},\n  ")
    head = (head + by_step("guard", "TRUE") + " AS guard_ok,\n  " + by_step("unless", "TRUE") + " AS unless_ok,\n  "
            + by_step("exited", "FALSE") + " AS exited\n")
    source = (f"FROM {TEMP}rows d LEFT JOIN {TEMP}ord o ON o.id = d.order_id "
              f"JOIN {TEMP}cust c ON c.id = d.customer_id")
    if "r" in uses:
        source += f" LEFT JOIN {TEMP}rev r ON r.order_id = o.id"
    if "ct" in uses:
        source += f" LEFT JOIN {TEMP}crt ct ON ct.id = d.cart_id"
    if "order_events" in reads:
        source += f" LEFT JOIN {TEMP}oev oev ON oev.order_id = o.id"
    if "customer_orders" in reads:
        source += f" LEFT JOIN {TEMP}coev coev ON coev.customer_id = c.id"
    if "customer_events" in reads:
        source += f" LEFT JOIN {TEMP}cev cev ON cev.customer_id = c.id"
    # An order's occurrence needs its order; a customer's may have none.
    return head + source + "\nWHERE NOT d.by_order OR o.id IS NOT NULL\nORDER BY d.s, d.due_at, d.key"


def _table(name: str, select: Q) -> tuple[str, Q]:
    return name, Q(f"CREATE OR REPLACE TEMP TABLE {TEMP}{name} AS\n") + select


def _subsets(items: list[str]) -> list[frozenset[str]]:
    return [frozenset(chosen) for n in range(len(items) + 1) for chosen in itertools.combinations(items, n)]


def _pending_table(kind: str) -> str:
    """The temporary table that holds the deferred occurrences of one kind now due."""
    return {_ORDER_SOURCE: "pending_oe", _CUSTOMER_SOURCE: "pending_ce"}.get(kind, "pending_c")


def _columns(alias: str, always: tuple[str, ...], fields: set[tuple[str, str]]) -> str:
    """The columns to fetch for one record: the ones always needed and those the guards read."""
    names = list(always) + sorted({col for a, col in fields if a == alias} - set(always))
    return ", ".join(f'"{name}"' for name in names)


def _kind(plan: FlowPlan) -> str:
    if plan.subject == "order":
        return _ORDER_SOURCE
    return plan.event if plan.event in ("last_order", "birthday") else _CUSTOMER_SOURCE


def _join(parts, separator: str = ", ") -> Q:
    out = Q("")
    for i, part in enumerate(parts):
        out = out + (separator if i else "") + part
    return out


def _union(parts) -> Q:
    out = Q("")
    for i, part in enumerate(parts):
        out = out + ("\n  UNION ALL\n" if i else "") + part
    return out


#: Trigger offsets closer than this share one scan of the events: the events between two such
#: windows cost less to read and drop than a statement part of their own (at a few thousand
#: orders a day).
NEARBY_OFFSETS = 3 * 86_400


def _fresh(steps) -> list[Q]:
    """The occurrences whose due time is in (since, now], as (s, occurrence, order_id,
    customer_id, cart_id, occurred_at): per group of nearby trigger offsets, one range on the
    trigger's time, each row then matched to the steps it is due in; `last_order` and `birthday`
    step by step."""
    by_kind: dict[str, list[int]] = {}
    parts = []
    for i, (plan, step) in enumerate(steps):
        kind = _kind(plan)
        if kind in (_ORDER_SOURCE, _CUSTOMER_SOURCE):
            by_kind.setdefault(kind, []).append(i)
        else:
            parts.append(_fresh_profile(i, plan, step))
    for kind, numbers in by_kind.items():
        for group in _nearby(sorted({steps[i][1].offset for i in numbers})):
            parts.append(_fresh_events(kind, [(i, steps[i]) for i in numbers if steps[i][1].offset in group]))
    return parts


def _nearby(offsets: list[int]) -> list[set[int]]:
    """Sorted offsets in groups, each offset within `NEARBY_OFFSETS` of the one before it."""
    groups: list[set[int]] = []
    for offset in offsets:
        if groups and offset - max(groups[-1]) <= NEARBY_OFFSETS:
            groups[-1].add(offset)
        else:
            groups.append({offset})
    return groups


def _fresh_events(kind: str, numbered) -> Q:
    """One scan of an events table over the windows of some steps, each row joined to the steps
    (event, window) it falls in: an event due in two steps yields a row for each."""
    table, who = (("order_events", "NULL::VARCHAR AS customer_id, NULL::VARCHAR AS cart_id")
                  if kind == _ORDER_SOURCE else ("customer_events", "x.customer_id, x.cart_id"))
    offsets = [step.offset for _, (_, step) in numbered]
    events = list(dict.fromkeys(plan.event for _, (plan, _) in numbered))
    windows = Rows((("s", "INTEGER"), ("event", "VARCHAR"), ("low", "TIMESTAMPTZ"), ("high", "TIMESTAMPTZ")),
                   tuple((i, plan.event, shifted("since", step.offset), shifted("now", step.offset))
                         for i, (plan, step) in numbered))
    return (q(f"SELECT w.s, x.id AS occurrence, x.order_id, {who}, x.occurred_at FROM {table} x JOIN "
              "(SELECT unnest({}, recursive := true)) w ON w.event = x.event AND x.occurred_at > w.low "
              "AND x.occurred_at <= w.high WHERE x.event IN (", windows) + _join(q("{}", e) for e in events)
            + q(") AND x.occurred_at > {} AND x.occurred_at <= {}", shifted("since", max(offsets)),
                shifted("now", min(offsets))))


def _fresh_profile(i: int, plan: FlowPlan, step: StepPlan) -> Q:
    """A `last_order` or `birthday` step's occurrences due in (since, now]."""
    low, high = shifted("since", step.offset), shifted("now", step.offset)
    first_day, last_day = q("{}", window_day("first", step.offset)), q("{}", window_day("last", step.offset))
    if _kind(plan) == "last_order":
        people = q("SELECT id, last_order_at FROM customers WHERE last_order_at > {} AND last_order_at <= {}", low, high)
    else:
        people = _born_on(birth_dates(step.offset))
    return (Q(f"SELECT {i} AS s, x.id AS occurrence, NULL::VARCHAR AS order_id, x.customer_id, "
              "NULL::VARCHAR AS cart_id, x.occurred_at FROM ")
            + _profile_occurrences(_kind(plan), people, first_day, last_day)
            + q(" x WHERE x.occurred_at > {} AND x.occurred_at <= {}", low, high))


def _deferred(kind: str) -> Q:
    """The occurrences of one kind the ledger deferred to a time now past (found by their id)."""
    steps = (f"FROM {TEMP}defers p JOIN tick_steps st ON st.flow = p.flow AND st.step = p.step "
             "AND st.kind = ")
    head = ("SELECT st.s, concat(st.flow, ':', st.step, ':', x.id) AS key, x.id AS occurrence, ")
    times = "x.occurred_at, x.occurred_at + to_seconds(st.off) AS due_at "
    if kind == _ORDER_SOURCE:
        return q(head + "x.order_id, NULL::VARCHAR AS customer_id, NULL::VARCHAR AS cart_id, " + times + steps
                 + f"{{}} JOIN {TEMP}pending_oe x ON x.id = p.occurrence AND x.event = st.event "
                 "WHERE p.send_at <= {}", kind, NOW)
    if kind == _CUSTOMER_SOURCE:
        return q(head + "x.order_id, x.customer_id, x.cart_id, " + times + steps
                 + f"{{}} JOIN {TEMP}pending_ce x ON x.id = p.occurrence AND x.event = st.event "
                 "WHERE p.send_at <= {}", kind, NOW)
    # A deferral never outlives a year: its birthday is this year's or last year's.
    low_day, high_day = q("{}", DEFERRAL_FIRST_DAY), q("{}", DEFERRAL_LAST_DAY)
    people = Q(f"SELECT * FROM {TEMP}pending_c")
    return (Q(head + "NULL::VARCHAR AS order_id, x.customer_id, NULL::VARCHAR AS cart_id, " + times + steps)
            + q("{} JOIN ", kind) + _profile_occurrences(kind, people, low_day, high_day)
            + q(" x ON x.id = p.occurrence WHERE p.send_at <= {}", NOW))


def _born_on(dates: Named) -> Q:
    """The customers born on one of `dates` (the window's, from 1900 on: `birth_dates_between`).

    Matching whole dates is a hash lookup per customer, cheaper than taking dates apart; the rare
    birthday before 1900 is found by month and day, where the column's zone maps skip all else.
    """
    return q("SELECT id, timezone, birthday FROM customers WHERE birthday IN (SELECT unnest({})) "
             "UNION ALL SELECT id, timezone, birthday FROM customers WHERE birthday < DATE '1900-01-01' "
             "AND month(birthday) * 100 + day(birthday) IN (SELECT month(b) * 100 + day(b) FROM (SELECT unnest({}) AS b))",
             dates, dates)


def _profile_occurrences(kind: str, people: Q, low_day: Q, high_day: Q) -> Q:
    """Occurrences derived from customer profiles (`id`, `customer_id`, `occurred_at`) for the
    customers `people` selects; birthdays for the years from `low_day` to `high_day`."""
    if kind == "last_order":
        return (Q("(SELECT concat('last_order:', id, ':', epoch(last_order_at)) AS id, id AS customer_id, "
                  "last_order_at AS occurred_at FROM (") + people + ") WHERE last_order_at IS NOT NULL)")
    # Local midnight is computed per time zone and day (a few dozen), not per customer.
    return (Q("(WITH b AS MATERIALIZED (SELECT id, coalesce(timezone, 'UTC') AS tz, ") + ANNIVERSARY
            + q(" AS bday FROM (SELECT id, timezone, birthday, unnest(range(year({}), year({}) + 1)) AS y FROM (",
                low_day, high_day) + people
            + q(") pc WHERE birthday IS NOT NULL) u), days AS (SELECT CAST({} + CAST(r AS INTEGER) AS DATE) AS bday "
                "FROM range(0, least(3700, date_diff('day', {}, {}) + 1)) t(r)), ", low_day, low_day, high_day)
            + "m AS (SELECT z.tz, days.bday, timezone(z.tz, CAST(days.bday AS TIMESTAMP)) AS midnight "
              "FROM (SELECT DISTINCT tz FROM b) z, days) "
              "SELECT concat('birthday:', b.id, ':', year(b.bday)) AS id, b.id AS customer_id, "
              "m.midnight AS occurred_at FROM b JOIN m ON m.tz = b.tz AND m.bday = b.bday)")


#: The birthday's date in year `y` (29 February falls on 1 March in other years).
ANNIVERSARY = Q(
    "CASE WHEN month(birthday) = 2 AND day(birthday) = 29 AND NOT (y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0)) "
    "THEN make_date(CAST(y AS INTEGER), 3, 1) ELSE make_date(CAST(y AS INTEGER), month(birthday), day(birthday)) END")
#: Local midnight of the birthday in year `y`.
BIRTHDAY_MIDNIGHT = Q("timezone(coalesce(timezone, 'UTC'), CAST(") + ANNIVERSARY + " AS TIMESTAMP))"


class _StepSql:
    """One step's guards, `unless` and exits, compiled to read the tick's per-row event lists."""

    def __init__(self, plan: FlowPlan, step: StepPlan, schema: Schema) -> None:
        self.fields: set[tuple[str, str]] = set()
        self.reads: set[str] = set()

        def compiled(e, after=None) -> Q:
            c = ExprCompiler(schema, after, _LISTS)
            sql = c.compile(e)
            self.fields |= c.fields
            self.reads |= c.reads
            return Q(sql, tuple(NOW if p is _NOW else p for p in c.params))

        def joined(exprs, joiner: str, after=None) -> Q | None:
            out = None
            for e in exprs:
                part = q("coalesce({}, FALSE)", compiled(e, after))
                out = part if out is None else out + joiner + part
            return None if out is None else Q("(") + out + ")"

        self.guard = joined(plan.guards, " AND ")
        self.exited = joined(plan.exits, " OR ", "d.occurred_at")
        self.unless = (q("NOT coalesce({}, FALSE)", compiled(plan.unless, "d.occurred_at"))
                       if plan.unless is not None else None)
        #: The records' aliases the conditions read (`o`, `c`, `r`, `ct`).
        self.uses = {alias for alias, _ in self.fields}


def _events(plan: FlowPlan) -> Q:
    return Q("order_events") if plan.subject == "order" else _customer_event_source(plan.event)


def build_explain(plan: FlowPlan, step: StepPlan, schema: Schema) -> DueQuery:
    """Every occurrence of the trigger for one order or customer, with each guard's own value."""
    extra = Q("")
    for i, part in enumerate(c for g in plan.guards for c in conjuncts(g)):
        extra = extra + q(",\n  {} AS \"guard_" + str(i) + "\"", expr(schema, part))
    for i, part in enumerate(plan.exits):
        extra = extra + q(",\n  {} AS \"exit_" + str(i) + "\"", expr(schema, part, AFTER_TRIGGER))
    whole = _select(plan, step, schema, extra)() + q(
        "\nWHERE e.event = {} AND (o.id = {} OR c.id = {})\nORDER BY due_at, key", plan.event, SUBJECT, SUBJECT)
    return DueQuery(whole.sql, whole.params)


def _key() -> Q:
    return q("concat({}, ':', {}, ':', e.id)", FLOW, STEP)


def _select(plan: FlowPlan, step: StepPlan, schema: Schema, extra: Q = Q(""), events: Q | None = None,
            gate_inputs: bool = True):
    events = events if events is not None else _events(plan)
    if plan.subject == "order":
        source = q("FROM {} e JOIN orders o ON o.id = e.order_id "
                   "JOIN customers c ON c.id = o.customer_id LEFT JOIN reviews r ON r.order_id = o.id "
                   "LEFT JOIN carts ct ON FALSE", events)
    else:
        source = q("FROM {} e JOIN customers c ON c.id = e.customer_id ", events) + Q(
                   "LEFT JOIN orders o ON o.id = coalesce(e.order_id, (SELECT arg_max(id, placed_at) "
                   "FROM orders WHERE customer_id = c.id)) "
                   "LEFT JOIN reviews r ON r.order_id = o.id LEFT JOIN carts ct ON ct.id = e.cart_id")

    def all_of(exprs, empty: str) -> Q:
        if not exprs:
            return Q(empty)
        out = Q("(")
        for i, e in enumerate(exprs):
            out = out + (" AND " if i else "") + q("coalesce({}, FALSE)", expr(schema, e))
        return out + ")"

    def any_of(exprs) -> Q:
        if not exprs:
            return Q("FALSE")
        out = Q("(")
        for i, e in enumerate(exprs):
            out = out + (" OR " if i else "") + q("coalesce({}, FALSE)", expr(schema, e, AFTER_TRIGGER))
        return out + ")"

    unless = (q("NOT coalesce({}, FALSE)", expr(schema, plan.unless, AFTER_TRIGGER))
              if plan.unless is not None else Q("TRUE"))
    columns = ", ".join(f'c."{col}" AS "{col}"' for col in CUSTOMER_COLUMNS)
    cap_window = plan.cap[1] if plan.cap else 0

    def select() -> Q:
        head = q(
            "SELECT {} AS key, e.id AS occurrence, o.id AS order_id, c.id AS customer_id,\n"
            "  e.occurred_at + to_seconds({}) AS due_at, o.country AS ship_country, o.state AS ship_state,\n"
            "  o.marketplace AS marketplace,\n"
            f"  {columns},\n"
            "  {} AS guard_ok, {} AS unless_ok, {} AS exited",
            _key(), step.offset, all_of(plan.guards, "TRUE"), unless, any_of(plan.exits))
        if not gate_inputs:
            return head + extra + "\n" + source
        return head + q(
            ",\n  {},\n"
            "  (SELECT list(struct_pack(channel := k.channel, level := k.level,\n"
            "                           double_opt_in := k.double_opt_in_at IS NOT NULL, granted_at := k.granted_at))\n"
            "     FROM consents k WHERE k.customer_id = c.id AND k.purpose IN ({}, 'any')\n"
            "      AND k.granted_at <= {} AND (k.revoked_at IS NULL OR k.revoked_at > {})) AS consents,\n"
            "  (SELECT max(l.send_at) FROM ledger l WHERE l.customer_id = c.id AND l.purpose = {}\n"
            "      AND l.decision = 'send' AND l.send_at <= {}\n"
            "      AND NOT (l.flow = {} AND l.occurrence = e.id)) AS last_send,\n"
            "  (SELECT count(*) FROM ledger l WHERE l.customer_id = c.id AND l.purpose = {}\n"
            "      AND l.decision = 'send' AND l.send_at > {} - to_seconds({})) AS cap_used,\n"
            "  EXISTS (SELECT 1 FROM ledger l WHERE l.flow = {} AND l.decision = 'send' AND l.occurrence <> e.id\n"
            "      AND (l.order_id = o.id OR ({} = 'customer' AND l.customer_id = c.id))) AS once_used{}\n",
            _suppressions_and_opt_outs(plan), plan.purpose, NOW, NOW, plan.purpose, NOW, FLOW, plan.purpose, NOW,
            cap_window, FLOW, plan.once_per or "", extra,
        ) + source

    return select


def _customer_event_source(event: str) -> Q:
    """The rows customer events come from; `last_order` and `birthday` are derived from profiles.

    Neither holds user text: the SQL is fixed per event kind.
    """
    if event == "last_order":
        return Q("(SELECT concat('last_order:', id, ':', epoch(last_order_at)) AS id, id AS customer_id, "
                 "'last_order' AS event, last_order_at AS occurred_at, NULL AS cart_id, NULL AS order_id "
                 "FROM customers WHERE last_order_at IS NOT NULL)")
    if event == "birthday":
        # One occurrence a year at local midnight, for the years the period touches (and the one
        # before, for offsets); 29 February falls on 1 March in other years.
        return (Q("(SELECT concat('birthday:', id, ':', y) AS id, id AS customer_id, 'birthday' AS event, ")
                + BIRTHDAY_MIDNIGHT + q(" AS occurred_at, NULL AS cart_id, NULL AS order_id FROM customers, "
                                        "range(year(timezone('UTC', {})) - 1, year(timezone('UTC', {})) + 2) AS years(y) "
                                        "WHERE birthday IS NOT NULL)", SINCE, NOW))
    return Q("customer_events")


#: Suppression reasons that close a channel to some purposes only (`gate_inputs.PURPOSE_SUPPRESSIONS`).
_PURPOSE_SUPPRESSIONS = (("whatsapp_marketing_opt_out", ("marketing", "review")),)


def _suppressions_and_opt_outs(plan: FlowPlan) -> Q:
    """The recipient's `suppressed` channels for the flow's purpose and `opted_out`, their purpose
    opt-outs in force (the latest choice per channel being `opt_out`; of a tie, the opt-out)."""
    suppressed = q("(SELECT list(DISTINCT coalesce(s.channel, '*')) FROM suppressions s\n"
                   "     WHERE s.customer_id = c.id AND s.occurred_at <= {}", NOW)
    for reason, purposes in _PURPOSE_SUPPRESSIONS:
        suppressed = suppressed + q(" AND NOT (s.reason = {} AND {} NOT IN (", reason, plan.purpose) \
            + _join(q("{}", purpose) for purpose in purposes) + "))"
    opted_out = q(
        "(SELECT list(struct_pack(channel := p.channel, purpose := p.purpose, at := p.occurred_at, source := p.source)\n"
        "       ORDER BY p.channel) FROM (SELECT coalesce(pc.channel, '*') AS channel, pc.purpose, pc.choice,\n"
        "       pc.occurred_at, pc.source FROM preference_changes pc\n"
        "     WHERE pc.customer_id = c.id AND pc.purpose = {} AND pc.occurred_at <= {}\n"
        "     QUALIFY row_number() OVER (PARTITION BY coalesce(pc.channel, '*')\n"
        "       ORDER BY pc.occurred_at DESC, pc.choice = 'opt_out' DESC) = 1) p WHERE p.choice = 'opt_out')",
        plan.purpose, NOW)
    return suppressed + ") AS suppressed,\n  " + opted_out + " AS opted_out"
