"""The due query: one parameterised SQL statement for a whole tick, for every step of every flow.

It selects the trigger occurrences whose due time falls in (since, now], plus those the ledger
deferred to a time now past, leaves out those the ledger already decided, and evaluates the guards,
exits and `unless` at `now` (`build_tick`).  Its cost follows what is due, not the size of the
history: see `build_tick` for how.  The recipients' suppressions, consents and past sends are
fetched for the whole tick at once (`gate_inputs.py`); `build_explain`, for one order or customer,
computes them in the same query.

SQL text and its parameters are built together as `Q` values, so a `?` and its value can never
drift apart.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import attrs

from ..schema import Schema
from .plan import FlowPlan, StepPlan
from .sql import _NOW, ExprCompiler, Sources

#: Customer columns the gates read (addresses, where the buyer is, their language).
CUSTOMER_COLUMNS = ("timezone", "country", "locale", "email", "phone", "line_user_id", "whatsapp", "source")


@attrs.frozen
class Named:
    """A parameter filled in at execution time: `now`, `since`, `flow`, `step`."""

    name: str


NOW, SINCE, FLOW, STEP = Named("now"), Named("since"), Named("flow"), Named("step")
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


@attrs.frozen
class TickQuery:
    """One statement for a whole tick: every step's due occurrences, with guards, exits and `unless`.

    Result rows carry `s`, the index of their step in `steps`, and are ordered by step, then due
    time and key.  `params` holds the values of its `?` in order (`NOW` and `SINCE` included).
    """

    sql: str
    params: tuple
    steps: tuple[tuple[FlowPlan, StepPlan], ...]


#: The SQL variable that carries a tick's values (`TickQuery.document`).
VARIABLE = "linkstar_tick"


def by_variable(sql: str, params: tuple) -> tuple[str, tuple]:
    """The statement with each `?` read from the JSON document in `VARIABLE`, and its slots.

    DuckDB's Python client converts every bound value on its own, at a cost that grows with their
    number; one document set with a single parameter carries them all.  `getvariable` is folded
    into a constant when the statement is planned, so the values still narrow scans as literals
    would.  Equal values share a slot.
    """
    pieces = sql.split("?")
    if len(pieces) != len(params) + 1:
        raise ValueError("placeholder count mismatch")
    slots: list = []
    index: dict = {}
    out = [pieces[0]]
    for value, text in zip(params, pieces[1:]):
        key = ("named", value.name) if isinstance(value, Named) else (type(value).__name__, repr(value))
        if key not in index:
            index[key] = len(slots)
            slots.append(value)
        read = f"(getvariable('{VARIABLE}') ->> '$[{index[key]}]')"
        kind = _sql_type(value)
        out.append((read if kind == "VARCHAR" else f"CAST({read} AS {kind})") + text)
    return "".join(out), tuple(slots)


def _sql_type(value) -> str:
    if isinstance(value, (Named, datetime)):
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
    """The JSON document for `VARIABLE`: each slot's value, `Named` ones taken from `named`."""
    values = []
    for slot in slots:
        value = named[slot.name] if isinstance(slot, Named) else slot
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        values.append(value)
    return json.dumps(values, ensure_ascii=False)


#: Where each kind of trigger occurrence comes from.
_ORDER_SOURCE, _CUSTOMER_SOURCE = "order", "customer"


