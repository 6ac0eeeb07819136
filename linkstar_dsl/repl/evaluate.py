"""Running what was typed: an expression's value at the clock, a flow's decisions up to the clock.

Expressions are compiled by the same SQL compiler the due queries use and evaluated in DuckDB
against the chosen order (joined as a flow on an order event sees it) or the chosen customer
(their latest order and latest abandoned cart, as a flow on a customer event sees them).  Flows
are planned as `linkstar run` plans them and replayed over the window before the clock with
every gate, through `Simulation`, in a transaction that is rolled back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import duckdb

from .. import ast
from ..compiler.sql import ALIASES, ExprCompiler, Unsupported, bind
from ..gates import Decision
from .state import Session

#: Simulation ticks, finest first: one hour (as `linkstar simulate` steps by default) unless the
#: window and the number of flow steps would take more than `QUERY_BUDGET` due queries.
TICKS = tuple(timedelta(hours=h) for h in (1, 2, 3, 6, 12, 24, 48, 168))
QUERY_BUDGET = 800


class EvaluationError(Exception):
    """An expression or flow the store could not evaluate; the message is one line."""


@attrs.frozen
class Value:
    value: object
    #: the currency of a money field, read from its `<field>_currency` column
    currency: str | None = None


@attrs.frozen
class Counts:
    """How a condition comes out over every order placed by the clock."""

    true: int
    false: int
    unknown: int

    @property
    def total(self) -> int:
        return self.true + self.false + self.unknown


# ----------------------------------------------------------------------------------- expressions


def _compile(session: Session, expr) -> tuple[str, list, str | None]:
    """SQL for the expression, its parameters, and the SQL of its currency (money fields)."""
    compiler = ExprCompiler(session.schema)
    try:
        sql = compiler.compile(expr)
    except Unsupported as exc:
        raise EvaluationError(f"this cannot be evaluated against the store: {exc}") from None
    currency = None
    if isinstance(expr, ast.Path) and len(expr.parts) == 2 and expr.parts[0].value in ALIASES:
        field = session.schema.field(expr.parts[0].value, expr.parts[1].value)
        if field is not None and field.type.name.value == "money":
            currency = f'{ALIASES[expr.parts[0].value]}."{field.name.value}_currency"'
    return sql, bind(compiler.params, session.clock), currency


def value_for_subject(session: Session, expr) -> Value:
    """The expression's value for the chosen order (or customer) at the clock."""
    sql, params, currency = _compile(session, expr)
    now = session.clock
    if session.order_id is not None:
        query = (f"SELECT {sql}, {currency or 'NULL'} FROM orders o JOIN customers c ON c.id = o.customer_id "
                 "LEFT JOIN reviews r ON r.order_id = o.id LEFT JOIN carts ct ON FALSE WHERE o.id = ?")
        params = params + [session.order_id]
    else:
        query = (f"SELECT {sql}, {currency or 'NULL'} FROM customers c "
                 "LEFT JOIN orders o ON o.id = (SELECT arg_max(id, placed_at) FROM orders "
                 "  WHERE customer_id = c.id AND placed_at <= ?) "
                 "LEFT JOIN reviews r ON r.order_id = o.id "
                 "LEFT JOIN carts ct ON ct.id = (SELECT arg_max(x.cart_id, x.occurred_at) "
                 "  FROM customer_events x "
                 "  WHERE x.customer_id = c.id AND x.event = 'cart_abandoned' AND x.occurred_at <= ?) "
                 "WHERE c.id = ?")
        params = params + [now, now, session.customer_id]
    row = _fetch(session, query, params)
    if row is None:
        raise EvaluationError(f"{session.subject_label()} is not in the store")
    return Value(row[0], row[1])


def counts_over_orders(session: Session, expr) -> Counts:
    """How often a condition holds over the orders placed by the clock."""
    sql, params, _ = _compile(session, expr)
    query = ("SELECT count(*) FILTER (WHERE v), count(*) FILTER (WHERE NOT v), "
             "count(*) FILTER (WHERE v IS NULL) "
             f"FROM (SELECT CAST({sql} AS BOOLEAN) AS v "
             "FROM orders o JOIN customers c ON c.id = o.customer_id "
             "LEFT JOIN reviews r ON r.order_id = o.id LEFT JOIN carts ct ON FALSE WHERE o.placed_at <= ?)")
    row = _fetch(session, query, params + [session.clock])
    return Counts(*row)


def _fetch(session: Session, query: str, params: list):
    try:
        return session.con.execute(query, params).fetchone()
    except duckdb.Error as exc:
        raise EvaluationError(_first_line(exc)) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"the store could not evaluate this: {text.splitlines()[0]}" if text else type(exc).__name__


# ------------------------------------------------------------------------------------------ flows


@attrs.frozen
class FlowRun:
    start: datetime
    end: datetime
    tick: timedelta
    decisions: tuple[Decision, ...]


def tick_for(window: timedelta, steps: int) -> timedelta:
    """The finest tick that keeps a simulation within the query budget (each tick runs every step)."""
    for tick in TICKS:
        if -(-window // tick) * max(steps, 1) <= QUERY_BUDGET:
            return tick
    return TICKS[-1]


def simulate(session: Session, plans) -> FlowRun:
    """Every decision the flows make over (clock - window, clock], every gate included."""
    from ..simulate import Simulation

    end = session.clock
    try:
        start = end - session.window
    except OverflowError:
        raise EvaluationError("the window reaches before the year 1; move the clock (`:time`)") from None
    plans = list(plans)
    tick = tick_for(session.window, sum(len(p.steps) for p in plans))
    con = session.con
    con.execute("BEGIN TRANSACTION")
    try:
        decisions = Simulation(con, plans, session.schema).run(start, end, tick)
    except duckdb.Error as exc:
        raise EvaluationError(_first_line(exc)) from None
    except OverflowError:
        raise EvaluationError("a send time falls outside the calendar; move the clock (`:time`)") from None
    finally:
        con.execute("ROLLBACK")
    return FlowRun(start, end, tick, tuple(decisions))


def explain(session: Session, subject: str, flow_name: str | None = None) -> str:
    from ..explain import explain as explain_traces
    from ..explain import render

    con = session.con
    try:
        traces = explain_traces(con, session.plans(), session.schema, subject, session.clock, flow_name)
    except duckdb.Error as exc:
        raise EvaluationError(_first_line(exc)) from None
    label = _label(session, subject)
    return render(traces, label, session.clock)


def _label(session: Session, subject: str) -> str:
    found = session.con.execute("SELECT count(*) FROM orders WHERE id = ?", [subject]).fetchone()[0]
    return f"order {subject}" if found else f"customer {subject}"
