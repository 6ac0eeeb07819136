"""Guard expressions → parameterised DuckDB SQL.

Identifiers come only from the schema (an entity's alias and a declared field name); every value
written in a flow, a name of an event or enum value included, travels as a `?` parameter, so no
text from a `.flow` file is ever spliced into SQL.  The clock is a parameter too (`now`).

Aliases in the due query: `o` the order, `c` the customer, `r` the order's review, `ct` the cart
of a cart event.  A bare event name is true when that event happened to the triggering order
(order events) or customer (customer events) at or before now.  In `unless` and `exit when` an
event counts only after the trigger, and `ordered` there counts every order of the customer: the
customer placed another order.

Event lookups read the events tables by default.  The tick instead hands the compiler, per due
row, lists of the order's and the customer's events (`Sources.lists`), and a lookup becomes a
filter over a short list.  The compiler records what an expression reads (`fields`, `reads`), so
the tick fetches only that.
"""

from __future__ import annotations

import string
from decimal import Decimal

import attrs

from .. import ast
from ..schema import Schema

ALIASES = {"order": "o", "customer": "c", "review": "r", "cart": "ct"}
#: The event that places an order: in `unless` and `exit when` it counts the customer's orders.
PLACED = "ordered"


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
        raise _amount_alone()

    def _TimeLit(self, e: ast.TimeLit) -> str:
        return f"make_time({self.param(e.hour)}, {self.param(e.minute)}, 0)"

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
        if self.after is not None and event == PLACED:
            return self._another_order_placed(within)
        table, key, owner = self._event_source(event)
        if self.sources.lists:
            return f"({self._event_count(table, event, within, 'x.ts', self.after)} > 0)"
        sql = f"EXISTS (SELECT 1 FROM {table} x WHERE x.{key} = {owner} AND "
        return sql + self._event_filter(event, within, "x.occurred_at", self.after) + ")"

    def _another_order_placed(self, within: ast.DurationLit | None) -> str:
        """`ordered` after the trigger: any of the customer's orders was placed since (SPEC.md §3.5).

        An order's own `ordered` comes before everything else that happens to it, so after the
        trigger the word can only mean another order of the same customer.
        """
        self.reads.add("customer_orders")
        if self.sources.lists:
            return f"({self._event_count(self.sources.orders, PLACED, within, 'x.ts', self.after)} > 0)"
        scope = f"x.order_id IN (SELECT id FROM {self.sources.orders} WHERE customer_id = c.id)"
        return (f"EXISTS (SELECT 1 FROM {self.sources.order_events} x WHERE {scope} AND "
                + self._event_filter(PLACED, within, "x.occurred_at", self.after) + ")")

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
        if self._is_money(e.left) or self._is_money(e.right):
            return self._emit(_money_compare(e.op, self._money(e.left), self._money(e.right)))
        op = {"==": "=", "!=": "<>"}.get(e.op, e.op)
        return f"({self.compile(e.left)} {op} {self.compile(e.right)})"

    def _Member(self, e: ast.Member) -> str:
        items = e.container.items if isinstance(e.container, ast.ListExpr) else ()
        if self._is_money(e.item) or any(self._is_money(i) for i in items):
            sql = self._emit(self._money_member(e))
        elif isinstance(e.container, ast.ListExpr):
            item = self.compile(e.item)
            values = ", ".join(self.compile(i) for i in e.container.items) or "NULL"
            sql = f"({item} IN ({values}))"
        else:
            container = self.compile(e.container)
            sql = f"list_contains({container}, {self.compile(e.item)})"
        return f"(NOT coalesce({sql}, FALSE))" if e.negated else sql

    def _Presence(self, e: ast.Presence) -> str:
        if self._is_money(e.operand):
            amount, currency = self._money(e.operand)
            test = "({a} IS NULL OR {c} IS NULL)" if e.missing else "({a} IS NOT NULL AND {c} IS NOT NULL)"
            return self._emit(_fill(test, a=amount, c=currency))
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
        if self._is_money(e):
            raise _amount_alone()
        return self._emit(_arith(self._part(e.left), e.op, self._part(e.right)))

    def _Negate(self, e: ast.Negate) -> str:
        if self._is_money(e):
            raise _amount_alone()
        return f"({e.sign}{self.compile(e.operand)})"

    def _ListExpr(self, e: ast.ListExpr) -> str:
        return "[" + ", ".join(self.compile(i) for i in e.items) + "]"

    # --------------------------------------------------------------------- money

    def compile_money(self, e) -> tuple[str, str]:
        """SQL for a money expression's amount and for its currency, parameters in that order."""
        amount, currency = self._money(e)
        return self._emit(amount), self._emit(currency)

    def _part(self, e) -> _Part:
        """`e` compiled on its own, with its parameters, to be placed later (`_fill`, `_emit`)."""
        saved, self.params = self.params, []
        try:
            return _Part(self.compile(e), tuple(self.params))
        finally:
            self.params = saved

    def _emit(self, part: _Part) -> str:
        self.params.extend(part.params)
        return part.sql

    def _money_field(self, e) -> tuple[str, str] | None:
        """(alias, column) of a money field such as `order.total`, else None."""
        if not isinstance(e, ast.Path) or len(e.parts) != 2 or e.parts[0].value not in ALIASES:
            return None
        field = self.schema.field(e.parts[0].value, e.parts[1].value)
        if field is None or field.type.name.value != "money":
            return None
        return ALIASES[e.parts[0].value], field.name.value

    def _is_money(self, e) -> bool:
        """Whether `e` is an amount of money (the checker has already typed it)."""
        if isinstance(e, ast.MoneyLit):
            return True
        if isinstance(e, ast.Negate):
            return self._is_money(e.operand)
        if isinstance(e, ast.Arith):
            return self._is_money(e.left) or (e.op != "/" and self._is_money(e.right))
        return self._money_field(e) is not None

    def _money(self, e) -> tuple[_Part, _Part]:
        """A money expression as its amount and its currency.

        Money carries its currency through arithmetic: an amount times or divided by a number keeps
        it, and a sum or difference has one only when both sides share it (NULL otherwise, so the
        result is missing: there are no exchange rates here).
        """
        if isinstance(e, ast.MoneyLit):
            return _Part("?", (e.amount,)), _Part("?", (e.currency,))
        if isinstance(e, ast.Negate):
            amount, currency = self._money(e.operand)
            return _fill(f"({e.sign}{{a}})", a=amount), currency
        if isinstance(e, ast.Arith) and e.op in "+-":
            (left, left_currency), (right, right_currency) = self._money(e.left), self._money(e.right)
            same = _fill("(CASE WHEN {l} = {r} THEN {l} END)", l=left_currency, r=right_currency)
            return _arith(left, e.op, right), same
        if isinstance(e, ast.Arith):
            money_left = self._is_money(e.left)
            amount, currency = self._money(e.left if money_left else e.right)
            number = self._part(e.right if money_left else e.left)
            return (_arith(amount, e.op, number) if money_left else _arith(number, e.op, amount)), currency
        found = self._money_field(e)
        if found is None:
            raise Unsupported(f"cannot compile {type(e).__name__} as money")
        alias, column = found
        self.fields.update(((alias, column), (alias, f"{column}_currency")))
        return _Part(f'{alias}."{column}"'), _Part(f'{alias}."{column}_currency"')

    def _money_member(self, e: ast.Member) -> _Part:
        """`order.total in [5 JPY, 10 USD]`: equal to one of the amounts, in its currency."""
        if not isinstance(e.container, ast.ListExpr):
            raise Unsupported("money in a list field")
        item = self._money(e.item)
        tests = [_money_compare("==", item, self._money(i)) for i in e.container.items]
        if not tests:
            return _Part("FALSE")
        return _fill("(" + " OR ".join(f"{{t{i}}}" for i in range(len(tests))) + ")",
                     **{f"t{i}": t for i, t in enumerate(tests)})


