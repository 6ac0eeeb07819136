"""The AST nodes under a position, innermost first, each with its parent."""

from __future__ import annotations

from .. import ast

EXPRESSIONS = (ast.Path, ast.Call, ast.ListExpr, ast.BoolOp, ast.Not, ast.Compare, ast.Member,
               ast.Presence, ast.Within, ast.Arith, ast.Negate, ast.IntLit, ast.DecimalLit,
               ast.MoneyLit, ast.DurationLit, ast.PercentLit, ast.TimeLit, ast.StringLit, ast.BoolLit)


def at(module: ast.Module, offset: int) -> list[tuple[ast.Node, ast.Node | None]]:
    """(node, parent) for every node whose span holds `offset`, innermost first.

    The tree is walked without recursion (expressions can nest deeply), and a node's children
    are not assumed to lie inside its span: a step's clauses follow the step's own words.
    """
    found: list[tuple[int, int, ast.Node, ast.Node | None]] = []
    stack: list[tuple[ast.Node, ast.Node | None, int]] = [(module, None, 0)]
    while stack:
        node, parent, depth = stack.pop()
        span = node.span
        if span.start <= offset < span.end or span.start == offset == span.end:
            found.append((span.end - span.start, -depth, node, parent))
        stack.extend((child, node, depth + 1) for child in node.children())
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [(node, parent) for _, _, node, parent in found]


def innermost(module: ast.Module, offset: int, kinds: tuple[type, ...]) -> tuple[ast.Node, ast.Node | None] | None:
    return next(((n, p) for n, p in at(module, offset) if isinstance(n, kinds)), None)
