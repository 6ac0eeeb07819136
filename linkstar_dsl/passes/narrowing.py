"""What a flow can reach: the countries, marketplaces and fulfilment kinds its guards allow.

The guards are read as sets: `customer.country == JP` keeps {JP}, `!= JP` removes it,
`in [JP, KR]` keeps both, `and` intersects, `or` unites, and anything else says nothing (the
whole set stays reachable).  `market` clauses narrow the countries the same way.  The result
decides which market and platform policies apply to a flow: every reachable one.
"""

from __future__ import annotations

from collections.abc import Iterable

from .. import ast
from ..policies import MARKET_COUNTRIES
from ..schema import Schema

#: Fields whose value says where the buyer is.
COUNTRY_FIELDS = ("customer.country", "order.country")
OTHER = "(other)"


def _values(expr) -> set[str] | None:
    if isinstance(expr, ast.Path) and len(expr.parts) == 1:
        return {expr.parts[0].value}
    if isinstance(expr, ast.StringLit):
        return {expr.value}
    if isinstance(expr, ast.ListExpr):
        out: set[str] = set()
        for item in expr.items:
            values = _values(item)
            if values is None:
                return None
            out |= values
        return out
    return None


def narrow(expr, fields: tuple[str, ...], universe: frozenset[str]) -> frozenset[str] | None:
    """The values of `fields` the condition allows, or None when it says nothing about them."""
    if isinstance(expr, ast.BoolOp):
        parts = [narrow(op, fields, universe) for op in expr.operands]
        if expr.op == "and":
            known = [p for p in parts if p is not None]
            if not known:
                return None
            result = universe
            for p in known:
                result &= p
            return result
        if any(p is None for p in parts):
            return None
        result = frozenset()
        for p in parts:
            result |= p
        return result
    if isinstance(expr, ast.Not):
        inner = narrow(expr.operand, fields, universe)
        return None if inner is None else universe - inner
    if isinstance(expr, ast.Compare) and expr.op in ("==", "!="):
        for field_side, value_side in ((expr.left, expr.right), (expr.right, expr.left)):
            if isinstance(field_side, ast.Path) and field_side.dotted in fields:
                values = _values(value_side)
                if values is None:
                    return None
                kept = frozenset(values) & universe
                return kept if expr.op == "==" else universe - kept
        return None
    if isinstance(expr, ast.Member) and isinstance(expr.item, ast.Path) and expr.item.dotted in fields:
        values = _values(expr.container)
        if values is None:
            return None
        kept = frozenset(values) & universe
        return universe - kept if expr.negated else kept
    return None


def guards(flow: ast.Flow) -> list:
    return [w.expr for w in flow.find(ast.Where)]


def reachable(flow: ast.Flow, fields: tuple[str, ...], universe: Iterable[str]) -> frozenset[str]:
    allowed = frozenset(universe)
    for expr in guards(flow):
        narrowed = narrow(expr, fields, allowed)
        if narrowed is not None:
            allowed = narrowed
    return allowed


def reachable_countries(flow: ast.Flow, schema: Schema) -> frozenset[str]:
    enum = schema.enums.get("country")
    countries = frozenset(v.value for v in enum.values) if enum else frozenset()
    universe = countries | {OTHER}
    for market in flow.find(ast.Market):
        named: set[str] = set()
        for name in market.names:
            named |= set(MARKET_COUNTRIES.get(name.value, (name.value,)))
        universe &= frozenset(named)
    return reachable(flow, COUNTRY_FIELDS, universe)


def reachable_values(flow: ast.Flow, schema: Schema, fields: str | tuple[str, ...],
                     enum_name: str) -> frozenset[str]:
    enum = schema.enums.get(enum_name)
    universe = frozenset(v.value for v in enum.values) if enum else frozenset()
    return reachable(flow, (fields,) if isinstance(fields, str) else fields, universe)
