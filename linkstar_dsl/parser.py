"""Source text → AST.

Lark parses with LALR(1), the contextual lexer and `strict=True` (a conflict in the grammar is a
build error, not a silent shift).  The `_Builder` callbacks run inside the parser, so no parse
tree is ever built: each grammar rule turns straight into its `ast` node, and spans are taken from
the first and last token of the rule (`keep_all_tokens`), which is cheaper than Lark's
`propagate_positions`.

Syntax errors become diagnostics (see `syntax_errors`).  To report more than one per file, the
parser blanks the clause that failed (keeping offsets and newlines) and parses again, dropping
any follow-on error inside the blanked region.
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from functools import cache

import attrs
from lark import Lark, Token, UnexpectedInput

from . import ast
from .diagnostics import Diagnostic, Severity, make
from .resources import grammar_text
from .source import SourceFile, Span

#: Syntax errors reported per file before giving up on the rest.
MAX_SYNTAX_ERRORS = 20

#: Words that begin a clause, a rule or a top-level item; recovery resynchronises on them.
CLAUSE_WORDS = frozenset(
    "flow on purpose market where via send split between cooldown cap expire exit holdout "
    "once step policy import forbid keep pause entity enum event".split()
)


@attrs.frozen
class ParseResult:
    """A parsed file: the module (also when errors were recovered from) and its diagnostics."""

    source: SourceFile
    module: ast.Module | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


def _tok_span(source: SourceFile, tok: Token) -> Span:
    return Span(source, tok.start_pos, tok.end_pos)


class _Builder:
    """Lark rule callbacks that build `ast` nodes; `source` is set before each parse."""

    source: SourceFile

    def _span(self, first, last) -> Span:
        start = first.span.start if isinstance(first, ast.Node) else first.start_pos
        end = last.span.end if isinstance(last, ast.Node) else last.end_pos
        return Span(self.source, start, end)

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(span=Span(self.source, tok.start_pos, tok.end_pos), value=str(tok))

    def _duration(self, tok: Token) -> ast.DurationLit:
        text = str(tok)
        return ast.DurationLit(span=_tok_span(self.source, tok), amount=int(text[:-1]), unit=text[-1])

    def _time(self, tok: Token) -> ast.TimeLit:
        hour, minute = str(tok).split(":")
        return ast.TimeLit(span=_tok_span(self.source, tok), hour=int(hour), minute=int(minute))

    def _percent(self, tok: Token) -> ast.PercentLit:
        return ast.PercentLit(span=_tok_span(self.source, tok), value=Decimal(str(tok)[:-1]))

    def _string(self, tok: Token) -> ast.StringLit:
        return ast.StringLit(span=_tok_span(self.source, tok), value=unescape(str(tok)))

    def _int(self, tok: Token) -> ast.IntLit:
        return ast.IntLit(span=_tok_span(self.source, tok), value=int(tok))

    # ------------------------------------------------------------------ top level

    def start(self, children):
        return ast.Module(span=Span(self.source, 0, len(self.source.text)), items=tuple(children))

    def import_decl(self, c):
        return ast.Import(span=self._span(c[0], c[-1]), path=self._string(c[1]))

    def flow(self, c):
        name = title = None
        clauses = c
        if isinstance(c[0], tuple):  # flow_header
            name, title = c[0][0], c[0][1]
            clauses = c[1:]
            start = c[0][2]
        else:
            start = c[0].span.start
        end = clauses[-1].span.end
        return ast.Flow(span=Span(self.source, start, end), name=name, title=title,
                        clauses=_group_steps(tuple(clauses)))

    def flow_header(self, c):
        title = self._string(c[2]) if len(c) > 2 else None
        return (self._name(c[1]), title, c[0].start_pos)

    def trigger(self, c):
        offset = at = unless = None
        for child in c[2:]:
            if isinstance(child, ast.Offset):
                offset = child
            elif isinstance(child, ast.AtTime):
                at = child
            else:
                unless = child
        return ast.Trigger(span=self._span(c[0], c[-1]), event=self._name(c[1]),
                           offset=offset, at=at, unless=unless)

    def offset(self, c):
        return ast.Offset(span=self._span(c[0], c[1]), sign=str(c[0]), duration=self._duration(c[1]))

    def at_time(self, c):
        return ast.AtTime(span=self._span(c[0], c[-1]), time=self._time(c[1]), local=len(c) > 2)

    def unless(self, c):
        # Kept as a bare expression on the trigger; the span of `unless` itself is not needed.
        return c[1]

    # -------------------------------------------------------------------- clauses

    def purpose(self, c):
        return ast.Purpose(span=self._span(c[0], c[1]), name=self._name(c[1]))

    def market(self, c):
        return ast.Market(span=self._span(c[0], c[-1]), names=self._names(c[1:]))

    def _names(self, toks):
        return tuple(self._name(t) for t in toks if t.type != "COMMA")

    def where(self, c):
        return ast.Where(span=self._span(c[0], c[1]), expr=c[1])

    def via(self, c):
        return ast.Via(span=self._span(c[0], c[-1]), channels=self._names(c[1:]))

    def send(self, c):
        params = c[2] if len(c) > 2 else ()
        return ast.Send(span=self._span(c[0], c[-1]), template=self._string(c[1]), params=tuple(params))

    def params(self, c):
        result = tuple(p for p in c if isinstance(p, ast.Param))
        return _Params(result, c[0].start_pos, c[-1].end_pos)

    def param(self, c):
        return ast.Param(span=self._span(c[0], c[2]), name=self._name(c[0]), value=c[2])

    def split(self, c):
        arms = tuple(a for a in c[1:] if isinstance(a, ast.Arm))
        return ast.Split(span=self._span(c[0], c[-1]), arms=arms)

    def arm(self, c):
        return ast.Arm(span=self._span(c[0], c[1]), percent=self._percent(c[0]), send=c[1])

    def window(self, c):
        return ast.Window(span=self._span(c[0], c[-1]), start=self._time(c[1]), end=self._time(c[3]),
                          local=len(c) > 4)

    def cooldown(self, c):
        per = next((x for x in c[2:] if isinstance(x, _Per)), None)
        across = next((x for x in c[2:] if isinstance(x, _Across)), None)
        return ast.Cooldown(span=self._span(c[0], c[-1]), duration=self._duration(c[1]),
                            per=per.name if per else None, across=across.name if across else None)

    def cap(self, c):
        per = next((x for x in c[4:] if isinstance(x, _Per)), None)
        across = next((x for x in c[4:] if isinstance(x, _Across)), None)
        return ast.Cap(span=self._span(c[0], c[-1]), count=self._int(c[1]), window=self._duration(c[3]),
                       per=per.name if per else None, across=across.name if across else None)

    def per(self, c):
        return _Per(self._name(c[1]), c[0].start_pos, c[1].end_pos)

    def across(self, c):
        return _Across(self._name(c[1]), c[0].start_pos, c[1].end_pos)

    def expire(self, c):
        return ast.Expire(span=self._span(c[0], c[2]), after=self._duration(c[2]))

    def exit(self, c):
        return ast.Exit(span=self._span(c[0], c[2]), when=c[2])

    def holdout(self, c):
        return ast.Holdout(span=self._span(c[0], c[1]), percent=self._percent(c[1]))

    def once(self, c):
        return ast.Once(span=self._span(c[0], c[2]), per=self._name(c[2]))

    def step(self, c):
        offset = c[1] if len(c) > 1 else None
        return ast.Step(span=self._span(c[0], c[-1]), offset=offset)

    # ------------------------------------------------------------------- policies

    def policy(self, c):
        kind, subject, subject_start = c[1]
        rest = c[2:]
        title = None
        if rest and isinstance(rest[0], Token):
            title = self._string(rest[0])
            rest = rest[1:]
        end = rest[-1].span.end if rest else (title.span.end if title else subject.span.end)
        return ast.Policy(span=Span(self.source, c[0].start_pos, end), kind=kind, subject=subject,
                          title=title, rules=tuple(rest))

    def subject_market(self, c):
        return ("market", self._name(c[1]), c[0].start_pos)

    def subject_channel(self, c):
        return ("channel", self._name(c[1]), c[0].start_pos)

    def subject_platform(self, c):
        return ("platform", self._name(c[1]), c[0].start_pos)

    def subject_named(self, c):
        return ("named", self._name(c[0]), c[0].start_pos)

    def scope(self, c):
        purpose = None
        channels: tuple[ast.Name, ...] = ()
        for child in c:
            if isinstance(child, Token):
                purpose = self._name(child)
            else:
                channels = child.channels
        return ast.Scope(span=self._span(c[0], c[-1]), purpose=purpose, channels=channels)

    def _cited(self, c):
        """Split a rule's trailing citation string off its children."""
        if isinstance(c[-1], Token) and c[-1].type == "STRING":
            return c[:-1], self._string(c[-1])
        return c, None

    def rule_requires(self, c):
        body, cite = self._cited(c)
        reqs = tuple(r for r in body[2:] if isinstance(r, ast.Requirement))
        return ast.RequiresRule(span=self._span(c[0], c[-1]), scope=c[0], requirements=reqs, cite=cite)

    def requirement(self, c):
        args = self._names([t for t in c[1:] if t.type not in ("LPAR", "RPAR")])
        return ast.Requirement(span=self._span(c[0], c[-1]), name=self._name(c[0]), args=args)

    def rule_window(self, c):
        body, cite = self._cited(c)
        return ast.WindowRule(span=self._span(c[0], c[-1]), scope=c[0], start=self._time(body[2]),
                              end=self._time(body[4]), local=len(body) > 5, cite=cite)

    def rule_review_window(self, c):
        body, cite = self._cited(c)
        return ast.ReviewWindowRule(span=self._span(c[0], c[-1]), scope=c[0],
                                    earliest=self._duration(body[2]), latest=self._duration(body[4]),
                                    event=self._name(body[6]), cite=cite)

    def rule_once(self, c):
        body, cite = self._cited(c)
        return ast.OnceRule(span=self._span(c[0], c[-1]), scope=c[0], per=self._name(body[3]), cite=cite)

    def rule_template(self, c):
        body, cite = self._cited(c)
        return ast.TemplateRule(span=self._span(c[0], c[-1]), scope=c[0], forbidden=self._names(body[3:]),
                                cite=cite)

    def rule_forbid(self, c):
        body, cite = self._cited(c)
        market = self._name(body[5]) if len(body) > 3 else None
        return ast.ForbidRule(span=self._span(c[0], c[-1]), purpose=self._name(body[2]), market=market,
                              cite=cite)

    def rule_keep(self, c):
        body, cite = self._cited(c)
        return ast.KeepRule(span=self._span(c[0], c[-1]), what=self._name(body[1]),
                            duration=self._duration(body[2]), cite=cite)

    def rule_cap(self, c):
        body, cite = self._cited(c)
        per = next((x for x in body[5:] if isinstance(x, _Per)), None)
        across = next((x for x in body[5:] if isinstance(x, _Across)), None)
        return ast.CapRule(span=self._span(c[0], c[-1]), scope=c[1], count=self._int(body[2]),
                           window=self._duration(body[4]), per=per.name if per else None,
                           across=across.name if across else None, cite=cite)

    def rule_pause(self, c):
        body, cite = self._cited(c)
        return ast.PauseRule(span=self._span(c[0], c[-1]), when=body[3], over=self._duration(body[5]), cite=cite)

    # -------------------------------------------------------- schema declarations

    def _doc(self, c):
        return next((self._string(t) for t in c if isinstance(t, Token) and t.type == "STRING"), None)

    def entity(self, c):
        fields = tuple(f for f in c if isinstance(f, ast.Field))
        return ast.Entity(span=self._span(c[0], c[-1]), name=self._name(c[1]), doc=self._doc(c[2:3]),
                          fields=fields)

    def field(self, c):
        return ast.Field(span=self._span(c[0], c[-1]), name=self._name(c[0]), type=c[2],
                         doc=self._doc(c[3:]))

    def type_ref(self, c):
        argument = next((x for x in c if isinstance(x, ast.TypeRef)), None)
        optional = isinstance(c[-1], Token) and c[-1].type == "OPTIONAL"
        return ast.TypeRef(span=self._span(c[0], c[-1]), name=self._name(c[0]), argument=argument,
                           optional=optional)

    def enum(self, c):
        colon = next(i for i, t in enumerate(c) if isinstance(t, Token) and t.type == "COLON")
        return ast.EnumDecl(span=self._span(c[0], c[-1]), name=self._name(c[1]), doc=self._doc(c[2:colon]),
                            values=self._names(c[colon + 1:]))

    def event(self, c):
        return ast.EventDecl(span=self._span(c[0], c[-1]), name=self._name(c[1]), subject=self._name(c[3]),
                             doc=self._doc(c[4:]))

    # ---------------------------------------------------------------- expressions

    def or_expr(self, c):
        return ast.BoolOp(span=self._span(c[0], c[-1]), op="or", operands=tuple(c[0::2]))

    def and_expr(self, c):
        return ast.BoolOp(span=self._span(c[0], c[-1]), op="and", operands=tuple(c[0::2]))

    def not_op(self, c):
        return ast.Not(span=self._span(c[0], c[1]), operand=c[1])

    def compare(self, c):
        return ast.Compare(span=self._span(c[0], c[2]), op=str(c[1]), left=c[0], right=c[2])

    def member(self, c):
        return ast.Member(span=self._span(c[0], c[2]), item=c[0], container=c[2])

    def not_member(self, c):
        return ast.Member(span=self._span(c[0], c[3]), item=c[0], container=c[3], negated=True)

    def is_missing(self, c):
        return ast.Presence(span=self._span(c[0], c[2]), operand=c[0], missing=True)

    def is_present(self, c):
        return ast.Presence(span=self._span(c[0], c[2]), operand=c[0], missing=False)

    def within(self, c):
        return ast.Within(span=self._span(c[0], c[2]), operand=c[0], duration=self._duration(c[2]))

    def arith(self, c):
        return ast.Arith(span=self._span(c[0], c[2]), op=str(c[1]), left=c[0], right=c[2])

    def negate(self, c):
        return ast.Negate(span=self._span(c[0], c[1]), sign=str(c[0]), operand=c[1])

    def atom(self, c):  # "(" expr ")"
        return c[1]

    def path(self, c):
        parts = tuple(self._name(t) for t in c if t.type == "NAME")
        return ast.Path(span=self._span(c[0], c[-1]), parts=parts)

    def call(self, c):
        args = tuple(x for x in c[2:-1] if x is not None and not isinstance(x, Token))
        return ast.Call(span=self._span(c[0], c[-1]), func=self._name(c[0]), args=args)

    def list(self, c):
        items = tuple(x for x in c[1:-1] if x is not None and not isinstance(x, Token))
        return ast.ListExpr(span=self._span(c[0], c[-1]), items=items)

    def int_lit(self, c):
        return self._int(c[0])

    def decimal_lit(self, c):
        return ast.DecimalLit(span=_tok_span(self.source, c[0]), value=Decimal(str(c[0])))

    def money_lit(self, c):
        amount, currency = str(c[0]).split()
        return ast.MoneyLit(span=_tok_span(self.source, c[0]), amount=Decimal(amount), currency=currency)

    def duration_lit(self, c):
        return self._duration(c[0])

    def percent_lit(self, c):
        return self._percent(c[0])

    def time_lit(self, c):
        return self._time(c[0])

    def string_lit(self, c):
        return self._string(c[0])

    def true_lit(self, c):
        return ast.BoolLit(span=_tok_span(self.source, c[0]), value=True)

    def false_lit(self, c):
        return ast.BoolLit(span=_tok_span(self.source, c[0]), value=False)


