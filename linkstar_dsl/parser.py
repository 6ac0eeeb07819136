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
from lark import Lark, Token, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from . import ast
from .diagnostics import Diagnostic, Severity, make
from .loader import MAX_FILE_BYTES
from .resources import grammar_text
from .source import SourceFile, Span

#: Syntax errors reported per file before giving up on the rest.
MAX_SYNTAX_ERRORS = 20

#: Digits a number may have before and after its point (see SPEC.md, "Limits"): more than any
#: amount, count or duration needs, and few enough that no value overflows later.
MAX_NUMBER_DIGITS = 15

_DIGIT_RUNS = re.compile(r"[0-9]+")


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
    """Lark rule callbacks that build `ast` nodes; `source` is set before each parse.

    A number with too many digits is not converted (Python refuses to read an integer of more
    than 4,300 digits, and no later stage could use one): it is noted in `problems` and read as 0,
    and the parse reports it as `number-too-large`.
    """

    source: SourceFile
    problems: list

    def _number(self, tok: Token, text: str | None = None) -> str:
        """The text of a numeric token, or "0" when it has too many digits (noted in `problems`)."""
        text = str(tok) if text is None else text
        longest = max((len(run) for run in _DIGIT_RUNS.findall(text)), default=0)
        if longest <= MAX_NUMBER_DIGITS:
            return text
        self.problems.append(make("number-too-large", _tok_span(self.source, tok), digits=longest,
                                  limit=MAX_NUMBER_DIGITS, label=f"{longest} digits",
                                  help=("no amount, count or duration needs this many digits; "
                                        "durations have larger units (`w`, `y`)",)))
        return "0"

    def _span(self, first, last) -> Span:
        start = first.span.start if isinstance(first, ast.Node) else first.start_pos
        end = last.span.end if isinstance(last, ast.Node) else last.end_pos
        return Span(self.source, start, end)

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(span=Span(self.source, tok.start_pos, tok.end_pos), value=str(tok))

    def _duration(self, tok: Token) -> ast.DurationLit:
        text = str(tok)
        return ast.DurationLit(span=_tok_span(self.source, tok), amount=int(self._number(tok, text[:-1])),
                               unit=text[-1])

    def _time(self, tok: Token) -> ast.TimeLit:
        hour, minute = str(tok).split(":")
        return ast.TimeLit(span=_tok_span(self.source, tok), hour=int(hour), minute=int(minute))

    def _percent(self, tok: Token) -> ast.PercentLit:
        return ast.PercentLit(span=_tok_span(self.source, tok), value=Decimal(self._number(tok, str(tok)[:-1])))

    def _string(self, tok: Token) -> ast.StringLit:
        return ast.StringLit(span=_tok_span(self.source, tok), value=unescape(str(tok)))

    def _int(self, tok: Token) -> ast.IntLit:
        return ast.IntLit(span=_tok_span(self.source, tok), value=int(self._number(tok)))

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
        states = next((x for x in body if isinstance(x, _States)), None)
        local = any(isinstance(x, Token) and x.type == "LOCAL" for x in body)
        return ast.WindowRule(span=self._span(c[0], c[-1]), scope=c[0], start=self._time(body[2]),
                              end=self._time(body[4]), local=local, cite=cite,
                              states=states.names if states else ())

    def states(self, c):
        return _States(self._names(c[2:]), c[0].start_pos, c[-1].end_pos)

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
        return ast.DecimalLit(span=_tok_span(self.source, c[0]), value=Decimal(self._number(c[0])))

    def money_lit(self, c):
        amount, currency = str(c[0]).split()
        return ast.MoneyLit(span=_tok_span(self.source, c[0]), amount=Decimal(self._number(c[0], amount)),
                            currency=currency)

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
class _States:
    names: tuple
    start_pos: int
    end_pos: int


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
        if len(esc) == 5:  # `\uXXXX`; a `\u` without four hex digits is kept as written
            return chr(int(esc[1:], 16))
        return _ESCAPES.get(esc, "\\" + esc)

    return re.sub(r"\\(u[0-9A-Fa-f]{4}|.)", repl, body)


