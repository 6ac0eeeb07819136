"""`linkstar fmt`: print a parsed file back in the one canonical layout, keeping every comment.

The canonical layout
--------------------

* Top-level items (imports, flows, policies, schema declarations) are separated by exactly one
  blank line, except that one-line `event` and `enum` declarations written on consecutive lines
  stay on consecutive lines.  The file ends with exactly one newline and no line has trailing
  spaces.  A file with no items keeps only its comments (an empty file stays empty).
* `import "path"` is one line.
* A named flow prints its header `flow NAME "title"` and then each clause on its own line,
  indented 2, in source order.  Clauses are never reordered, so the comments beside them stay
  beside them.
* A flow without a header (it starts with `on`) stays one line when it was written on one line
  and that line fits in 100 columns: `on delivered + 48h where not refunded via line, email`.
  Otherwise it takes the long form: the trigger on the first line, every other clause on a line
  of its own indented 2.
* A `step` prints the `via`, `send` and `split` clauses it owns on its own line (`step + 1h via
  email send "x"`) when that fits in 100 columns and no comment sits between them; otherwise
  each owned clause goes on a following line indented 2 more than the step (4 in a flow).  An
  owned clause written after other flow clauses stays where it was written, at flow level.
* A policy prints its header `policy market US "title"` and then one rule per line, indented 2,
  each with its citation (`keep consent 4y "28 USC 1658(a)"`) at its end.
* Schema declarations: `entity NAME "doc"` and then one field per line, indented 2
  (`total: money "What the buyer paid"`, `tags: list[string]?`); `event NAME on NAME "doc"` on
  one line; `enum NAME "doc": a, b, c` on one line when it fits in 100 columns, otherwise the
  header ends at the colon and the values fill the following lines, indented 2.
* Tokens are spelled one way: single spaces around binary operators and after commas, `+ 48h`
  (a space after the sign of an offset), `-x` (none after a unary sign), `5000 JPY`, `10%`,
  times as `09:30`, `5d..30d`, `consent(written)`, `send "x" (coupon = "A", n = 2)`, strings
  re-escaped from their value (`\\"`, `\\\\`, `\\n`, `\\t`, `\\uXXXX` for other unprintable
  characters), names exactly as written, keywords in lower case.
* Parentheses appear only where precedence needs them.  From loosest to tightest: `or`, `and`,
  `not`, the tests (comparisons, `in`, `not in`, `is missing`, `is present`, `within`; a test
  inside a test needs parentheses), `+` and `-` (left-associative), `*` and `/`
  (left-associative), unary signs, atoms.
* The condition of a `where`, an `exit when` or a trigger's `unless` that was written over
  several lines, or that does not fit in 100 columns, puts each top-level `and`/`or` operand on a
  continuation line of its own, indented 2 more than the clause and starting with the operator:

      where not refunded
        and not returned

  Otherwise the condition stays on the clause's line.
* Comments are never lost and never reordered.  A comment on a line of its own is printed above
  the first printed line whose code comes after it, with that line's indentation; after the last
  line of a multi-line item, indented comments that directly follow it (no blank line between)
  stay at the end of the item, and the others go above the next item or at the end of the file.
  A comment after code on the same line stays after the printed line holding that code,
  separated by two spaces.  When lines were joined and a printed line collects several comments,
  they are printed in their source order above it, except that the last one stays at the end of
  the line when it was written after code.
* One blank line is kept wherever the source had one or more blank lines between clauses, rules
  or comments, except at the start of an item and right after its first line.
* Widths are measured in display columns (CJK characters count 2); comments are not counted.
* Formatting is idempotent: formatting formatted text changes nothing.

After printing, the result is parsed again and compared with the original: the same items and
the same comment texts in the same order, or the file is left alone with a `fmt-changed-meaning`
diagnostic.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from decimal import Decimal

import attrs
from wcwidth import wcswidth

from . import ast
from .diagnostics import Diagnostic, make
from .parser import parse_source
from .source import SourceFile, Span

#: The column limit of the canonical layout.
WIDTH = 100

#: Indentation of the lines below an item's first line.
INDENT = 2


@attrs.frozen
class FormatOutcome:
    """The formatted text, or None with the diagnostics that explain why there is none."""

    text: str | None
    diagnostics: tuple[Diagnostic, ...] = ()


def format_source(source: SourceFile) -> FormatOutcome:
    """Format one file, refusing (text=None) when it does not parse or formatting would change it."""
    parsed = parse_source(source)
    if not parsed.ok or parsed.module is None:
        return FormatOutcome(None, parsed.diagnostics)
    try:
        text = _Printer(source, parsed.module).print_module()
        problem = _meaning_change(parsed.module, SourceFile(source.name, text))
    except RecursionError:
        # The parser takes nesting of any depth; printing and comparing recurse over it.
        problem = make("fmt-changed-meaning", Span(source, 0, 0),
                       detail="its expressions are nested too deeply to be checked")
    if problem is not None:
        return FormatOutcome(None, (problem,))
    return FormatOutcome(text, ())


def format_text(text: str, name: str = "<input>") -> str:
    """The canonical text of `text`; raises ValueError with the diagnostics if there is none."""
    outcome = format_source(SourceFile(name, text))
    if outcome.text is None:
        raise ValueError("; ".join(f"{d.code}: {d.message}" for d in outcome.diagnostics))
    return outcome.text


def _meaning_change(original: ast.Module, formatted: SourceFile) -> Diagnostic | None:
    """A `fmt-changed-meaning` diagnostic if the formatted text says something else."""
    fallback = Span(original.span.source, 0, 0)
    reparsed = parse_source(formatted)
    if not reparsed.ok or reparsed.module is None:
        return make("fmt-changed-meaning", fallback, detail="the formatted text does not parse")
    module = reparsed.module
    if module != original:
        for before, after in zip(original.items, module.items):
            if before != after:
                return make("fmt-changed-meaning", before.span,
                            detail="this item would be read differently")
        return make("fmt-changed-meaning", fallback, detail="the items would be read differently")
    before_texts = [c.text for c in original.comments]
    after_texts = [c.text for c in module.comments]
    if before_texts != after_texts:
        for comment, text in zip(original.comments, after_texts):
            if comment.text != text:
                return make("fmt-changed-meaning", comment.span,
                            detail="this comment would be lost or moved out of order")
        return make("fmt-changed-meaning", fallback, detail="a comment would be lost or added")
    return None


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal (wide CJK characters count 2)."""
    width = wcswidth(text)
    return width if width >= 0 else len(text)


