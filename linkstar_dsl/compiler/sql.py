"""Guard expressions → parameterised DuckDB SQL.

Identifiers come only from the schema (an entity's alias and a declared field name); every value
written in a flow, a name of an event or enum value included, travels as a `?` parameter, so no
text from a `.flow` file is ever spliced into SQL.  The clock is a parameter too (`now`).

Aliases in the due query: `o` the order, `c` the customer, `r` the order's review, `ct` the cart
of a cart event.  A bare event name is true when that event happened to the triggering order
(order events) or customer (customer events) at or before now.

Event lookups read the events tables by default.  The tick instead hands the compiler, per due
row, lists of the order's and the customer's events (`Sources.lists`), and a lookup becomes a
filter over a short list.  The compiler records what an expression reads (`fields`, `reads`), so
the tick fetches only that.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from .. import ast
from ..schema import Schema

ALIASES = {"order": "o", "customer": "c", "review": "r", "cart": "ct"}


class Unsupported(Exception):
    """An expression the SQL compiler cannot express (reported by `linkstar run` as an error)."""


@attrs.frozen
class Sources:
    """Where event lookups read: the events tables, or (`lists`) per-row lists of events.

    A list holds structs `{event, ts}`; `order_events` is then the SQL for the list of the order's
    events, `customer_events` for the customer's, and `orders` for the events of all the
    customer's orders (what `count()` of an order event counts).
    """

    order_events: str = "order_events"
    customer_events: str = "customer_events"
    #: The orders a `count()` of order events looks through, by `customer_id` (tables only).
    orders: str = "orders"
    lists: bool = False


TABLES = Sources()


class ExprCompiler:
    def __init__(self, schema: Schema, after: str | None = None, sources: Sources = TABLES) -> None:
        self.schema = schema
        self.params: list = []
        #: SQL for the trigger occurrence's time: when set (for `unless` and `exit when`), an
        #: event counts only if it happened after the trigger, as SPEC.md §3.5 says.
        self.after = after
        self.sources = sources
        #: (alias, column) of every record field read.
        self.fields: set[tuple[str, str]] = set()
        #: What else is read: "order_events", "customer_events", "customer_orders" (a count()
        #: over all of the customer's orders).
        self.reads: set[str] = set()

    def param(self, value) -> str:
        self.params.append(value)
        return "?"

    def now(self) -> str:
        return self.param(_NOW)

    def compile(self, expr) -> str:
        method = getattr(self, "_" + type(expr).__name__, None)
        if method is None:
            raise Unsupported(f"cannot compile {type(expr).__name__}")
        return method(expr)

    # ------------------------------------------------------------------ literals

    def _IntLit(self, e: ast.IntLit) -> str:
        return self.param(e.value)

    def _DecimalLit(self, e: ast.DecimalLit) -> str:
        return self.param(e.value)

    def _PercentLit(self, e: ast.PercentLit) -> str:
        return self.param(e.value / Decimal(100))

    def _StringLit(self, e: ast.StringLit) -> str:
        return self.param(e.value)

    def _BoolLit(self, e: ast.BoolLit) -> str:
        return "TRUE" if e.value else "FALSE"

    def _DurationLit(self, e: ast.DurationLit) -> str:
        return f"to_seconds({self.param(e.seconds)})"

    def _MoneyLit(self, e: ast.MoneyLit) -> str:
        raise Unsupported("money outside a comparison")

    # --------------------------------------------------------------------- names

    def _Path(self, e: ast.Path) -> str:
        head = e.parts[0].value
        if head in ALIASES and len(e.parts) == 2:
            field = self.schema.field(head, e.parts[1].value)
            if field is None:
                raise Unsupported(f"unknown field {e.dotted}")
            self.fields.add((ALIASES[head], field.name.value))
            return f'{ALIASES[head]}."{field.name.value}"'
        if len(e.parts) == 1 and head in self.schema.events:
            return self._event_exists(head, None)
        if len(e.parts) == 1 and self.schema.enum_of_value(head):
            return self.param(head)
        raise Unsupported(f"cannot compile the name {e.dotted}")

    def _event_exists(self, event: str, within: ast.DurationLit | None) -> str:
        # Parameters are appended in the order their `?` appear: build the text left to right.
        table, key, owner = self._event_source(event)
        if self.sources.lists:
            return f"({self._event_count(table, event, within, 'x.ts', self.after)} > 0)"
        sql = f"EXISTS (SELECT 1 FROM {table} x WHERE x.{key} = {owner} AND "
        return sql + self._event_filter(event, within, "x.occurred_at", self.after) + ")"

    def _event_filter(self, event: str, within, at: str, after: str | None) -> str:
        """The event is `event`, happened at or before now (within the duration), after `after`."""
        sql = f"x.event = {self.param(event)} AND {at} <= {self.now()}"
        if within is not None:
            sql += f" AND {at} > {self.now()} - to_seconds({self.param(within.seconds)})"
        if after is not None:
            sql += f" AND {at} > {after}"
        return sql

    def _event_count(self, events: str, event: str, within, at: str, after: str | None) -> str:
        """How many of a list's events pass `_event_filter` (0 for no list)."""
        return f"coalesce(len(list_filter({events}, lambda x: {self._event_filter(event, within, at, after)})), 0)"

    def _event_source(self, event: str) -> tuple[str, str, str]:
        subject = self.schema.events[event].subject.value
        if subject == "order":
            self.reads.add("order_events")
            return self.sources.order_events, "order_id", "o.id"
        self.reads.add("customer_events")
        return self.sources.customer_events, "customer_id", "c.id"

    # ---------------------------------------------------------------- operators

    def _BoolOp(self, e: ast.BoolOp) -> str:
        joiner = " AND " if e.op == "and" else " OR "
        return "(" + joiner.join(self.compile(o) for o in e.operands) + ")"

    def _Not(self, e: ast.Not) -> str:
        return f"(NOT coalesce({self.compile(e.operand)}, FALSE))"

    def _Compare(self, e: ast.Compare) -> str:
        op = {"==": "=", "!=": "<>"}.get(e.op, e.op)
        for money, other, flipped in ((e.right, e.left, False), (e.left, e.right, True)):
            if isinstance(money, ast.MoneyLit):
                column = self.compile(other)
                amount = self.param(money.amount)
                currency = self.param(money.currency)
                cmp = f"{amount} {op} {column}" if flipped else f"{column} {op} {amount}"
                alias = column.rsplit('.', 1)[0]
                self.fields.add((alias, _currency_column(other)))
                same = f"{alias}.\"{_currency_column(other)}\" = {currency}"
                if op == "<>":
                    return f"(NOT ({column} = {amount} AND {same}))"
                return f"({cmp} AND {same})"
        return f"({self.compile(e.left)} {op} {self.compile(e.right)})"

    def _Member(self, e: ast.Member) -> str:
        if isinstance(e.container, ast.ListExpr):
            item = self.compile(e.item)
            values = ", ".join(self.compile(i) for i in e.container.items) or "NULL"
            sql = f"({item} IN ({values}))"
        else:
            container = self.compile(e.container)
            sql = f"list_contains({container}, {self.compile(e.item)})"
        return f"(NOT coalesce({sql}, FALSE))" if e.negated else sql

    def _Presence(self, e: ast.Presence) -> str:
        return f"({self.compile(e.operand)} IS {'NULL' if e.missing else 'NOT NULL'})"

    def _Within(self, e: ast.Within) -> str:
        if isinstance(e.operand, ast.Path) and e.operand.dotted in self.schema.events:
            return self._event_exists(e.operand.dotted, e.duration)
        raise Unsupported("`within` needs an event")

    def _Call(self, e: ast.Call) -> str:
        if e.func.value != "count" or len(e.args) != 1:
            raise Unsupported(f"function {e.func.value}")
        arg = e.args[0]
        within = arg.duration if isinstance(arg, ast.Within) else None
        event_path = arg.operand if isinstance(arg, ast.Within) else arg
        event = event_path.dotted
        table, key, owner = self._event_source(event)
        # count() counts the customer's events across all their orders, as SPEC.md says.
        if key == "order_id":
            self.reads.add("customer_orders")
            if self.sources.lists:
                return self._event_count(self.sources.orders, event, within, "x.ts", None)
            scope = f"x.order_id IN (SELECT id FROM {self.sources.orders} WHERE customer_id = c.id)"
        elif self.sources.lists:
            return self._event_count(table, event, within, "x.ts", None)
        else:
            scope = f"x.{key} = {owner}"
        return f"(SELECT count(*) FROM {table} x WHERE {scope} AND {self._event_filter(event, within, 'x.occurred_at', None)})"

    def _Arith(self, e: ast.Arith) -> str:
        return f"({self.compile(e.left)} {e.op} {self.compile(e.right)})"

    def _Negate(self, e: ast.Negate) -> str:
        return f"({e.sign}{self.compile(e.operand)})"

    def _ListExpr(self, e: ast.ListExpr) -> str:
        return "[" + ", ".join(self.compile(i) for i in e.items) + "]"


class _Now:
    """Placeholder for the clock in a parameter list; `bind` swaps in the real time."""

    def __repr__(self) -> str:
        return "<now>"


_NOW = _Now()


def bind(params: list, now) -> list:
    return [now if p is _NOW else p for p in params]


def _currency_column(expr) -> str:
    if isinstance(expr, ast.Path) and len(expr.parts) == 2:
        return f"{expr.parts[1].value}_currency"
    raise Unsupported("money is compared with a field only")