def escape(value: str) -> str:
    """A string literal whose value is `value`."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    # \uXXXX reaches only the Basic Multilingual Plane; other characters are written as they are.
    out = "".join(c if c.isprintable() or c == " " or ord(c) > 0xFFFF else f"\\u{ord(c):04x}" for c in out)
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
    builder.problems = []
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
    """(module, (comments, number problems), None) for text that parses, else (None, (), error)."""
    parser, builder, comments = _lark()
    with _lock:
        builder.source = source
        builder.problems = []
        comments.clear()
        try:
            module = parser.parse(text)
        except UnexpectedInput as error:
            return None, (), error
        found = list(comments)
        problems = tuple(builder.problems)
    return module, (_comments(source, found), problems), None


def parse_source(source: SourceFile) -> ParseResult:
    """Parse one file, recovering from syntax errors to report several of them.

    After each error the clause around it is blanked (offsets and line breaks kept) and the file
    is parsed again.  An error inside a blanked clause, or at a spot already reported, follows
    from an earlier one and is not reported; when the same spot keeps failing, the blanked region
    grows by one clause (or item) per attempt.  An error at the end of the file is the last one.
    """
    from .syntax_errors import describe, screen

    early = size_problem(source) or screen(source)
    if early is not None:
        return ParseResult(source, None, (early,))

    text = source.text
    diagnostics: list[Diagnostic] = []
    blanked: list[tuple[int, int]] = []
    failures: dict[int, int] = {}
    while True:
        module, extras, error = _parse_once(source, text)
        if error is None:
            comments, problems = extras
            module = attrs.evolve(module, comments=comments)
            diagnostics.extend(problems)
            return ParseResult(source, module, tuple(sorted(diagnostics, key=Diagnostic.sort_key)))
        pos = _error_pos(error, text)
        reported = None
        if pos not in failures and not _follows_from(pos, blanked, text):
            if len(diagnostics) == MAX_SYNTAX_ERRORS:
                diagnostics.append(make("too-many-errors", Span(source, pos, pos), count=MAX_SYNTAX_ERRORS,
                                        help=("fix these and check again to see the rest",)))
                break
            reported = describe(error, source, text)
            diagnostics.append(reported)
        failures[pos] = failures.get(pos, 0) + 1
        token_type = getattr(getattr(error, "token", None), "type", "")
        if token_type == "$END" or not isinstance(error, (UnexpectedToken, UnexpectedCharacters)):
            break  # nothing after the end of the file to recover into
        region = _recovery_region(text, pos, error, failures[pos] - 1, reported)
        if region is None:
            break
        lo, hi, stand_in = region
        blanked.append((lo, hi))
        text = _blank(text, lo, hi, stand_in)
    return ParseResult(source, None, tuple(sorted(diagnostics, key=Diagnostic.sort_key)))


def size_problem(source: SourceFile) -> Diagnostic | None:
    """`too-large` for text over the size limit of a `.flow` file (text that was not read by the
    loader, which refuses such a file: an editor's buffer, the REPL, the API)."""
    text = source.text
    size = len(text)
    if size <= MAX_FILE_BYTES < 4 * size:  # only then can the UTF-8 size tell
        size = len(text.encode("utf-8", "surrogatepass"))
    if size <= MAX_FILE_BYTES:
        return None
    return make("too-large", Span(source, 0, 0), what="file", count=f"{size:,}", parts="bytes",
                limit=f"{MAX_FILE_BYTES:,}", help=("split it into several files in one folder",))


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


#: How far from an error recovery looks for clause starts; no clause is anywhere near this long.
_RECOVERY_WINDOW = 20_000


def _window(text: str, pos: int) -> tuple[int, int]:
    """Whole lines of `text` within `_RECOVERY_WINDOW` characters of `pos`."""
    lo = text.rfind("\n", 0, max(0, pos - _RECOVERY_WINDOW)) + 1 if pos > _RECOVERY_WINDOW else 0
    hi = text.find("\n", min(len(text), pos + _RECOVERY_WINDOW))
    return lo, len(text) if hi == -1 else hi


def _boundaries(text: str, pos: int) -> list[int]:
    """Offsets near `pos` where a clause may start.

    Clause words always start one.  So does a plain word that begins a line (a misspelt keyword,
    an entity's field) or that is one slip away from a clause word (`wehre`, `vai`), but only
    when the word before it could end a clause: `and` or `,` at the end of a line means the next
    line continues the same clause.
    """
    from .syntax_errors import clause_words, ends_a_phrase, keywords, looks_like_clause_word, scan_words

    starts, previous = [], None
    for word in scan_words(text, *_window(text, pos)):
        token = word.text
        in_dotted_name = previous is not None and previous.text == "." and previous.end == word.start
        if token in clause_words() and not in_dotted_name:  # `policies.flow` is one name
            starts.append(word.start)
        elif (token[0].isalpha() or token[0] == "_") and token not in keywords():
            follows = previous is None or ends_a_phrase(previous.text)
            at_line_start = previous is None or "\n" in text[previous.end : word.start]
            if follows and (at_line_start or looks_like_clause_word(token)):
                starts.append(word.start)
        previous = word
    return starts


def _item_starts(text: str, pos: int) -> list[int]:
    """Offsets of the words near `pos` that may begin a top-level item (`flow`, `on`, `policy`, …)."""
    from .syntax_errors import item_starters, scan_words

    return [w.start for w in scan_words(text, *_window(text, pos)) if w.text in item_starters()]


def accepted_at(source: SourceFile, text: str, pos: int, item_start: int = 0) -> frozenset[str] | None:
    """The terminals the grammar accepts at `pos`, from parsing the text before it (None if unknown).

    Lark's own error reports the set after the reductions its lookahead caused (so `market JP US`
    no longer expects a comma) or, for an unexpected character, every keyword; this one is exact.
    Items follow one another at the top level, so parsing from the start of the item that holds
    `pos` gives the same answer as parsing the whole file before it, and costs far less.
    """
    parser, builder, _ = _lark()
    with _lock:
        builder.source = source
        try:
            interactive = parser.parse_interactive(text[item_start:pos])
            interactive.exhaust_lexer()
            return frozenset(interactive.accepts())
        except UnexpectedInput:
            return None


def reads_until(source: SourceFile, text: str, item_start: int, until: int) -> bool:
    """True when the item starting at `item_start` reads without a syntax error up to `until`.

    Used to try a candidate fix (swapping two words) before offering it.
    """
    parser, builder, _ = _lark()
    with _lock:
        builder.source = source
        try:
            for token in parser.parse_interactive(text[item_start:]).iter_parse():
                if item_start + token.end_pos >= until:
                    return True
        except UnexpectedInput as error:
            return item_start + _error_pos(error, text[item_start:]) >= until
    return True


def _follows_from(pos: int, blanked: list[tuple[int, int]], text: str) -> bool:
    """True for an error inside a blanked region, or at the end of a file whose end was blanked."""
    return any(lo <= pos < hi or (pos == hi == len(text)) for lo, hi in blanked)


def _recovery_region(text: str, pos: int, error: UnexpectedInput, widen: int,
                     diagnostic: Diagnostic | None = None) -> tuple[int, int, str] | None:
    """The text to blank after an error at `pos`, and the stand-in to put at its start.

    Normally this is the clause around `pos`: from the clause start before it (or the offending
    word itself, when it is a plain word such as a misspelt keyword) to the next clause start.
    When the offending token begins a new item (`flow`, `policy`, … first on its line), the item
    before it is the unfinished one, so that item is blanked up to the token.  `widen` (the number
    of earlier failures at the same spot) reaches back that many more clauses or items.
    """
    from .syntax_errors import clause_words, item_starters

    token = getattr(error, "token", None)
    token_type = getattr(token, "type", "")
    keyword = _literal_of(token_type)
    if keyword in item_starters() and _first_on_line(text, pos):
        return _unfinished_item(text, pos, widen)
    starts = _boundaries(text, pos)
    at_word = token_type == "NAME"
    before = [s for s in starts if s < pos or (at_word and s == pos)]
    after = [s for s in starts if s > pos]
    if widen >= max(1, len(before)):
        return None
    lo = before[-1 - widen] if before else pos
    hi = after[0] if after else _window(text, pos)[1]
    token_end = getattr(token, "end_pos", None) or pos
    if pos in starts and not at_word and lo < pos and not _ends_its_line(text, token_end):
        hi = pos  # `+ via email`: the clause `via` starts is sound, only the one before is broken
    code = diagnostic.code if diagnostic is not None else ""
    value_starts_line = keyword not in clause_words() and _first_on_line(text, pos)
    if widen == 0 and code != "unknown-keyword" and value_starts_line:
        lo, hi = pos, _next_line_start(text, pos, after)  # `30d cooldown …`: the line is one clause
    hi = _past_fix(text, pos, hi, after, diagnostic)
    if code == "missing-on":
        return pos, hi, _stand_in(text[pos:hi], True)
    if hi <= lo:
        return None
    # A word where a flow must start stood for a trigger (`when delivered`, `shipped + 48h`);
    # a clause keyword there (`purpose` before `on`) did not.
    stood_for_trigger = (at_word or keyword != "") and keyword not in clause_words()
    return lo, hi, _stand_in(text[lo:hi], stood_for_trigger and _at_top_level(error))


def _unfinished_item(text: str, pos: int, widen: int) -> tuple[int, int, str] | None:
    """The item before a new item's first word, reaching `widen` items further back."""
    items = [s for s in _item_starts(text, pos) if s < pos]
    if len(items) <= widen:
        return None
    return items[-1 - widen], pos, ""


def _next_line_start(text: str, pos: int, after: list[int]) -> int:
    """The first clause start after `pos` that begins a line (or the end of the window)."""
    return next((s for s in after if _first_on_line(text, s)), _window(text, pos)[1])


def _past_fix(text: str, pos: int, hi: int, after: list[int], diagnostic: Diagnostic | None) -> int:
    """`hi`, moved on past what the diagnostic's fix replaces (a swapped pair is one mistake)."""
    fix = diagnostic.fix if diagnostic is not None else None
    if fix is None or fix.span.end <= hi:
        return hi
    return next((s for s in after if s >= fix.span.end), _window(text, pos)[1])


def _ends_its_line(text: str, end: int) -> bool:
    """True when nothing but blanks or a comment follows `end` on its line."""
    line_end = text.find("\n", end)
    rest = text[end : len(text) if line_end == -1 else line_end]
    return not rest.split("#", 1)[0].strip()


def _first_on_line(text: str, pos: int) -> bool:
    return not text[text.rfind("\n", 0, pos) + 1 : pos].strip()


def _at_top_level(error: UnexpectedInput) -> bool:
    """True when the parser wanted a new item (`flow`, `on`, `policy`, …) and nothing else."""
    from .syntax_errors import item_starters

    expected = getattr(error, "accepts", None) or getattr(error, "expected", None) or ()
    wanted = {_literal_of(t) for t in expected if t != "$END"}
    return bool(wanted) and wanted <= item_starters()


def _literal_of(token_type: str) -> str:
    """The keyword a terminal stands for (`FLOW` → `flow`), or "" for other terminals."""
    from .syntax_errors import keyword_of_terminal

    return keyword_of_terminal(token_type)


#: What a blanked clause is replaced by when the clause itself is load-bearing.
_STAND_INS = {"on": "on x", "flow": "flow x", "policy": "policy x", "entity": "entity x"}


def _stand_in(region: str, top_level_word: bool) -> str:
    """What replaces the start of a blanked region so that the clauses after it keep their item.

    A broken trigger becomes `on x`, a broken header `flow x` (also when written `On` or in
    full-width letters).  A plain word where an item must begin is taken for a misspelt item
    keyword (`fow`) or, failing that, for an event written without its `on` (`shipped + 48h via
    email`), so it becomes a trigger.
    """
    import unicodedata

    from .suggest import did_you_mean

    word = re.match(r"[A-Za-z_]+", unicodedata.normalize("NFKC", region.split("\n", 1)[0]))
    if word is None:
        return ""
    folded = word.group().lower()
    guess = folded if folded in _STAND_INS else None
    if guess is None and top_level_word:
        guess = did_you_mean(folded, list(_STAND_INS)) or "on"
    stand_in = _STAND_INS.get(guess or "", "")
    first_line = region.split("\n", 1)[0].rstrip("\r")
    return stand_in if len(stand_in) <= len(first_line) else ""  # never over a line break


def _blank(text: str, lo: int, hi: int, stand_in: str = "") -> str:
    """`text` with [lo, hi) turned to spaces (line breaks kept) after an optional stand-in."""
    region = text[lo:hi]
    blanked = stand_in + "".join(c if c in "\n\r" else " " for c in region[len(stand_in):])
    return text[:lo] + blanked + text[hi:]