# ---------------------------------------------------------------------------- tokens

def _decimal(value: Decimal) -> str:
    return format(value, "f")


def _time(t: ast.TimeLit) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def _duration(d: ast.DurationLit) -> str:
    return f"{d.amount}{d.unit}"


_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def string_literal(value: str) -> str:
    """A string literal whose value is `value`, escaped the canonical way."""
    out = []
    for char in value:
        if char in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[char])
        elif char.isprintable() or char == " " or ord(char) > 0xFFFF:
            # `\uXXXX` cannot spell a character beyond U+FFFF, so such a character stays as it is.
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}")
    return '"' + "".join(out) + '"'


def _names(names: tuple[ast.Name, ...]) -> str:
    return ", ".join(name.value for name in names)


def _offset(offset: ast.Offset) -> str:
    return f"{offset.sign} {_duration(offset.duration)}"


# ----------------------------------------------------------------------- expressions

# Binding strength, loosest first; an operand weaker than its context is parenthesised.
OR, AND, NOT, TEST, SUM, PRODUCT, UNARY, ATOM = range(1, 9)

_TESTS = (ast.Compare, ast.Member, ast.Presence, ast.Within)


def binding(expr: ast.Node) -> int:
    """How tightly `expr` binds, from OR (loosest) to ATOM."""
    if isinstance(expr, ast.BoolOp):
        return OR if expr.op == "or" else AND
    if isinstance(expr, ast.Not):
        return NOT
    if isinstance(expr, _TESTS):
        return TEST
    if isinstance(expr, ast.Arith):
        return SUM if expr.op in "+-" else PRODUCT
    if isinstance(expr, ast.Negate):
        return UNARY
    if type(expr) not in _EXPR_TEXT:
        return OR - 1  # unknown to this printer: always parenthesised
    return ATOM


def expr_text(expr: ast.Node, context: int = OR) -> str:
    """`expr` in canonical spelling, parenthesised if it binds less tightly than `context` needs."""
    text = _EXPR_TEXT.get(type(expr), _as_written)(expr)
    return f"({text})" if binding(expr) < context else text