class _Now:
    """Placeholder for the clock in a parameter list; `bind` swaps in the real time."""

    def __repr__(self) -> str:
        return "<now>"


_NOW = _Now()


def bind(params: list, now) -> list:
    return [now if p is _NOW else p for p in params]


def _amount_alone() -> Unsupported:
    """A computed amount on its own would lose its currency; comparisons and `compile_money` keep it."""
    return Unsupported("an amount computed outside a comparison (its currency would be lost)")


@attrs.frozen
class _Part:
    """A piece of SQL with the values of its `?` in order, to be placed anywhere, even twice."""

    sql: str
    params: tuple = ()


def _fill(template: str, **parts: _Part) -> _Part:
    """`template` with each `{name}` replaced by that part; the values follow their `?` in order."""
    sql, params = [], []
    for literal, name, _, _ in string.Formatter().parse(template):
        sql.append(literal)
        if name is not None:
            sql.append(parts[name].sql)
            params.extend(parts[name].params)
    return _Part("".join(sql), tuple(params))


def _arith(left: _Part, op: str, right: _Part) -> _Part:
    """`left op right`; an overflow or a division by zero gives a missing value, not an error."""
    if op == "/":
        right = _fill("NULLIF({r}, 0)", r=right)
    if "SELECT" in left.sql or "SELECT" in right.sql:
        # DuckDB's TRY refuses a scalar subquery (a `count()` read from the tables, as `explain`
        # does): the operands become columns of a one-row derived table, and TRY reads those.
        return _fill(f"(SELECT try(l_ {op} r_) FROM (SELECT {{l}} AS l_, {{r}} AS r_))", l=left, r=right)
    return _fill(f"try({{l}} {op} {{r}})", l=left, r=right)


def _money_compare(op: str, left: tuple[_Part, _Part], right: tuple[_Part, _Part]) -> _Part:
    """Two amounts compare only in one currency: `<` across currencies is false, `!=` true; a
    missing amount or currency makes the comparison missing."""
    (la, lc), (ra, rc) = left, right
    if op == "!=":
        return _fill("(CASE WHEN {la} IS NULL OR {lc} IS NULL OR {ra} IS NULL OR {rc} IS NULL THEN NULL "
                     "ELSE ({la} <> {ra} OR {lc} <> {rc}) END)", la=la, lc=lc, ra=ra, rc=rc)
    sql_op = "=" if op == "==" else op
    return _fill(f"({{la}} {sql_op} {{ra}} AND {{lc}} = {{rc}})", la=la, lc=lc, ra=ra, rc=rc)
