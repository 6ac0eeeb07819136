"""What the user typed: a `:command`, an expression, or flows and declarations; and is it complete?

An expression is checked by the same parser and passes as `linkstar check`: it is placed in the
`where` clause of a stand-in flow, checked against the session's schema, and every diagnostic
inside it is moved back onto the text the user typed, so the carets point at what they wrote.
The stand-in's own findings (no purpose, no channel) are not the user's and are dropped.
"""

from __future__ import annotations

import re

import attrs

from .. import ast
from ..diagnostics import Diagnostic, Fix, Label, Severity, make
from ..schema import Schema
from ..source import SourceFile, Span
from ..types import Type

#: The stand-in flow an expression is checked in; the expression follows it on the same line.
EXPRESSION_PREFIX = "on delivered where "
_WHERE_AT = EXPRESSION_PREFIX.index("where")
SOURCE_NAME = "<repl>"
#: Keywords an expression may start with; any other keyword starts flows or declarations.
EXPRESSION_KEYWORDS = frozenset({"not", "true", "false"})
#: Items whose first line is complete on its own but which are written with an indented body.
BLOCK_WORDS = frozenset({"flow", "policy", "entity"})

EXAMPLE_FLOW = "on delivered + 48h where not refunded via line, email"

_FIRST_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _content(text: str) -> str:
    """`text` without its leading blank and comment-only lines."""
    lines = text.split("\n")
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    return "\n".join(lines).lstrip()


def kind_of(text: str) -> str:
    """"empty", "command" (`:load …`), "items" (flows, declarations, policies) or "expression"."""
    from ..syntax_errors import keywords

    content = _content(text)
    if not content:
        return "empty"
    if content.startswith(":"):
        return "command"
    word = _first_word(content)
    if word in keywords() and word not in EXPRESSION_KEYWORDS:
        return "items"
    return "expression"


def _first_word(text: str) -> str:
    word = _FIRST_WORD.match(_content(text))
    return word.group() if word else ""


def parser_text(text: str, kind: str) -> str:
    """The text the parser reads for this input."""
    return EXPRESSION_PREFIX + text if kind == "expression" else text


def incomplete(text: str) -> bool:
    """True when the parser needs more to finish the input (`order.total >`, `flow x`, `[JP,`).

    Input that is already wrong is complete: submitting it shows the diagnostic.
    """
    from ..parser import accepted_at

    kind = kind_of(text)
    if kind not in ("expression", "items"):
        return False
    full = parser_text(text, kind)
    accepts = accepted_at(SourceFile(SOURCE_NAME, full), full, len(full))
    return accepts is not None and "$END" not in accepts


def should_submit(text: str) -> bool:
    """Enter submits unless the input goes on: an indented line, the header of a block (`policy
    house`, `entity order`), or input the parser needs more of.

    A blank line always submits, and a `:command` is one line.
    """
    if not text.strip() or kind_of(text) == "command":
        return True
    lines = text.split("\n")
    if len(lines) > 1 and not lines[-1].strip():
        return True
    if len(lines) > 1 and lines[-1][:1] in (" ", "\t"):
        return False
    if len(lines) == 1 and _first_word(text) in BLOCK_WORDS:
        return False
    return not incomplete(text)


def next_indent(text: str) -> str:
    """Indentation for the next line of multi-line input: the last line's, or two spaces after a header."""
    last = text.split("\n")[-1]
    indent = last[: len(last) - len(last.lstrip())]
    if not indent and kind_of(text) == "items":
        return "  "
    return indent


# ---------------------------------------------------------------------------------- expressions


@attrs.frozen
class CheckedExpression:
    source: SourceFile
    #: None when the text did not parse as one expression
    expr: object | None
    type: Type | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.expr is not None and not any(d.severity is Severity.ERROR for d in self.diagnostics)


def check_expression(text: str, schema: Schema) -> CheckedExpression:
    from ..checker import check_source
    from ..passes.typecheck import _Typer

    user = SourceFile(SOURCE_NAME, text)
    full = SourceFile(SOURCE_NAME, EXPRESSION_PREFIX + text)
    report = check_source(full, schema=schema)
    offset = len(EXPRESSION_PREFIX)
    where = _where_clause(report.module)
    kept = []
    for d in report.diagnostics:
        if d.span is None or d.span.source is not full or d.span.start < _WHERE_AT:
            continue  # about the stand-in flow, not the expression
        if where is not None and d.code == "not-a-condition" and _same(d.span, where.expr.span):
            continue  # a value of any type may be looked at here
        kept.append(moved(d, full, user, offset))
    expr = where.expr if where is not None else None
    extra = _extra_clause(report.module, where)
    if extra is not None:
        kept.append(moved(_not_an_expression(extra), full, user, offset))
        expr = None
    expr_type = _Typer(schema).type_of(expr) if expr is not None else None
    return CheckedExpression(user, expr, expr_type, tuple(kept))


def _where_clause(module: ast.Module | None) -> ast.Where | None:
    if module is None or len(module.flows) != 1:
        return None
    return next((c for c in module.flows[0].clauses if isinstance(c, ast.Where)), None)


def _extra_clause(module: ast.Module | None, where: ast.Where | None) -> ast.Node | None:
    """The first thing after the expression that made the input more than one expression."""
    if module is None or where is None:
        return None
    others = [c for c in module.flows[0].clauses if c is not where and not isinstance(c, ast.Trigger)]
    others += [i for i in module.items if i is not module.flows[0]]
    return min(others, key=lambda n: n.span.start) if others else None


def _not_an_expression(node: ast.Node) -> Diagnostic:
    word = node.span.text.split(None, 1)[0] if node.span.text.strip() else node.span.text
    return make("unexpected-token", node.span, found=f"`{word}`", context=" after the expression",
                label="a clause of a flow",
                help=(f"to try a flow, start it with its trigger, for example `{EXAMPLE_FLOW}`",))


def _same(a: Span, b: Span) -> bool:
    return a.start == b.start and a.end == b.end


def moved(d: Diagnostic, full: SourceFile, user: SourceFile, offset: int) -> Diagnostic:
    """The diagnostic with every span in the stand-in text moved onto the user's text."""

    def move(span: Span) -> Span:
        if span.source is not full:
            return span
        start = min(max(0, span.start - offset), len(user.text))
        end = min(max(start, span.end - offset), len(user.text) + 1)
        return Span(user, start, end)

    fix = d.fix
    if fix is not None:
        fix = Fix(move(fix.span), fix.replacement, fix.description) if fix.span.start >= offset else None
    return attrs.evolve(d, span=move(d.span), fix=fix,
                        labels=tuple(Label(move(label.span), label.text) for label in d.labels))