def operand_context(op: ast.BoolOp) -> int:
    """The binding an operand of `op` needs to print without parentheses."""
    return binding(op) + 1


def _bool_op(e: ast.BoolOp) -> str:
    inner = operand_context(e)
    return f" {e.op} ".join(expr_text(operand, inner) for operand in e.operands)


def _compare(e: ast.Compare) -> str:
    return f"{expr_text(e.left, SUM)} {e.op} {expr_text(e.right, SUM)}"


def _member(e: ast.Member) -> str:
    word = "not in" if e.negated else "in"
    return f"{expr_text(e.item, SUM)} {word} {expr_text(e.container, SUM)}"


def _presence(e: ast.Presence) -> str:
    return f"{expr_text(e.operand, SUM)} is {'missing' if e.missing else 'present'}"


def _within(e: ast.Within) -> str:
    return f"{expr_text(e.operand, SUM)} within {_duration(e.duration)}"


def _arith(e: ast.Arith) -> str:
    level = binding(e)
    return f"{expr_text(e.left, level)} {e.op} {expr_text(e.right, level + 1)}"


def _call(e: ast.Call) -> str:
    return f"{e.func.value}({', '.join(expr_text(arg) for arg in e.args)})"


def _list(e: ast.ListExpr) -> str:
    return f"[{', '.join(expr_text(item) for item in e.items)}]"


_EXPR_TEXT: dict[type, Callable] = {
    ast.IntLit: lambda e: str(e.value),
    ast.DecimalLit: lambda e: _decimal(e.value),
    ast.MoneyLit: lambda e: f"{_decimal(e.amount)} {e.currency}",
    ast.DurationLit: _duration,
    ast.PercentLit: lambda e: f"{_decimal(e.value)}%",
    ast.TimeLit: _time,
    ast.StringLit: lambda e: string_literal(e.value),
    ast.BoolLit: lambda e: "true" if e.value else "false",
    ast.Path: lambda e: e.dotted,
    ast.Call: _call,
    ast.ListExpr: _list,
    ast.BoolOp: _bool_op,
    ast.Not: lambda e: f"not {expr_text(e.operand, NOT)}",
    ast.Compare: _compare,
    ast.Member: _member,
    ast.Presence: _presence,
    ast.Within: _within,
    ast.Arith: _arith,
    ast.Negate: lambda e: f"{e.sign}{expr_text(e.operand, UNARY)}",
}


# --------------------------------------------------------------------------- clauses

def _per_across(per: ast.Name | None, across: ast.Name | None) -> str:
    return (f" per {per.value}" if per else "") + (f" across {across.value}" if across else "")


def _send(c: ast.Send) -> str:
    text = f"send {string_literal(c.template.value)}"
    if c.params:
        text += " (" + ", ".join(f"{p.name.value} = {expr_text(p.value)}" for p in c.params) + ")"
    return text


def trigger_head(t: ast.Trigger) -> str:
    """`on EVENT + 48h at 10:00 local`, without the `unless` condition."""
    text = f"on {t.event.value}"
    if t.offset is not None:
        text += f" {_offset(t.offset)}"
    if t.at is not None:
        text += f" at {_time(t.at.time)}" + (" local" if t.at.local else "")
    return text


def step_head(s: ast.Step) -> str:
    return "step" + (f" {_offset(s.offset)}" if s.offset is not None else "")


def condition_of(clause: ast.Node) -> tuple[str, ast.Node] | None:
    """The text before a clause's condition and the condition, if the clause has one."""
    if isinstance(clause, ast.Where):
        return "where ", clause.expr
    if isinstance(clause, ast.Exit):
        return "exit when ", clause.when
    if isinstance(clause, ast.Trigger) and clause.unless is not None:
        return trigger_head(clause) + " unless ", clause.unless
    return None


def clause_text(c: ast.Node) -> str:
    """One clause, policy rule or field on one line, with the rule's citation if it has one."""
    condition = condition_of(c)
    if condition is not None:
        prefix, expr = condition
        return prefix + expr_text(expr)
    printer = _CLAUSE_TEXT.get(type(c))
    text = printer(c) if printer else _as_written(c)
    return text + _quoted(getattr(c, "cite", None))