class _Params(tuple):
    """Send parameters plus the span of their parentheses (so `send` spans its `)`)."""

    def __new__(cls, items, start, end):
        obj = super().__new__(cls, items)
        obj.start_pos, obj.end_pos = start, end
        return obj


@attrs.frozen
class _Per:
    name: ast.Name
    start_pos: int
    end_pos: int


@attrs.frozen
class _Across:
    name: ast.Name
    start_pos: int
    end_pos: int


def _group_steps(clauses: tuple) -> tuple:
    """Attach each `via`, `send` and `split` that follows a `step` to that step."""
    if not any(isinstance(c, ast.Step) for c in clauses):
        return clauses
    grouped: list = []
    step: ast.Step | None = None
    owned: list = []
    for clause in (*clauses, None):
        if clause is None or isinstance(clause, ast.Step):
            if step is not None:
                end = owned[-1].span.end if owned else step.span.end
                grouped.append(attrs.evolve(step, clauses=tuple(owned),
                                            span=Span(step.span.source, step.span.start, end)))
            step, owned = clause, []
        elif step is not None and isinstance(clause, ast.STEP_CLAUSES):
            owned.append(clause)
        else:
            grouped.append(clause)
    grouped.sort(key=lambda n: n.span.start)
    return tuple(grouped)


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def unescape(literal: str) -> str:
    """The value of a string literal (quotes removed, `\\"`, `\\\\`, `\\n`, `\\t`, `\\uXXXX` decoded)."""
    body = literal[1:-1]
    if "\\" not in body:
        return body

    def repl(m: re.Match) -> str:
        esc = m.group(1)
        if esc[0] == "u":
            return chr(int(esc[1:], 16))
        return _ESCAPES.get(esc, "\\" + esc)

    return re.sub(r"\\(u[0-9A-Fa-f]{4}|.)", repl, body)