def build_tick(plans, schema: Schema) -> TickQuery:
    """The tick query: for every step, the occurrences due in (since, now] and the deferrals now due
    that the ledger has not decided, with their guards evaluated at `now`.

    The work is bounded by what is due.  Each step's window is a range on `occurred_at`, which the
    events tables' zone maps narrow to the few row groups of that time (events are stored in time
    order).  Everything else is fetched for the due rows only, by key: the ledger rows already
    decided, the orders, customers, reviews and carts, and the events the guards look at, which the
    guards then read from those small relations (`Sources`).  Each relation is a materialised CTE
    whose only filter is its key, so DuckDB answers it from the key's ART index.
    """
    steps = tuple((plan, step) for plan in plans for step in plan.steps)
    sources = Sources(order_events="oe", customer_events="ce", orders="cord")
    compiled = [_StepSql(plan, step, schema, sources) for plan, step in steps]
    fields = set().union(*(c.fields for c in compiled)) if compiled else set()
    reads = set().union(*(c.reads for c in compiled)) if compiled else set()
    kinds = {_kind(plan) for plan, _ in steps}

    ctes: list[Q] = []
    fresh = _union(_fresh(i, plan, step) for i, (plan, step) in enumerate(steps))
    ctes.append(Q("fresh AS MATERIALIZED (\n") + fresh + ")")
    # A pending deferral is found through the ledger's `decision` index: the CTE filters on it alone.
    ctes.append(Q("pending AS MATERIALIZED (SELECT l.flow, l.step, l.occurrence, l.customer_id, l.send_at "
                  "FROM ledger l WHERE l.decision = 'defer')"))
    ctes.append(q("pend AS MATERIALIZED (SELECT * FROM pending WHERE send_at <= {})", NOW))
    if _ORDER_SOURCE in kinds:
        ctes.append(Q("pending_oe AS MATERIALIZED (SELECT x.id, x.order_id, x.event, x.occurred_at "
                      "FROM order_events x WHERE x.id IN (SELECT occurrence FROM pend))"))
    if _CUSTOMER_SOURCE in kinds:
        ctes.append(Q("pending_ce AS MATERIALIZED (SELECT x.id, x.customer_id, x.order_id, x.cart_id, x.event, "
                      "x.occurred_at FROM customer_events x WHERE x.id IN (SELECT occurrence FROM pend))"))
    if kinds - {_ORDER_SOURCE, _CUSTOMER_SOURCE}:
        ctes.append(Q("pending_c AS MATERIALIZED (SELECT x.id, x.timezone, x.birthday, x.last_order_at "
                      "FROM customers x WHERE x.id IN (SELECT customer_id FROM pend))"))
    deferred = _union(_deferred(i, plan, step) for i, (plan, step) in enumerate(steps))
    ctes.append(Q("deferred AS MATERIALIZED (\n") + deferred + ")")
    ctes.append(Q("decided AS MATERIALIZED (SELECT l.key FROM ledger l WHERE l.key IN (SELECT key FROM fresh))"))
    ctes.append(Q("due AS MATERIALIZED (SELECT * FROM fresh f WHERE NOT EXISTS "
                  "(SELECT 1 FROM decided d WHERE d.key = f.key) UNION ALL SELECT * FROM deferred)"))
    if kinds != {_ORDER_SOURCE}:
        # A customer's occurrence that names no order reads the customer's most recent order.
        ctes.append(Q("latest AS MATERIALIZED (SELECT customer_id, arg_max(id, placed_at) AS id FROM orders "
                      "WHERE customer_id IN (SELECT customer_id FROM due WHERE order_id IS NULL) "
                      "GROUP BY customer_id)"))
        ctes.append(Q("resolved AS MATERIALIZED (SELECT d.s, d.key, d.occurrence, coalesce(d.order_id, lt.id) "
                      "AS order_id, d.customer_id, d.cart_id, d.at FROM due d LEFT JOIN latest lt "
                      "ON d.order_id IS NULL AND lt.customer_id = d.customer_id)"))
    else:
        ctes.append(Q("resolved AS MATERIALIZED (SELECT * FROM due)"))
    ctes.append(Q(f"ord AS MATERIALIZED (SELECT {_columns('o', ORDER_COLUMNS, fields)} FROM orders "
                  "WHERE id IN (SELECT order_id FROM resolved))"))
    ctes.append(Q(f"cust AS MATERIALIZED (SELECT {_columns('c', ('id', *CUSTOMER_COLUMNS), fields)} "
                  "FROM customers WHERE id IN (SELECT customer_id FROM resolved WHERE customer_id IS NOT NULL "
                  "UNION ALL SELECT customer_id FROM ord))"))
    if any(alias == "r" for alias, _ in fields):
        ctes.append(Q(f"rev AS MATERIALIZED (SELECT {_columns('r', ('order_id',), fields)} FROM reviews "
                      "WHERE order_id IN (SELECT id FROM ord))"))
    if any(alias == "ct" for alias, _ in fields):
        ctes.append(Q(f"crt AS MATERIALIZED (SELECT {_columns('ct', ('id',), fields)} FROM carts "
                      "WHERE id IN (SELECT cart_id FROM resolved))"))
    if "customer_orders" in reads:
        ctes.append(Q("cord AS MATERIALIZED (SELECT id, customer_id FROM orders "
                      "WHERE customer_id IN (SELECT id FROM cust))"))
    if "order_events" in reads:
        scope = "cord" if "customer_orders" in reads else "ord"
        ctes.append(Q("oe AS MATERIALIZED (SELECT order_id, event, occurred_at FROM order_events "
                      f"WHERE order_id IN (SELECT id FROM {scope}))"))
    if "customer_events" in reads:
        ctes.append(Q("ce AS MATERIALIZED (SELECT customer_id, event, occurred_at FROM customer_events "
                      "WHERE customer_id IN (SELECT id FROM cust))"))

    whole = Q("WITH ")
    for i, cte in enumerate(ctes):
        whole = whole + (",\n" if i else "") + cte
    whole = whole + "\n" + _union(c.select(i) for i, c in enumerate(compiled)) + "\nORDER BY s, due_at, key"
    return TickQuery(whole.sql, whole.params, steps)