def _as_written(node: ast.Node) -> str:
    """A node this printer does not know, as written with its spacing collapsed.

    Only a grammar newer than this module produces one; the meaning check after printing
    refuses the result if collapsing the spacing changed anything.
    """
    return " ".join(node.span.text.split())


def _quoted(text: ast.StringLit | None) -> str:
    """` "text"` for an optional title, doc string or citation; nothing when there is none."""
    return f" {string_literal(text.value)}" if text is not None else ""


def _type_ref(t: ast.TypeRef) -> str:
    argument = f"[{_type_ref(t.argument)}]" if t.argument is not None else ""
    return t.name.value + argument + ("?" if t.optional else "")


def _scope(s: ast.Scope) -> str:
    parts = [s.purpose.value] if s.purpose else []
    if s.channels:
        parts.append(f"via {_names(s.channels)}")
    return " ".join(parts)


def _requirement(r: ast.Requirement) -> str:
    return r.name.value + (f"({_names(r.args)})" if r.args else "")


_CLAUSE_TEXT: dict[type, Callable] = {
    ast.Trigger: trigger_head,
    ast.Purpose: lambda c: f"purpose {c.name.value}",
    ast.Market: lambda c: f"market {_names(c.names)}",
    ast.Via: lambda c: f"via {_names(c.channels)}",
    ast.Send: _send,
    ast.Split: lambda c: "split " + ", ".join(f"{_decimal(a.percent.value)}% {_send(a.send)}"
                                              for a in c.arms),
    ast.Window: lambda c: f"between {_time(c.start)} and {_time(c.end)}" + (" local" if c.local else ""),
    ast.Cooldown: lambda c: f"cooldown {_duration(c.duration)}" + _per_across(c.per, c.across),
    ast.Cap: lambda c: f"cap {c.count.value} per {_duration(c.window)}" + _per_across(c.per, c.across),
    ast.Expire: lambda c: f"expire after {_duration(c.after)}",
    ast.Holdout: lambda c: f"holdout {_decimal(c.percent.value)}%",
    ast.Once: lambda c: f"once per {c.per.value}",
    ast.Step: lambda c: " ".join([step_head(c), *(clause_text(x) for x in c.clauses)]),
    # policy rules
    ast.RequiresRule: lambda r: f"{_scope(r.scope)} requires "
                                + " and ".join(_requirement(q) for q in r.requirements),
    ast.WindowRule: lambda r: f"{_scope(r.scope)} between {_time(r.start)} and {_time(r.end)}"
                              + (" local" if r.local else "")
                              + (f" in states {_names(r.states)}" if r.states else ""),
    ast.ReviewWindowRule: lambda r: f"{_scope(r.scope)} window {_duration(r.earliest)}.."
                                    f"{_duration(r.latest)} after {r.event.value}",
    ast.OnceRule: lambda r: f"{_scope(r.scope)} once per {r.per.value}",
    ast.TemplateRule: lambda r: f"{_scope(r.scope)} template forbids {_names(r.forbidden)}",
    ast.ForbidRule: lambda r: f"forbid purpose {r.purpose.value}"
                              + (f" in market {r.market.value}" if r.market else ""),
    ast.KeepRule: lambda r: f"keep {r.what.value} {_duration(r.duration)}",
    ast.CapRule: lambda r: f"cap {_scope(r.scope)} {r.count.value} per {_duration(r.window)}"
                           + _per_across(r.per, r.across),
    ast.PauseRule: lambda r: f"pause flow when {expr_text(r.when)} over {_duration(r.over)}",
    # schema declarations
    ast.Field: lambda f: f"{f.name.value}: {_type_ref(f.type)}" + _quoted(f.doc),
    ast.EventDecl: lambda e: f"event {e.name.value} on {e.subject.value}" + _quoted(e.doc),
}


def policy_header(p: ast.Policy) -> str:
    kind = "" if p.kind == "named" else f"{p.kind} "
    return f"policy {kind}{p.subject.value}" + _quoted(p.title)


def flow_header(f: ast.Flow) -> str:
    return f"flow {f.name.value}" + _quoted(f.title)


def enum_header(e: ast.EnumDecl) -> str:
    return f"enum {e.name.value}" + _quoted(e.doc) + ":"