def escape(value: str) -> str:
    """A string literal whose value is `value`."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    out = "".join(c if c.isprintable() or c == " " else f"\\u{ord(c):04x}" for c in out)
    return f'"{out}"'


# ---------------------------------------------------------------------------- the parser

_lock = threading.Lock()


class _ReservedWords:
    """A pass-through post-lexer whose only job is `always_accept`.

    The contextual lexer only tries the terminals the parser state allows, so where only a name
    is allowed it would read `send` as a name (`via line, send …` → channels `line` and `send`).
    Always accepting the keyword terminals makes every keyword reserved, everywhere.
    """

    def __init__(self, keywords: tuple[str, ...]) -> None:
        self.always_accept = keywords

    def process(self, stream):
        return stream


def _reserved(grammar: str) -> tuple[str, ...]:
    """The terminal names of the grammar's keywords, as Lark names them (`"via"` → `VIA`)."""
    words = set(re.findall(r'"([a-z]+)"', grammar))
    return tuple(sorted(w.upper() for w in words))


@cache
def _lark() -> tuple[Lark, _Builder, list]:
    builder = _Builder()
    comments: list = []
    grammar = grammar_text()
    parser = Lark(
        grammar,
        postlex=_ReservedWords(_reserved(grammar)),
        parser="lalr",
        lexer="contextual",
        strict=True,
        keep_all_tokens=True,
        maybe_placeholders=True,
        transformer=builder,
        lexer_callbacks={"COMMENT": comments.append},
        cache=True,
    )
    return parser, builder, comments