#: Order columns every due row carries (`ship_country`, `ship_state`, `marketplace`).
ORDER_COLUMNS = ("id", "customer_id", "country", "state", "marketplace")


def _columns(alias: str, always: tuple[str, ...], fields: set[tuple[str, str]]) -> str:
    """The columns to fetch for one record: the ones always needed and those the guards read."""
    names = list(always) + sorted({col for a, col in fields if a == alias} - set(always))
    return ", ".join(f'"{name}"' for name in names)


def _kind(plan: FlowPlan) -> str:
    if plan.subject == "order":
        return _ORDER_SOURCE
    return plan.event if plan.event in ("last_order", "birthday") else _CUSTOMER_SOURCE


def _union(parts) -> Q:
    out = Q("")
    for i, part in enumerate(parts):
        out = out + ("\n  UNION ALL\n" if i else "") + part
    return out


#: The columns of `fresh`, `deferred` and `due`, in order.
_DUE_COLUMNS = "s, key, occurrence, order_id, customer_id, cart_id, at"


def _fresh(i: int, plan: FlowPlan, step: StepPlan) -> Q:
    """The step's occurrences whose due time is in (since, now]: a range on the trigger's time."""
    low, high = q("{} - to_seconds({})", SINCE, step.offset), q("{} - to_seconds({})", NOW, step.offset)
    kind = _kind(plan)
    if kind == _ORDER_SOURCE:
        return q("SELECT {} AS s, concat({}, ':', {}, ':', x.id) AS key, x.id AS occurrence, x.order_id, "
                 "NULL::VARCHAR AS customer_id, NULL::VARCHAR AS cart_id, x.occurred_at AS at "
                 "FROM order_events x WHERE x.event = {} AND x.occurred_at > {} AND x.occurred_at <= {}",
                 i, plan.name, step.index, plan.event, low, high)
    if kind == _CUSTOMER_SOURCE:
        return q("SELECT {} AS s, concat({}, ':', {}, ':', x.id) AS key, x.id AS occurrence, x.order_id, "
                 "x.customer_id, x.cart_id, x.occurred_at AS at "
                 "FROM customer_events x WHERE x.event = {} AND x.occurred_at > {} AND x.occurred_at <= {}",
                 i, plan.name, step.index, plan.event, low, high)
    if kind == "last_order":
        rows = q("SELECT * FROM customers WHERE last_order_at > {} AND last_order_at <= {}", low, high)
    else:
        # Birthdays whose month and day fall in the window's dates (two days either side, for time
        # zones); 29 February always qualifies, as it falls on 1 March in other years.
        rows = q("SELECT * FROM customers WHERE birthday IS NOT NULL AND (month(birthday) * 100 + day(birthday) "
                 "= 229 OR month(birthday) * 100 + day(birthday) IN (SELECT month(d) * 100 + day(d) FROM "
                 "(SELECT CAST(timezone('UTC', {}) AS DATE) - 2 + CAST(r AS INTEGER) AS d "
                 "FROM range(0, least(370, date_diff('day', CAST(timezone('UTC', {}) AS DATE), "
                 "CAST(timezone('UTC', {}) AS DATE)) + 5)) t(r))))", low, low, high)
    return (q("SELECT {} AS s, concat({}, ':', {}, ':', p.id) AS key, p.id AS occurrence, NULL::VARCHAR AS order_id, "
              "p.customer_id, NULL::VARCHAR AS cart_id, p.occurred_at AS at FROM ", i, plan.name, step.index)
            + _profile_occurrences(kind, rows, low, high) + q(" p WHERE p.occurred_at > {} AND p.occurred_at <= {}",
                                                               low, high))


def _deferred(i: int, plan: FlowPlan, step: StepPlan) -> Q:
    """The step's occurrences the ledger deferred to a time now past (found by their id)."""
    mine = q("(SELECT occurrence FROM pend WHERE flow = {} AND step = {})", plan.name, step.index)
    kind = _kind(plan)
    head = q("SELECT {} AS s, concat({}, ':', {}, ':', x.id) AS key, x.id AS occurrence, ", i, plan.name, step.index)
    if kind == _ORDER_SOURCE:
        return head + q("x.order_id, NULL::VARCHAR AS customer_id, NULL::VARCHAR AS cart_id, x.occurred_at AS at "
                        "FROM pending_oe x WHERE x.event = {} AND x.id IN ", plan.event) + mine
    if kind == _CUSTOMER_SOURCE:
        return head + q("x.order_id, x.customer_id, x.cart_id, x.occurred_at AS at "
                        "FROM pending_ce x WHERE x.event = {} AND x.id IN ", plan.event) + mine
    low = q("{} - to_seconds({})", NOW, 400 * 86_400)  # deferrals never outlive a year
    return head + (Q("NULL::VARCHAR AS order_id, x.customer_id, NULL::VARCHAR AS cart_id, x.occurred_at AS at FROM ")
                   + _profile_occurrences(kind, Q("SELECT * FROM pending_c"), low, q("{}", NOW))
                   + Q(" x WHERE x.id IN ") + mine)