def in_source_order(flow: ast.Flow) -> list[ast.Node]:
    """The flow's clauses as written.

    A step owns every `via`, `send` and `split` up to the next step, even when other clauses
    stand between them.  The owned clauses written right after the step stay with it; the
    others are printed where they were written, which gives them back to the same step.
    """
    units: list[ast.Node] = []
    starts = [c.span.start for c in flow.clauses]
    for n, clause in enumerate(flow.clauses):
        if not isinstance(clause, ast.Step):
            units.append(clause)
            continue
        following = starts[n + 1] if n + 1 < len(starts) else None
        together = tuple(c for c in clause.clauses if following is None or c.span.start < following)
        units.append(attrs.evolve(clause, clauses=together))
        units += clause.clauses[len(together):]
    return sorted(units, key=lambda unit: unit.span.start)


# ---------------------------------------------------------------------------- layout

@attrs.define
class Line:
    """One printed line of code: its indentation, text, and the source offset of its first token."""

    indent: int
    text: str
    start: int


@attrs.define
class _Entry:
    """One output line (code or comment) with whether a blank line goes before it."""

    indent: int
    text: str
    blank_before: bool = False


@attrs.define
class _Placement:
    """The comments a printed line collects, and whether the source had a blank line before it."""

    leading: list[tuple[ast.Comment, bool]] = attrs.Factory(list)
    interior: list[ast.Comment] = attrs.Factory(list)
    trailing: ast.Comment | None = None
    blank_before: bool = False


#: The whitespace the grammar ignores (Lark's common.WS).
_BLANK_CHARS = " \t\f\r\n"


def _blank_line_between(text: str, start: int, end: int) -> bool:
    return text.count("\n", start, end) >= 2