def lark_parser() -> Lark:
    """The shared Lark parser (for the REPL's completion and the syntax-error translator)."""
    return _lark()[0]


def _comments(source: SourceFile, tokens: list) -> tuple[ast.Comment, ...]:
    text = source.text
    result = []
    for tok in tokens:
        line_start = text.rfind("\n", 0, tok.start_pos) + 1
        own_line = not text[line_start : tok.start_pos].strip()
        result.append(ast.Comment(span=Span(source, tok.start_pos, tok.end_pos),
                                  text=str(tok).rstrip(), own_line=own_line))
    return tuple(result)


def _parse_once(source: SourceFile, text: str) -> tuple[ast.Module | None, tuple, UnexpectedInput | None]:
    parser, builder, comments = _lark()
    with _lock:
        builder.source = source
        comments.clear()
        try:
            module = parser.parse(text)
        except UnexpectedInput as error:
            return None, (), error
        found = list(comments)
    return module, _comments(source, found), None


def parse_source(source: SourceFile) -> ParseResult:
    """Parse one file, recovering from syntax errors to report several of them."""
    from .syntax_errors import describe, screen

    early = screen(source)
    if early is not None:
        return ParseResult(source, None, (early,))

    text = source.text
    diagnostics: list[Diagnostic] = []
    blanked: list[tuple[int, int]] = []
    while True:
        module, comments, error = _parse_once(source, text)
        if error is None:
            module = attrs.evolve(module, comments=comments)
            return ParseResult(source, module, tuple(sorted(diagnostics, key=Diagnostic.sort_key)))
        pos = _error_pos(error, text)
        if not any(lo <= pos < hi for lo, hi in blanked):
            diagnostics.append(describe(error, source, text))
        if len(diagnostics) >= MAX_SYNTAX_ERRORS:
            return ParseResult(source, None, tuple(diagnostics))
        token = getattr(error, "token", None)
        region = _recovery_region(text, pos, getattr(token, "type", "") == "NAME")
        if region is None or region in blanked:
            return ParseResult(source, None, tuple(sorted(diagnostics, key=Diagnostic.sort_key)))
        blanked.append(region)
        text = _blank(text, *region)