def _profile_occurrences(kind: str, customers: Q, low: Q, high: Q) -> Q:
    """Occurrences derived from customer profiles (`id`, `customer_id`, `occurred_at`), for the
    customers `customers` selects and, for birthdays, the years from `low` to `high`."""
    if kind == "last_order":
        return Q("(SELECT concat('last_order:', id, ':', epoch(last_order_at)) AS id, id AS customer_id, "
                 "last_order_at AS occurred_at FROM (") + customers + Q(") WHERE last_order_at IS NOT NULL)")
    return (Q("(SELECT concat('birthday:', id, ':', y) AS id, id AS customer_id, ") + BIRTHDAY_MIDNIGHT
            + Q(" AS occurred_at FROM (") + customers + q(
                ") pc, range(year(timezone('UTC', {})) - 1, year(timezone('UTC', {})) + 2) AS years(y) "
                "WHERE birthday IS NOT NULL)", low, high))


#: Local midnight of the birthday in year `y` (29 February falls on 1 March in other years).
BIRTHDAY_MIDNIGHT = Q(
    "timezone(coalesce(timezone, 'UTC'), CAST(CASE WHEN month(birthday) = 2 AND day(birthday) = 29 "
    "AND NOT (y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0)) THEN make_date(CAST(y AS INTEGER), 3, 1) "
    "ELSE make_date(CAST(y AS INTEGER), month(birthday), day(birthday)) END AS TIMESTAMP))")


class _StepSql:
    """One step's branch of the final select: its row from the due relations, guards evaluated."""

    def __init__(self, plan: FlowPlan, step: StepPlan, schema: Schema, sources: Sources) -> None:
        self.plan, self.step = plan, step
        self.fields: set[tuple[str, str]] = set()
        self.reads: set[str] = set()

        def compiled(e, after=None) -> Q:
            c = ExprCompiler(schema, after, sources)
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

        self.guard = joined(plan.guards, " AND ") or Q("TRUE")
        self.exited = joined(plan.exits, " OR ", "d.at") or Q("FALSE")
        self.unless = (q("NOT coalesce({}, FALSE)", compiled(plan.unless, "d.at"))
                       if plan.unless is not None else Q("TRUE"))

    def select(self, i: int) -> Q:
        columns = ", ".join(f'c."{col}" AS "{col}"' for col in CUSTOMER_COLUMNS)
        head = q("SELECT {} AS s, d.key, d.occurrence, o.id AS order_id, c.id AS customer_id, "
                 "d.at + to_seconds({}) AS due_at, o.country AS ship_country, o.state AS ship_state, "
                 "o.marketplace AS marketplace, " + columns + ",\n    {} AS guard_ok, {} AS unless_ok, {} AS exited\n  ",
                 i, self.step.offset, self.guard, self.unless, self.exited)
        if self.plan.subject == "order":
            source = "FROM resolved d JOIN ord o ON o.id = d.order_id JOIN cust c ON c.id = o.customer_id"
        else:
            source = "FROM resolved d JOIN cust c ON c.id = d.customer_id LEFT JOIN ord o ON o.id = d.order_id"
        if any(alias == "r" for alias, _ in self.fields):
            source += " LEFT JOIN rev r ON r.order_id = o.id"
        if any(alias == "ct" for alias, _ in self.fields):
            source += " LEFT JOIN crt ct ON ct.id = d.cart_id" if self.plan.subject != "order" else \
                " LEFT JOIN crt ct ON FALSE"
        return head + source + q(" WHERE d.s = {}", i)


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
            ",\n  (SELECT list(DISTINCT coalesce(s.channel, '*')) FROM suppressions s\n"
            "     WHERE s.customer_id = c.id AND s.occurred_at <= {}) AS suppressed,\n"
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
            NOW, plan.purpose, NOW, NOW, plan.purpose, NOW, FLOW, plan.purpose, NOW, cap_window,
            FLOW, plan.once_per or "", extra,
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