class _Printer:
    """Prints one parsed module; knows where the code and the comments sit in its source."""

    def __init__(self, source: SourceFile, module: ast.Module) -> None:
        self.text = source.text
        self.module = module
        self.comments = module.comments
        self.comment_starts = [c.span.start for c in self.comments]
        self.code = self._without_comments()

    def _without_comments(self) -> str:
        """The source with every comment blanked, so that only tokens are left."""
        pieces, last = [], 0
        for comment in self.comments:
            pieces.append(self.text[last:comment.span.start])
            pieces.append(" " * (comment.span.end - comment.span.start))
            last = comment.span.end
        pieces.append(self.text[last:])
        return "".join(pieces)

    # ------------------------------------------------------------ source questions

    def has_comment_within(self, start: int, end: int) -> bool:
        i = bisect_left(self.comment_starts, start)
        return i < len(self.comment_starts) and self.comment_starts[i] < end

    def code_end(self, start: int, limit: int) -> int:
        """Just past the last token that starts in [start, limit)."""
        end = len(self.code[start:limit].rstrip(_BLANK_CHARS))
        return start + end

    def spans_lines(self, start: int, end: int) -> bool:
        return "\n" in self.text[start:end]

    def operator_start(self, after: int, before: int, word: str) -> int:
        """Where the `and`/`or` between two operands is written."""
        found = re.search(rf"\b{word}\b", self.code[after:before])
        return after + found.start() if found else before

    # ------------------------------------------------------------------- items

    def item_lines(self, item: ast.Node, next_start: int) -> list[Line]:
        start = item.span.start
        if isinstance(item, ast.Import):
            return [Line(0, f"import {string_literal(item.path.value)}", start)]
        if isinstance(item, ast.Policy):
            return [Line(0, policy_header(item), start),
                    *(Line(INDENT, clause_text(rule), rule.span.start) for rule in item.rules)]
        if isinstance(item, ast.Entity):
            return [Line(0, f"entity {item.name.value}" + _quoted(item.doc), start),
                    *(Line(INDENT, clause_text(field), field.span.start) for field in item.fields)]
        if isinstance(item, ast.EnumDecl):
            return self.enum_lines(item)
        if isinstance(item, ast.Flow) and item.name is not None:
            lines = [Line(0, flow_header(item), start)]
            for clause in in_source_order(item):
                lines += self.clause_lines(clause, INDENT)
            return lines
        if isinstance(item, ast.Flow):
            return self.headerless_flow_lines(item, next_start)
        return [Line(0, clause_text(item), start)]

    def enum_lines(self, enum: ast.EnumDecl) -> list[Line]:
        """`enum NAME "doc": a, b` on one line, or its values filling lines indented 2."""
        header = enum_header(enum)
        one_line = f"{header} {_names(enum.values)}"
        if display_width(one_line) <= WIDTH:
            return [Line(0, one_line, enum.span.start)]
        lines = [Line(0, header, enum.span.start)]
        row: list[ast.Name] = []
        for value in enum.values:
            if row and INDENT + display_width(_names((*row, value))) + 1 > WIDTH:
                lines.append(Line(INDENT, _names(tuple(row)) + ",", row[0].span.start))
                row = []
            row.append(value)
        lines.append(Line(INDENT, _names(tuple(row)), row[0].span.start))
        return lines

    def headerless_flow_lines(self, flow: ast.Flow, next_start: int) -> list[Line]:
        start = flow.span.start
        end = self.code_end(start, next_start)
        clauses = in_source_order(flow)
        one_line = " ".join(clause_text(c) for c in clauses)
        if (not self.spans_lines(start, end) and not self.has_comment_within(start, end)
                and display_width(one_line) <= WIDTH):
            return [Line(0, one_line, start)]
        trigger, *rest = clauses
        lines = self.clause_lines(trigger, 0)
        for clause in rest:
            lines += self.clause_lines(clause, INDENT)
        return lines

    def clause_lines(self, clause: ast.Node, indent: int) -> list[Line]:
        if isinstance(clause, ast.Step):
            return self.step_lines(clause, indent)
        condition = condition_of(clause)
        if condition is not None:
            return self.condition_lines(*condition, indent, clause.span.start)
        return [Line(indent, clause_text(clause), clause.span.start)]

    def step_lines(self, step: ast.Step, indent: int) -> list[Line]:
        flat = clause_text(step)
        fits = indent + display_width(flat) <= WIDTH
        if not step.clauses or (fits and not self.comment_between_parts(step)):
            return [Line(indent, flat, step.span.start)]
        lines = [Line(indent, step_head(step), step.span.start)]
        lines += [Line(indent + INDENT, clause_text(c), c.span.start) for c in step.clauses]
        return lines

    def comment_between_parts(self, step: ast.Step) -> bool:
        """Whether a comment sits between the step's head and its clauses, or between two clauses.

        A comment inside one clause does not count: that clause stays on one line either way.
        """
        head_end = step.offset.span.end if step.offset is not None else step.span.start + len("step")
        ends = [head_end, *(c.span.end for c in step.clauses)]
        return any(self.has_comment_within(end, clause.span.start) for end, clause in zip(ends, step.clauses))

    def condition_lines(self, prefix: str, expr: ast.Node, indent: int, start: int) -> list[Line]:
        """A condition clause: one line, or one top-level `and`/`or` operand per line."""
        flat = prefix + expr_text(expr)
        written_flat = not self.spans_lines(expr.span.start, expr.span.end)
        if not isinstance(expr, ast.BoolOp) or (written_flat and indent + display_width(flat) <= WIDTH):
            return [Line(indent, flat, start)]
        inner = operand_context(expr)
        first, *rest = expr.operands
        lines = [Line(indent, prefix + expr_text(first, inner), start)]
        previous = first
        for operand in rest:
            at = self.operator_start(previous.span.end, operand.span.start, expr.op)
            lines.append(Line(indent + INDENT, f"{expr.op} {expr_text(operand, inner)}", at))
            previous = operand
        return lines

    # ---------------------------------------------------------------- comments

    def print_module(self) -> str:
        items = self.module.items
        item_lines = []
        for k, item in enumerate(items):
            next_start = items[k + 1].span.start if k + 1 < len(items) else len(self.text)
            item_lines.append(self.item_lines(item, next_start))
        placements, item_ends, file_end = self.place_comments(item_lines)

        out: list[_Entry] = []
        for k, (item, lines) in enumerate(zip(items, item_lines)):
            entries = self.item_entries(lines, placements[:len(lines)], item_ends[k])
            placements = placements[len(lines):]
            stacked = k > 0 and _is_compact(items[k - 1], item_lines[k - 1]) and _is_compact(item, lines)
            if not stacked:
                entries[0].blank_before = k > 0
            out += entries
        for n, (comment, blank) in enumerate(file_end):
            out.append(_Entry(0, comment.text, blank and (n > 0 or bool(items))))
        return _render(out)

    def item_entries(self, lines: list[Line], placements: list[_Placement],
                     end_comments: list[ast.Comment]) -> list[_Entry]:
        """An item's output lines, with no blank line right after its first line."""
        entries = self.line_entries(lines[0], placements[0])
        after_first = len(entries)
        for line, placed in zip(lines[1:], placements[1:]):
            entries += self.line_entries(line, placed)
        entries += [_Entry(INDENT, comment.text) for comment in end_comments]
        if after_first < len(entries):
            entries[after_first].blank_before = False
        return entries

    def line_entries(self, line: Line, placed: _Placement) -> list[_Entry]:
        """The comments above a line, then the line with its trailing comment."""
        entries = [_Entry(line.indent, c.text, blank) for c, blank in placed.leading]
        collected = list(placed.interior) + ([placed.trailing] if placed.trailing else [])
        trailing = collected.pop() if collected and not collected[-1].own_line else None
        blank = placed.blank_before
        for comment in collected:
            entries.append(_Entry(line.indent, comment.text, blank))
            blank = False
        code = line.text + (f"  {trailing.text}" if trailing else "")
        entries.append(_Entry(line.indent, code, blank))
        return entries

    def place_comments(self, item_lines: list[list[Line]]):
        """Give every comment its printed line, the end of an item, or the end of the file.

        Line i holds the tokens from its own start up to the start of line i + 1; a comment
        before the end of its last token is inside the line, and the comments after it fall in
        the gap before the next line.  Returns one `_Placement` per line, the end-of-item
        comments of each item, and the end-of-file comments with their blank-line flags.
        """
        lines = [line for group in item_lines for line in group]
        starts = [line.start for line in lines] + [len(self.text)]
        ends = [self.code_end(starts[i], starts[i + 1]) for i in range(len(lines))]
        placements = [_Placement() for _ in lines]
        gaps: list[list[ast.Comment]] = [[] for _ in range(len(lines) + 1)]  # gap i + 1 follows line i
        for comment in self.comments:
            i = bisect_right(starts, comment.span.start, 0, len(lines)) - 1
            if i >= 0 and comment.span.start < ends[i]:
                placements[i].interior.append(comment)
            else:
                gaps[i + 1].append(comment)

        last_lines, count = {}, 0
        for k, group in enumerate(item_lines):
            count += len(group)
            last_lines[count - 1] = (k, len(group) > 1)
        item_ends: list[list[ast.Comment]] = [[] for _ in item_lines]
        file_end: list[tuple[ast.Comment, bool]] = []
        for g, gap in enumerate(gaps):
            before = g - 1  # the line the gap follows (-1: the start of the file)
            previous_end = ends[before] if before >= 0 else 0
            if gap and not gap[0].own_line and before >= 0:
                placements[before].trailing = gap[0]
                previous_end = gap[0].span.end
                gap = gap[1:]
            flagged = []
            for comment in gap:
                flagged.append((comment, _blank_line_between(self.text, previous_end, comment.span.start)))
                previous_end = comment.span.end
            if before in last_lines:
                k, multi_line = last_lines[before]
                stay = _staying_with_item(flagged) if multi_line else 0
                item_ends[k] = [comment for comment, _ in flagged[:stay]]
                flagged = flagged[stay:]
            if g < len(lines):
                placements[g].leading = flagged
                placements[g].blank_before = _blank_line_between(self.text, previous_end, starts[g])
            else:
                file_end = flagged
        return placements, item_ends, file_end


def _staying_with_item(flagged: list[tuple[ast.Comment, bool]]) -> int:
    """How many of the comments after a multi-line item stay at its end: indented, no blank line."""
    count = 0
    for comment, blank_before in flagged:
        if blank_before or comment.span.start_column == 1:
            break
        count += 1
    return count


def _is_compact(item: ast.Node, lines: list[Line]) -> bool:
    """A one-line schema declaration, which may sit right under the one before it."""
    return isinstance(item, (ast.EventDecl, ast.EnumDecl)) and len(lines) == 1


def _render(entries: list[_Entry]) -> str:
    out: list[str] = []
    for entry in entries:
        if entry.blank_before and out:
            out.append("")
        out.append(" " * entry.indent + entry.text)
    return "\n".join(out) + "\n" if out else ""