def parse(text: str, name: str = "<input>") -> ParseResult:
    return parse_source(SourceFile(name, text))


def _error_pos(error: UnexpectedInput, text: str) -> int:
    pos = getattr(error, "pos_in_stream", None)
    token = getattr(error, "token", None)
    if token is not None and getattr(token, "type", None) == "$END":
        return len(text)
    if token is not None and getattr(token, "start_pos", None) is not None:
        return token.start_pos
    return pos if pos is not None else len(text)


_WORD = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*')
_LINE_WORD = re.compile(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)", re.M)

#: Words that continue an expression on a new line rather than start a new clause.
_CONTINUATIONS = frozenset({"and", "or", "not", "in", "is", "within"})


def _boundaries(text: str) -> list[int]:
    """Offsets where a clause may start: clause words, and words that begin a line."""
    starts = {m.start() for m in _WORD.finditer(text) if m.group() in CLAUSE_WORDS}
    starts.update(m.start(1) for m in _LINE_WORD.finditer(text) if m.group(1) not in _CONTINUATIONS)
    return sorted(starts)


def _recovery_region(text: str, pos: int, at_word: bool) -> tuple[int, int] | None:
    """The clause around `pos`: from the clause start before it to the next clause start.

    When the offending token is itself a plain word (a misspelt keyword), the clause starts at
    that word; otherwise the clause before the offending token is the broken one.
    """
    starts = _boundaries(text)
    before = [s for s in starts if s < pos or (at_word and s == pos)]
    after = [s for s in starts if s > pos]
    lo = before[-1] if before else pos
    hi = after[0] if after else len(text)
    if hi <= lo:
        return None
    return lo, hi


#: What a blanked clause is replaced by when the clause itself is load-bearing.
_STAND_INS = {"on": "on x", "flow": "flow x", "policy": "policy x"}


def _blank(text: str, lo: int, hi: int) -> str:
    region = text[lo:hi]
    word = re.match(r"[a-z]+", region)
    stand_in = _STAND_INS.get(word.group() if word else "", "")
    if len(stand_in) > len(region):
        stand_in = ""
    blanked = stand_in + "".join(c if c in "\n\r" else " " for c in region[len(stand_in):])
    return text[:lo] + blanked + text[hi:]
