"""Property tests: the formatter keeps meaning and is idempotent; no input makes a stage raise.

1. Random valid files are built from the shapes of `grammar/flow.lark` (every clause, rule,
   declaration and expression form, with random spacing, line breaks, blank lines and comments);
   formatting them keeps the module and the comments, and formatting twice changes nothing.
2. Arbitrary text (CJK, tabs, control characters, quotes, scraps of the language) never makes
   `parse`, `check_text` or `format_source` raise: they answer with diagnostics.
3. The same holds for mutations of the example files (characters and tokens deleted, duplicated
   or inserted, lines swapped).
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkstar_dsl.checker import check_text
from linkstar_dsl.diagnostics import Diagnostic
from linkstar_dsl.formatter import FormatOutcome, format_source, format_text
from linkstar_dsl.parser import parse
from linkstar_dsl.resources import grammar_text
from linkstar_dsl.source import SourceFile

ROOT = Path(__file__).resolve().parent.parent

#: Every keyword of the grammar; generated names must avoid them.
KEYWORDS = frozenset(re.findall(r'"([a-z]+)"', grammar_text()))

GENERATED = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZED = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- tokens

CJK = "日本語の購入者向けアンケート配送注文顧客中文한국어"

names = st.one_of(
    st.sampled_from(["refunded", "order", "customer", "total", "FBA", "JP", "US", "email", "line",
                     "x", "a_1", "_tmp", "Delivered2", "JPY"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True),
).filter(lambda name: name not in KEYWORDS)

paths = st.lists(names, min_size=1, max_size=3).map(".".join)
ints = st.integers(0, 10_000).map(str)
decimals = st.tuples(st.integers(0, 999), st.integers(0, 999)).map(lambda p: f"{p[0]}.{p[1]:02d}")
durations = st.tuples(st.integers(0, 400), st.sampled_from("mhdwy")).map(lambda p: f"{p[0]}{p[1]}")
percents = st.one_of(st.integers(0, 100).map(lambda n: f"{n}%"), decimals.map(lambda d: d + "%"))
times = st.tuples(st.integers(0, 29), st.integers(0, 59), st.booleans()).map(
    lambda t: f"{t[0]:02d}:{t[1]:02d}" if t[2] else f"{t[0]}:{t[1]:02d}")
# MONEY is one token whose inner blank may only be spaces or tabs.
money = st.tuples(st.one_of(ints, decimals), st.sampled_from([" ", "  ", "\t"]),
                  st.from_regex(r"[A-Z]{3}", fullmatch=True)).map("".join)

string_piece = st.one_of(
    st.text(st.characters(blacklist_characters='"\\\n\r\x00', blacklist_categories=("Cs",)), max_size=6),
    st.sampled_from(['\\"', "\\\\", "\\n", "\\t", "\\u00e9", "\\u0001", "\\q", CJK[:5], "#", "  "]),
)
strings = st.lists(string_piece, max_size=4).map(lambda parts: '"' + "".join(parts) + '"')

comment_texts = st.one_of(
    st.text(st.characters(blacklist_characters="\n\x00", blacklist_categories=("Cs",)), max_size=15),
    st.sampled_from([CJK, " 全角：コメント", '"quoted" # hash', "\t tab", "", "  "]),
)


@st.composite
def separator(draw) -> str:
    """What goes between two tokens: mostly a space, sometimes breaks, blank lines or comments."""
    kind = draw(st.integers(0, 19))
    if kind < 12:
        return " "
    if kind < 17:
        return draw(st.sampled_from(["  ", "\t", "\n", "\n  ", "\n\n", "\n\n\n    ", "\r\n", " \f "]))
    before = draw(st.sampled_from(["", " ", "   ", "\n", "\n  "]))
    after = draw(st.sampled_from(["", "  ", "\n", "\n    "]))
    return f"{before}#{draw(comment_texts)}\n{after}"


@st.composite
def laid_out(draw, tokens: list[str]) -> str:
    """The tokens with random separators, or (one time in three) on one line as a one-liner."""
    if draw(st.integers(0, 2)) == 0:
        ending = draw(st.sampled_from(["\n", "  # one-liner\n", "\n\n"]))
        return " ".join(tokens) + ending
    return "".join(token + draw(separator()) for token in tokens)


# ---------------------------------------------------------------------- expressions
# A generated expression is (tokens, binding); binding numbers as in the formatter, loosest first.

OR, AND, NOT, TEST, SUM, PRODUCT, UNARY, ATOM = range(1, 9)


@st.composite
def wrapped(draw, expr: tuple[list[str], int], needed: int) -> list[str]:
    """The tokens of `expr`, in parentheses when its binding is too loose (or at random)."""
    tokens, binding = expr
    if binding < needed or draw(st.integers(0, 9)) == 0:
        return ["(", *tokens, ")"]
    return tokens


@st.composite
def atoms(draw, depth: int) -> tuple[list[str], int]:
    kind = draw(st.integers(0, 11 if depth > 0 else 9))
    if kind == 0:
        return [draw(ints)], ATOM
    if kind == 1:
        return [draw(decimals)], ATOM
    if kind == 2:
        return [draw(money)], ATOM
    if kind == 3:
        return [draw(durations)], ATOM
    if kind == 4:
        return [draw(percents)], ATOM
    if kind == 5:
        return [draw(times)], ATOM
    if kind == 6:
        return [draw(strings)], ATOM
    if kind == 7:
        return [draw(st.sampled_from(["true", "false"]))], ATOM
    if kind in (8, 9):
        return [draw(paths)], ATOM
    items = draw(st.lists(expressions(depth - 1), max_size=3))
    inner = _comma_joined([draw(wrapped(item, OR)) for item in items])
    if kind == 10:
        return [draw(names), "(", *inner, ")"], ATOM
    return ["[", *inner, "]"], ATOM


def _comma_joined(groups: list[list[str]]) -> list[str]:
    out: list[str] = []
    for n, group in enumerate(groups):
        if n:
            out.append(",")
        out += group
    return out


@st.composite
def expressions(draw, depth: int = 3) -> tuple[list[str], int]:
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(atoms(depth))
    sub = expressions(depth - 1)
    kind = draw(st.integers(0, 9))
    if kind <= 1:
        op, binding = ("or", OR) if kind == 0 else ("and", AND)
        operands = [draw(wrapped(draw(sub), binding + 1)) for _ in range(draw(st.integers(2, 4)))]
        tokens = operands[0]
        for operand in operands[1:]:
            tokens = [*tokens, op, *operand]
        return tokens, binding
    if kind == 2:
        return ["not", *draw(wrapped(draw(sub), NOT))], NOT
    left = draw(wrapped(draw(sub), SUM))
    if kind == 3:
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        return [*left, op, *draw(wrapped(draw(sub), SUM))], TEST
    if kind == 4:
        word = draw(st.sampled_from([["in"], ["not", "in"]]))
        return [*left, *word, *draw(wrapped(draw(sub), SUM))], TEST
    if kind == 5:
        ending = draw(st.sampled_from([["is", "missing"], ["is", "present"], ["within", "30d"]]))
        return [*left, *ending], TEST
    if kind == 6:
        op = draw(st.sampled_from(["+", "-"]))
        return [*left, op, *draw(wrapped(draw(sub), PRODUCT))], SUM
    if kind == 7:
        op = draw(st.sampled_from(["*", "/"]))
        factor = draw(wrapped(draw(sub), PRODUCT))
        return [*factor, op, *draw(wrapped(draw(sub), UNARY))], PRODUCT
    return [draw(st.sampled_from(["-", "+"])), *draw(wrapped(draw(sub), UNARY))], UNARY


@st.composite
def conditions(draw) -> list[str]:
    return draw(expressions())[0]


# --------------------------------------------------------------------------- clauses


def name_list(values: list[str]) -> list[str]:
    return _comma_joined([[v] for v in values])


some_names = st.lists(names, min_size=1, max_size=3)


@st.composite
def offsets(draw) -> list[str]:
    return [draw(st.sampled_from(["+", "-"])), draw(durations)]


@st.composite
def sends(draw) -> list[str]:
    tokens = ["send", draw(strings)]
    params = draw(st.lists(st.tuples(names, expressions(2)), max_size=3))
    if params:
        inner = _comma_joined([[name, "=", *draw(wrapped(value, OR))] for name, value in params])
        tokens += ["(", *inner, ")"]
    return tokens


@st.composite
def splits(draw) -> list[str]:
    arms = [[draw(percents), *draw(sends())] for _ in range(draw(st.integers(1, 3)))]
    return ["split", *_comma_joined(arms)]


@st.composite
def per_across(draw) -> list[str]:
    tokens = []
    if draw(st.booleans()):
        tokens += ["per", draw(names)]
    if draw(st.booleans()):
        tokens += ["across", draw(names)]
    return tokens


@st.composite
def step_clause(draw) -> list[str]:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return ["via", *name_list(draw(some_names))]
    return draw(sends()) if kind == 1 else draw(splits())


@st.composite
def clauses(draw) -> list[str]:
    kind = draw(st.integers(0, 13))
    if kind == 0:
        return ["purpose", draw(names)]
    if kind == 1:
        return ["market", *name_list(draw(some_names))]
    if kind == 2:
        return ["where", *draw(conditions())]
    if kind == 3:
        return draw(step_clause())
    if kind == 4:
        return ["between", draw(times), "and", draw(times), *draw(st.sampled_from([[], ["local"]]))]
    if kind == 5:
        return ["cooldown", draw(durations), *draw(per_across())]
    if kind == 6:
        return ["cap", draw(ints), "per", draw(durations), *draw(per_across())]
    if kind == 7:
        return ["expire", "after", draw(durations)]
    if kind == 8:
        return ["exit", "when", *draw(conditions())]
    if kind == 9:
        return ["holdout", draw(percents)]
    if kind == 10:
        return ["once", "per", draw(names)]
    step = ["step", *draw(st.sampled_from([[], ["+", "1h"]]) | offsets())]
    for _ in range(draw(st.integers(0, 3))):
        step += draw(step_clause())
    return step


@st.composite
def triggers(draw) -> list[str]:
    tokens = ["on", draw(names)]
    if draw(st.booleans()):
        tokens += draw(offsets())
    if draw(st.booleans()):
        tokens += ["at", draw(times), *draw(st.sampled_from([[], ["local"]]))]
    if draw(st.booleans()):
        tokens += ["unless", *draw(conditions())]
    return tokens


@st.composite
def flows(draw) -> list[str]:
    tokens: list[str] = []
    if draw(st.booleans()):
        title = draw(st.sampled_from([[], ['"Title"']]) | strings.map(lambda s: [s]))
        tokens += ["flow", draw(names), *title]
        for _ in range(draw(st.integers(0, 2))):
            tokens += draw(clauses())
    tokens += draw(triggers())
    for _ in range(draw(st.integers(0, 6))):
        tokens += draw(clauses())
    return tokens


# -------------------------------------------------------------------------- policies


@st.composite
def scopes(draw) -> list[str]:
    kind = draw(st.integers(0, 2))
    via = ["via", *name_list(draw(some_names))]
    if kind == 0:
        return [draw(names)]
    return [draw(names), *via] if kind == 1 else via


@st.composite
def rules(draw) -> list[str]:
    kind = draw(st.integers(0, 8))
    if kind == 0:
        requirements = []
        for _ in range(draw(st.integers(1, 3))):
            args = draw(st.lists(names, max_size=2))
            requirements.append([draw(names), *(["(", *name_list(args), ")"] if args else [])])
        body = [*draw(scopes()), "requires", *requirements[0]]
        for requirement in requirements[1:]:
            body += ["and", *requirement]
    elif kind == 1:
        body = [*draw(scopes()), "between", draw(times), "and", draw(times),
                *draw(st.sampled_from([[], ["local"]]))]
    elif kind == 2:
        body = [*draw(scopes()), "window", draw(durations), "..", draw(durations), "after", draw(names)]
    elif kind == 3:
        body = [*draw(scopes()), "once", "per", draw(names)]
    elif kind == 4:
        body = [*draw(scopes()), "template", "forbids", *name_list(draw(some_names))]
    elif kind == 5:
        body = ["forbid", "purpose", draw(names), *draw(st.sampled_from([[], ["in", "market", "US"]]))]
    elif kind == 6:
        body = ["keep", draw(names), draw(durations)]
    elif kind == 7:
        body = ["cap", *draw(scopes()), draw(ints), "per", draw(durations), *draw(per_across())]
    else:
        body = ["pause", "flow", "when", *draw(conditions()), "over", draw(durations)]
    citation = draw(st.sampled_from([[], ['"47 CFR 64.1200"']]) | strings.map(lambda s: [s]))
    return body + citation


@st.composite
def policies(draw) -> list[str]:
    subject = draw(st.sampled_from([["market", "US"], ["channel", "amazon"], ["platform", "shopify"],
                                    ["house"]]))
    tokens = ["policy", *subject, *draw(st.sampled_from([[], ['"Rules"']]))]
    for _ in range(draw(st.integers(0, 4))):
        tokens += draw(rules())
    return tokens


# ------------------------------------------------------------------------ declarations


@st.composite
def type_refs(draw) -> list[str]:
    tokens = [draw(names)]
    if draw(st.booleans()):
        tokens += ["[", draw(names), "]"]
    return tokens + draw(st.sampled_from([[], ["?"]]))


@st.composite
def declarations(draw) -> list[str]:
    kind = draw(st.integers(0, 2))
    doc = draw(st.sampled_from([[], ['"Documentation"']]) | strings.map(lambda s: [s]))
    if kind == 0:
        tokens = ["entity", draw(names), *doc]
        for _ in range(draw(st.integers(0, 3))):
            tokens += [draw(names), ":", *draw(type_refs()), *draw(st.sampled_from([[], ['"doc"']]))]
        return tokens
    if kind == 1:
        return ["enum", draw(names), *doc, ":", *name_list(draw(st.lists(names, min_size=1, max_size=30)))]
    return ["event", draw(names), "on", draw(names), *doc]


@st.composite
def files(draw) -> str:
    items = draw(st.lists(st.one_of(flows(), policies(), declarations(),
                                    strings.map(lambda s: ["import", s])), max_size=3))
    head = draw(st.sampled_from(["", "# header\n", "\n\n", "  # indented\n\n"]))
    return head + "".join(draw(laid_out(item)) for item in items)


# ---------------------------------------------------------------------------- (1)


def comment_texts_of(text: str) -> list[str]:
    return [c.text for c in parse(text).module.comments]


@GENERATED
@given(files())
def test_formatting_keeps_the_meaning_of_generated_files(text):
    original = parse(text)
    assert original.ok, [d.message for d in original.diagnostics]
    formatted = format_text(text)
    again = parse(formatted)
    assert again.ok
    assert again.module == original.module
    assert comment_texts_of(formatted) == comment_texts_of(text)
    assert format_text(formatted) == formatted


@settings(GENERATED, max_examples=100)
@given(files())
def test_formatted_generated_files_have_the_canonical_shape(text):
    formatted = format_text(text)
    if not formatted:
        return
    assert formatted.endswith("\n") and not formatted.endswith("\n\n")
    assert "\n\n\n" not in formatted and not formatted.startswith("\n")
    assert all(line == line.rstrip(" \t") for line in formatted.split("\n"))


# ---------------------------------------------------------------------------- (2)

SCRAPS = ["on", "flow", "policy", "where", "via", "send", "step", "split", "and", "or", "not", "in",
          "is", "missing", "(", ")", "[", "]", ",", "+", "-", "48h", "10%", "10:00", "5000 JPY",
          '"', '"x"', "#", "\n", "\t", " ", "，", "（", "「", "日本", "\x00", "\x1b", "\r", "\\",
          "entity", "enum", ":", "event", "..", "?", "=", "==", "1.5", "\u3000", "\ufeff"]

arbitrary_text = st.one_of(
    st.text(max_size=80),
    st.text(st.sampled_from(list(" \t\n\r\"'#()[],.:%+-*/=<>!?\\" + CJK + "az09AZ_")), max_size=80),
    st.lists(st.sampled_from(SCRAPS), max_size=30).map(" ".join),
    st.lists(st.sampled_from(SCRAPS), max_size=30).map("".join),
)


def assert_never_raises(text: str) -> None:
    parsed = parse(text, "fuzz.flow")
    assert all(isinstance(d, Diagnostic) for d in parsed.diagnostics)
    report = check_text(text, "fuzz.flow")
    assert all(isinstance(d, Diagnostic) for d in report.diagnostics)
    outcome = format_source(SourceFile("fuzz.flow", text))
    assert isinstance(outcome, FormatOutcome)
    if outcome.text is None:
        assert outcome.diagnostics
    else:
        assert format_text(outcome.text) == outcome.text


@FUZZED
@given(arbitrary_text)
def test_arbitrary_text_never_raises(text):
    assert_never_raises(text)


# ---------------------------------------------------------------------------- (3)

INLINE_SAMPLES = [
    "on delivered + 48h where not refunded via line, email\n",
    '# 配送後アンケート\nflow survey "アンケート"\n  purpose service\n'
    '  on delivered + 2d at 10:00 local\n'
    '  where not refunded\n    and order.total >= 5000 JPY  # 小額は除外\n  via line, email\n'
    '  send "survey" (coupon = "X1")\n  between 10:00 and 18:00 local\n',
    'flow cart\n  on cart_abandoned\n  step + 1h via email send "a"\n'
    '  step + 1d split 50% send "b", 50% send "c" (code = "X")\n  exit when ordered or unsubscribed\n',
    'policy market US "US"\n  marketing via sms requires consent(written) "TCPA"\n'
    "  cap marketing 4 per 30d per customer across flows\n  pause flow when rate > 0.5% over 7d\n",
    'import "policies/house.flow"\nenum tier: gold, silver\nentity order\n  total: money "paid"\n',
]


def corpus() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.flow"))]
    return texts + INLINE_SAMPLES


CORPUS = corpus()
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\w+|[^\w\s]')


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 3))):
        text = draw(mutation(text))
    return text


@st.composite
def mutation(draw, text: str) -> str:
    kind = draw(st.integers(0, 5))
    at = draw(st.integers(0, len(text)))
    if kind == 0:  # delete characters
        return text[:at] + text[at + draw(st.integers(1, 8)):]
    if kind == 1:  # duplicate characters
        piece = text[at:at + draw(st.integers(1, 30))]
        return text[:at] + piece + text[at:]
    if kind == 2:  # insert characters or scraps of the language
        insert = draw(st.one_of(st.text(max_size=4), st.sampled_from(SCRAPS)))
        return text[:at] + insert + text[at:]
    tokens = [m for m in TOKEN.finditer(text)]
    if kind in (3, 4) and tokens:
        token = tokens[draw(st.integers(0, len(tokens) - 1))]
        if kind == 3:  # delete a token
            return text[:token.start()] + text[token.end():]
        other = tokens[draw(st.integers(0, len(tokens) - 1))].group()
        return text[:token.start()] + other + " " + text[token.start():]  # copy a token elsewhere
    lines = text.split("\n")  # swap two lines
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


@FUZZED
@given(mutated())
def test_mutated_examples_never_raise(text):
    assert_never_raises(text)


def test_the_mutation_corpus_starts_from_valid_files():
    for text in CORPUS:
        assert parse(text).ok, text[:60]
