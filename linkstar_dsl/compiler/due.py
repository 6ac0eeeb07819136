"""The due query: one parameterised SQL statement per flow step.

It selects the trigger occurrences whose due time falls in (since, now] (an index range scan on
`(event, occurred_at)`, so a tick costs what is due, not the size of the history), plus those the
ledger deferred to a time now past, leaves out those the ledger already decided, and evaluates the
guards and exits at `now`.  The recipients' suppressions, consents and past sends are fetched for
the whole tick at once (`gate_inputs.py`); `build_explain` computes them in the same query.

SQL text and its parameters are built together as `Q` values, so a `?` and its value can never
drift apart.
"""

from __future__ import annotations

import attrs

from ..schema import Schema
from .plan import FlowPlan, StepPlan
from .sql import _NOW, ExprCompiler

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


def build(plan: FlowPlan, step: StepPlan, schema: Schema) -> DueQuery:
    """The tick query: occurrences due in (since, now] and deferrals now due, not yet decided.

    The due occurrences are selected first, into a materialised CTE: a range scan for the fresh
    ones, the ledger's deferrals for the others.  Every gate input is then computed for those rows
    only.
    """
    events = _events(plan)
    due = q(
        "WITH due AS MATERIALIZED (\n"
        "  SELECT x.* FROM {} x WHERE x.event = {} AND x.occurred_at > {} - to_seconds({})"
        " AND x.occurred_at <= {} - to_seconds({})"
        " AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.key = concat({}, ':', {}, ':', x.id))\n"
        "  UNION ALL\n"
        "  SELECT x.* FROM {} x WHERE x.event = {} AND x.id IN (SELECT l.occurrence FROM ledger l"
        " WHERE l.flow = {} AND l.step = {} AND l.decision = 'defer' AND l.send_at <= {}))\n",
        events, plan.event, SINCE, step.offset, NOW, step.offset, FLOW, STEP,
        events, plan.event, FLOW, STEP, NOW)
    whole = due + _select(plan, step, schema, events=Q("due"), gate_inputs=False)() + "\nORDER BY due_at, key"
    probe = due + "SELECT count(*) FROM due"
    return DueQuery(whole.sql, whole.params, probe.sql, probe.params)


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
            "      AND l.decision = 'send' AND l.send_at <= {}) AS last_send,\n"
            "  (SELECT count(*) FROM ledger l WHERE l.customer_id = c.id AND l.purpose = {}\n"
            "      AND l.decision = 'send' AND l.send_at > {} - to_seconds({})) AS cap_used,\n"
            "  EXISTS (SELECT 1 FROM ledger l WHERE l.flow = {} AND l.decision = 'send'\n"
            "      AND (l.order_id = o.id OR ({} = 'customer' AND l.customer_id = c.id))) AS once_used{}\n",
            NOW, plan.purpose, NOW, NOW, plan.purpose, NOW, plan.purpose, NOW, cap_window,
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
        return q("(SELECT concat('birthday:', id, ':', y) AS id, id AS customer_id, 'birthday' AS event, "
                 "timezone(coalesce(timezone, 'UTC'), CAST(make_date(CAST(y AS INTEGER), 1, 1) + "
                 "CAST(birthday - make_date(year(birthday), 1, 1) AS INTEGER) AS TIMESTAMP)) AS occurred_at, "
                 "NULL AS cart_id, NULL AS order_id "
                 "FROM customers, range(year(CAST({} AS TIMESTAMPTZ)) - 1, year(CAST({} AS TIMESTAMPTZ)) + 1) AS years(y) "
                 "WHERE birthday IS NOT NULL)",
                 SINCE, NOW)
    return Q("customer_events")
