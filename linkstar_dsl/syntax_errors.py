"""Lark's parse errors, translated into diagnostics an ops person can act on.

Lark reports terminal names (`VIA`, `DURATION`, `$END`) and the set of terminals the grammar
would have accepted; users type keywords and think in clauses.  `describe` turns one Lark error
into one diagnostic.  It first reads what was written just before the error (the clause it is
in, the word before it, brackets still open), then asks a series of recognisers, one per mistake
people actually make (a duration without its unit, `48 hours`, a misspelt keyword, channels
without `via`, a stray comma, `=` for `==`, an unclosed quote or bracket, full-width punctuation,
Chinese text outside quotes, …).  The first that recognises the error words the diagnostic; when
none does, the diagnostic says what belongs at that spot in the clause's own terms ("after `via`
a channel such as `line` or `email` is expected").  Where one edit is obviously right, the
diagnostic carries it as a machine-applicable `Fix`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import cache

import attrs
from lark import Token, UnexpectedCharacters, UnexpectedInput

from .diagnostics import Diagnostic, Fix, make
from .source import SourceFile, Span
from .suggest import did_you_mean

# ------------------------------------------------------------------------------ vocabulary

#: Full-width and typographic characters that Chinese and Japanese keyboards produce, and the
#: ASCII character meant.  Other full-width forms (letters, digits) are found by NFKC folding.
FULLWIDTH = {
    "，": ",", "、": ",", "：": ":", "；": ";", "（": "(", "）": ")", "“": '"', "”": '"',
    "「": '"', "」": '"', "『": '"', "』": '"', "＂": '"', "　": " ", "＋": "+", "－": "-",
    "．": ".", "。": ".", "％": "%", "＝": "=", "＞": ">", "＜": "<", "！": "!", "［": "[",
    "］": "]", "＃": "#", "＿": "_", "‘": '"', "’": '"', "～": "~", "〜": "~",
}

#: Typographic opening quotes and the quote that closes them.
QUOTE_PAIRS = {"“": "”", "「": "」", "『": "』", "‘": "’", "＂": "＂"}

#: Regex terminals, as a user would describe what goes there.
TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a quoted text such as `"survey"`',
    "INT": "a whole number",
    "DECIMAL": "a number",
    "DURATION": "a duration such as `48h`",
    "PERCENT": "a percentage such as `10%`",
    "TIME": "a time of day such as `10:00`",
    "MONEY": "an amount such as `5000 JPY`",
    "SIGN": "`+` or `-`",
    "COMPARE": "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
    "MULOP": "`*` or `/`",
    "$END": "the end of the file",
}

#: Clause keywords in the order they are offered when several would fit: the common ones first.
DISPLAY_ORDER = [
    "where", "via", "send", "between", "purpose", "market", "split", "cooldown", "cap", "expire",
    "exit", "holdout", "once", "step",
]

#: Keywords that start a clause of a flow, in the order users meet them.
CLAUSE_ORDER = [
    "flow", "purpose", "market", "on", "where", "via", "send", "split", "between", "cooldown",
    "cap", "expire", "exit", "holdout", "once", "step", "policy", "import",
]

#: Terminals that can begin a value or a condition.
VALUE_STARTS = frozenset({"NAME", "INT", "DECIMAL", "MONEY", "DURATION", "PERCENT", "TIME", "STRING",
                          "LPAR", "LSQB", "TRUE", "FALSE", "SIGN"})

#: Terminals that are a value by themselves.
LITERAL_VALUES = frozenset({"NAME", "INT", "DECIMAL", "MONEY", "DURATION", "PERCENT", "TIME", "STRING"})

#: Words that introduce a condition.
CONDITION_WORDS = frozenset({"where", "unless", "when", "and", "or", "not", "("})

#: Spelled-out and capitalised units, and the one-letter unit they mean ("" for seconds).
UNIT_WORDS = {
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w",
    "y": "y", "yr": "y", "yrs": "y", "year": "y", "years": "y",
    "s": "", "sec": "", "secs": "", "second": "", "seconds": "",
}
MONTH_WORDS = frozenset({"mo", "mos", "mon", "month", "months"})
MINUTES_PER = {"m": 1, "h": 60, "d": 1440, "w": 10080, "y": 525600}

#: Operators from other languages (and maths), and how .flow writes them.
OPERATOR_SPELLINGS = {
    "&&": "and", "||": "or", "&": "and", "|": "or", "!": "not", "=>": ">=", "=<": "<=",
    "===": "==", "<>": "!=", "≠": "!=", "≤": "<=", "≥": ">=",
}

#: Currency signs written after an amount, and the ISO code that replaces them without doubt.
CURRENCY_SIGNS = {"円": "JPY", "€": "EUR", "£": "GBP", "₩": "KRW"}
AMBIGUOUS_CURRENCY = frozenset("$¥￥元")

#: What belongs after a keyword that takes a name, in the clause's own terms.
NAME_SLOTS = {
    "on": "an event such as `delivered`",
    "via": "a channel such as `line` or `email`",
    "market": "a market such as `JP`",
    "flow": "a name for the flow such as `post_delivery_survey`",
    "policy": "what the policy is about: `market JP`, `channel line` or a name",
    "per": "either `customer` or `order`",
    "across": "one of `flows`, `purpose` or `channel`",
    "channel": "a channel such as `line`",
    "entity": "a name for the record, such as `order`",
    "enum": "a name for the set of values",
    "event": "a name for the event, such as `delivered`",
    "keep": "what to keep, such as `consent`",
    "forbids": "what the template may not contain, such as `incentives`",
    ".": "the name of a field, such as `total` in `order.total`",
}


@attrs.frozen
class Wanted:
    """What belongs at a spot, and an example of it in place (or "")."""

    phrase: str
    example: str = ""


#: What belongs after a keyword whose argument is a single kind of literal.
LITERAL_SLOTS = {
    ("send", "STRING"): Wanted("the template name in quotes", 'send "survey"'),
    ("import", "STRING"): Wanted("a file name in quotes", 'import "policies.flow"'),
    ("holdout", "PERCENT"): Wanted("a percentage", "holdout 10%"),
    ("split", "PERCENT"): Wanted("a percentage and its `send`", 'split 50% send "review_a", 50% send "review_b"'),
    (",", "PERCENT"): Wanted("another arm", '50% send "review_b"'),
    ("cap", "INT"): Wanted("how many messages", "cap 4 per 30d"),
    ("cooldown", "DURATION"): Wanted("a duration", "cooldown 30d"),
    ("within", "DURATION"): Wanted("a duration", "refunded within 30d"),
    ("after", "DURATION"): Wanted("a duration", "expire after 3d"),
    ("+", "DURATION"): Wanted("a duration", "on delivered + 48h"),
    ("-", "DURATION"): Wanted("a duration", "on birthday - 7d"),
    ("between", "TIME"): Wanted("a time of day", "between 10:00 and 18:00"),
    ("at", "TIME"): Wanted("a time of day", "at 10:00 local"),
}

#: What belongs after a keyword that must be followed by one particular word or symbol.
KEYWORD_SLOTS = {
    "AND": Wanted("the word `and`", "between 10:00 and 18:00"),
    "AFTER": Wanted("the word `after`", "expire after 3d"),
    "WHEN": Wanted("the word `when`", "exit when refunded"),
    "PER": Wanted("the word `per`", "once per order"),
    "SEND": Wanted("the word `send`", '50% send "review_a"'),
    "EQUAL": Wanted("an `=`", 'coupon = "THANKS10"'),
    "COLON": Wanted("a `:`"),
    "RPAR": Wanted("a `)` to close the `(`"),
    "RSQB": Wanted("a `]` to close the list"),
}
CLAUSE_KEYWORD_SLOTS = {("cap", "PER"): Wanted("the word `per`", "cap 4 per 30d")}

#: Keywords that may be missing before a value, and so may be inserted by a fix.
INSERTABLE = frozenset({"AND", "AFTER", "WHEN", "PER", "SEND", "EQUAL"})

#: How people from other tools start a flow, where .flow writes `on`.
TRIGGER_SYNONYMS = frozenset({"when", "upon", "after", "trigger"})

KEYBOARD_HELP = ("switch the keyboard to half-width (ASCII) input for keywords, names, numbers and "
                 "punctuation; any text can go inside quotes")
PARAMETER_HELP = 'a send parameter is set with one `=`, as in `coupon = "THANKS10"`'
COMPARISONS_HELP = "comparisons are written `==`, `!=`, `<`, `<=`, `>` and `>=`"
UNITS_HELP = "units: `m` minutes, `h` hours, `d` days, `w` weeks, `y` years (365 days)"
FREE_TEXT_HELP = ('names and keywords use ASCII letters, digits and `_`; put free text inside quotes '
                  '`"…"` or after `#` as a comment')


# ---------------------------------------------------------------------------- grammar facts


@cache
def _literals() -> dict[str, str]:
    """Terminal name → the keyword or symbol it stands for (`VIA` → `via`, `LPAR` → `(`)."""
    from .parser import lark_parser

    return {t.name: t.pattern.value for t in lark_parser().terminals if t.pattern.type == "str"}


@cache
def item_starters() -> frozenset[str]:
    """The keywords that may begin a top-level item (`flow`, `on`, `policy`, …), read off the grammar."""
    from .parser import lark_parser

    literals = _literals()
    try:
        table = lark_parser().parser.parser.parser.parse_table
        first = table.states[table.start_states["start"]]
    except (AttributeError, KeyError):  # a Lark without these internals: the words of SPEC.md
        return frozenset({"flow", "on", "policy", "import"})
    return frozenset(literals[t] for t in first if t in literals)


@cache
def keywords() -> frozenset[str]:
    """Every reserved word of the language."""
    return frozenset(v for v in _literals().values() if v.isalpha())


def keyword_of_terminal(terminal: str) -> str:
    """The keyword a terminal stands for (`FLOW` → `flow`), or "" when it is not a keyword."""
    value = _literals().get(terminal, "")
    return value if value.isalpha() else ""


#: Words that begin a rule of a policy (other rules begin with the purpose or channel they govern).
RULE_WORDS = frozenset({"forbid", "keep", "pause"})


@cache
def clause_words() -> frozenset[str]:
    """Words that begin a clause, a policy rule or a top-level item."""
    return frozenset(CLAUSE_ORDER) | RULE_WORDS | item_starters()


def looks_like_clause_word(word: str) -> bool:
    """A word that is not a keyword but is one slip away from a clause keyword (`wehre`, `vai`)."""
    return (len(word) >= 3 and word not in keywords()
            and did_you_mean(word, sorted(clause_words())) is not None)


#: Keywords after which nothing more is needed, so a clause may follow them.
CLOSING_KEYWORDS = frozenset({"local", "missing", "present", "true", "false", "step"})


def ends_a_phrase(word: str) -> bool:
    """True when a clause could end with `word` (a name, a literal, `)`), false after `via`, `and`, `,` …"""
    if word in (")", "]", "?") or word.startswith('"') or word[:1].isdigit():
        return True
    if word[:1].isalpha() or word[:1] == "_":
        return word not in keywords() or word in CLOSING_KEYWORDS
    return False


# --------------------------------------------------------------------------------- scanning

#: One significant piece of text: a quoted text (maybe unclosed), a comment, a time, a number with
#: whatever letters follow it, a word, a two-character operator, or any other single character.
_SCAN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|\d{1,2}:\d{2}|\d+(?:\.\d+)?[A-Za-z%]*|[A-Za-z_][A-Za-z0-9_]*'
    r"|==|!=|<=|>=|\.\.|\S"
)

#: How far back the context of an error is read; no clause is anywhere near this long.
_LOOKBACK = 20_000


@attrs.frozen
class Word:
    """One significant piece of the text and where it starts."""

    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def scan_words(text: str, start: int = 0, end: int | None = None) -> list[Word]:
    """The significant words of `text[start:end]`, comments left out."""
    end = len(text) if end is None else end
    return [Word(m.group(), m.start()) for m in _SCAN.finditer(text, start, end) if m.group()[0] != "#"]


@attrs.frozen
class Context:
    """What was written before an error: its significant words, from a line well before it."""

    words: tuple[Word, ...]

    @property
    def prev(self) -> Word | None:
        return self.words[-1] if self.words else None

    @property
    def prev_text(self) -> str:
        return self.words[-1].text if self.words else ""

    def clause(self) -> Word | None:
        """The clause keyword the error is in (`via` for `via line, |`)."""
        return next((w for w in reversed(self.words) if w.text in clause_words()), None)

    @property
    def clause_text(self) -> str:
        clause = self.clause()
        return clause.text if clause else ""

    def words_in_clause(self) -> list[Word]:
        """The words after the clause keyword."""
        clause = self.clause()
        return [w for w in self.words if clause is None or w.start > clause.start]

    def in_condition(self) -> bool:
        """True inside a `where`, `unless` or `when` condition."""
        for word in reversed(self.words):
            if word.text in ("where", "unless", "when"):
                return True
            if word.text in clause_words():
                return False
        return False

    def in_split(self) -> bool:
        """True inside a `split`, whose arms each hold a `send`."""
        for word in reversed(self.words):
            if word.text == "split":
                return True
            if word.text in clause_words() and word.text != "send":
                return False
        return False

    def open_brackets(self) -> list[Word]:
        """`(` and `[` of the current clause not closed before the error, innermost last."""
        stack: list[Word] = []
        for word in self.words_in_clause():
            if word.text in ("(", "["):
                stack.append(word)
            elif word.text in (")", "]") and stack:
                stack.pop()
        return stack

    def flow_header(self) -> Word | None:
        """The `flow` of a named flow whose `on` trigger has not been written yet."""
        for i in range(len(self.words) - 1, -1, -1):
            text = self.words[i].text
            if text == "on":
                return None
            if text == "flow" and (i == 0 or self.words[i - 1].text != "pause"):
                return self.words[i]
            if text in item_starters():
                return None
        return None

    def at_top_level(self, expected: frozenset[str]) -> bool:
        """True where only a new item (`flow`, `on`, `policy`, …) may begin."""
        literals = _literals()
        words = {literals.get(t, t) for t in expected if t != "$END"}
        return bool(words) and words <= item_starters()


def context_at(text: str, pos: int) -> Context:
    lookback = max(0, pos - _LOOKBACK)
    start = text.rfind("\n", 0, lookback) + 1 if lookback else 0
    return Context(tuple(scan_words(text, start, pos)))


# ------------------------------------------------------------------- what belongs at a spot


def wanted(expected: frozenset[str], context: Context) -> Wanted:
    """What the grammar wants at the error, in the words of someone who writes flows."""
    prev = context.prev_text
    clause = context.clause_text
    if "NAME" in expected and (expected <= {"NAME", "COMMA"} or prev in NAME_SLOTS or prev == "purpose"):
        return Wanted(_name_slot(prev, clause, context))
    if len(expected - {"$END"}) == 1:
        (only,) = expected - {"$END"}
        for key in ((prev, only), (clause, only)):
            if key in LITERAL_SLOTS:
                return LITERAL_SLOTS[key]
        if (clause, only) in CLAUSE_KEYWORD_SLOTS:
            return CLAUSE_KEYWORD_SLOTS[(clause, only)]
        if only in KEYWORD_SLOTS:
            return KEYWORD_SLOTS[only]
        if only in TERMINAL_WORDS:
            return Wanted(TERMINAL_WORDS[only])
    if "NAME" in expected and expected <= VALUE_STARTS | {"NOT"}:
        return Wanted(_value_slot(prev, context))
    return Wanted(_listing(expected, context))


def _name_slot(prev: str, clause: str, context: Context) -> str:
    from .schema import PURPOSES

    if prev == "purpose":
        return "one of " + _either([f"`{p}`" for p in PURPOSES])
    if prev == "on" and clause == "on" and any(w.text == "event" for w in context.words[-4:]):
        return "a record such as `order` or `customer`"
    if prev == ",":
        return {"via": "another channel such as `email`", "market": "another market such as `US`",
                "enum": "another value"}.get(clause, "another name")
    return NAME_SLOTS.get(prev, "a name")


def _value_slot(prev: str, context: Context) -> str:
    if prev in CONDITION_WORDS or context.prev is None:
        return "a condition such as `refunded` or `order.total > 5000 JPY`"
    return 'a value such as `5000 JPY`, `"JP"` or `order.total`'


def _listing(expected: frozenset[str], context: Context) -> str:
    """A short, ordered description of a mixed expected set."""
    literals = _literals()
    present = {literals.get(t, t) for t in expected}
    items: list[str] = []
    if "ON" in expected and context.flow_header() is not None:
        items.append("the trigger `on EVENT`")
    if expected & {"AND", "OR"} and context.in_condition():
        items.append("`and` or `or`")
    if "COMPARE" in expected:
        items.append("a comparison such as `==` or `>`")
    if "SIGN" in expected and context.clause_text == "on" and context.prev_text not in ("+", "-"):
        items.append("an offset such as `+ 48h`")
    condition_only = ("in", "is", "within")
    for word in ("at", "unless", "local", "per", "across", *condition_only):
        if word in present and (word not in condition_only or context.in_condition()):
            items.append(f"`{word}`")
    items += [KEYWORD_SLOTS[t].phrase for t in ("COLON", "EQUAL") if t in expected]
    if "STRING" in expected and context.flow_header() is not None:
        items.append('a title in quotes such as `"Survey after delivery"`')
    elif "STRING" in expected:
        items.append(TERMINAL_WORDS["STRING"])
    clauses = [w for w in DISPLAY_ORDER if w in present]
    if expected & {"NAME", "INT", "DECIMAL", "MONEY"} and not clauses:
        items.append(_value_slot(context.prev_text, context))
    if len(clauses) >= 3:
        items.append("another clause such as " + _either([f"`{w}`" for w in clauses[:3]]))
    else:
        items += [f"`{w}`" for w in clauses]
    starters = [w for w in ("flow", "on", "policy", "import") if w in present]
    starters += sorted(w for w in present & item_starters() if w not in starters)
    if not items and starters:
        items = [f"`{w}`" for w in starters]
    if not items:
        spelled = [f"`{literals[t]}`" for t in sorted(expected) if t in literals]
        spelled += [TERMINAL_WORDS[t] for t in sorted(expected) if t in TERMINAL_WORDS and t != "$END"]
        items = spelled[:8] + (["…"] if len(spelled) > 8 else [])
    if "$END" in expected and not items:
        return "the end of the file"
    return _either(items) if items else "something else"


def _either(items: list[str]) -> str:
    """`a`, `a or b`, `a, b or c`."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def expectation(expected: frozenset[str], context: Context) -> str:
    """A help line: "after `via` a channel such as `line` or `email` is expected"."""
    what = wanted(expected, context)
    example = f", as in `{what.example}`" if what.example else ""
    prev = context.prev_text
    if not prev:
        start = "a file starts with" if context.at_top_level(expected) else "expected"
        return f"{start} {what.phrase}{example}"
    # Two code spans side by side (`per` `customer`) read as one; a comma keeps them apart.
    joiner = ", " if what.phrase.startswith("`") else " "
    return f"after `{_clip(prev, 24)}`{joiner}{what.phrase} is expected{example}"


# ------------------------------------------------------------------------------ the error spot


@attrs.frozen
class Spot:
    """Everything a recogniser needs to know about one syntax error."""

    source: SourceFile
    text: str  # the text that was parsed (clauses blanked by earlier recoveries)
    pos: int
    token: Token | None  # None when no token could be read (an unexpected character)
    expected: frozenset[str]
    context: Context

    def span(self, start: int, end: int | None = None) -> Span:
        return Span(self.source, start, start + 1 if end is None else end)

    @property
    def kind(self) -> str:
        return self.token.type if self.token is not None else ""

    @property
    def value(self) -> str:
        return str(self.token) if self.token is not None else ""

    @property
    def at_end(self) -> bool:
        return self.kind == "$END"

    @property
    def token_span(self) -> Span:
        return self.span(self.pos, self.pos + max(1, len(self.value)) if not self.at_end else self.pos)

    @property
    def literal(self) -> str:
        """The keyword or symbol of the token, or "" for names, numbers and texts."""
        return _literals().get(self.kind, "")

    def char(self, offset: int = 0) -> str:
        at = self.pos + offset
        return self.text[at] if 0 <= at < len(self.text) else ""

    def help(self) -> str:
        return expectation(self.expected, self.context)


Recogniser = Callable[[Spot], "Diagnostic | None"]


# --------------------------------------------------------------------------------- screening


def screen(source: SourceFile) -> Diagnostic | None:
    """Reject input that is not flow text at all (binary data) before parsing it."""
    nul = source.text.find("\x00")
    if nul != -1:
        return make("binary-file", Span(source, nul, nul + 1),
                    help=("`.flow` files are plain UTF-8 text; is this the right file?",))
    return None


# ------------------------------------------------------------------------------ translation


def describe(error: UnexpectedInput, source: SourceFile, text: str) -> Diagnostic:
    """One diagnostic for one Lark error; `text` is the (possibly partly blanked) parsed text."""
    spot = _spot(error, source, text)
    rules = CHARACTER_RULES if spot.token is None else TOKEN_RULES
    for rule in rules:
        diagnostic = rule(spot)
        if diagnostic is not None:
            return diagnostic
    return _unexpected(spot)  # pragma: no cover - the last rule of each list always answers


def _spot(error: UnexpectedInput, source: SourceFile, text: str) -> Spot:
    from .parser import accepted_at

    token = getattr(error, "token", None)
    if isinstance(error, UnexpectedCharacters):
        pos, token = error.pos_in_stream, None
        reported = error.allowed
    elif token is None or token.type == "$END":
        pos = _end_of_content(text)
        token = Token("$END", "", pos)
        reported = getattr(error, "accepts", None) or getattr(error, "expected", None)
    else:
        token = _whole_word(token, text)
        pos = token.start_pos
        reported = getattr(error, "accepts", None) or getattr(error, "expected", None)
    context = context_at(text, pos)
    expected = accepted_at(source, text, pos, _item_start(text, context))
    if expected is None:
        expected = frozenset(reported or ())
    return Spot(source, text, pos, token, expected, context)


def _item_start(text: str, context: Context) -> int:
    """Where the item (flow, policy, …) holding the error begins: its first word, first on its line.

    The `on` of a named flow is not where that flow begins; its `flow` line is.
    """
    starts = [w for w in context.words if w.text in item_starters() and _first_on_line(text, w.start)]
    if not starts:
        return 0
    if starts[-1].text == "on" and len(starts) > 1 and starts[-2].text == "flow":
        return starts[-2].start
    return starts[-1].start


def _whole_word(token: Token, text: str) -> Token:
    """The word a token was cut from, as a name.

    Where no name may come, the lexer reads a word that begins with a keyword as that keyword and
    the rest (`once order` → `or` `der`, `localtime` → `local` `time`); the user wrote one word.
    """
    if token.type != "NAME" and not keyword_of_terminal(token.type):
        return token
    start = token.start_pos
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_") and text[start - 1].isascii():
        start -= 1
    end = re.compile(r"[A-Za-z0-9_]*").match(text, token.end_pos).end()
    if (start, end) == (token.start_pos, token.end_pos):
        return token
    return Token("NAME", text[start:end], start, end_pos=end)


def _end_of_content(text: str) -> int:
    """The offset just after the last word of the file (comments and blanks ignored)."""
    words = scan_words(text, max(0, len(text) - _LOOKBACK))
    return words[-1].end if words else 0


# ------------------------------------------------------------------------ token recognisers


def _fullwidth_after_token(spot: Spot) -> Diagnostic | None:
    """`10：00`: the number was read, and the full-width colon after it is the real problem."""
    if spot.at_end or spot.token is None:
        return None
    after = spot.token.end_pos
    if after < len(spot.text) and _ascii_for(spot.text[after]) is not None:
        return _fullwidth(spot.source, spot.text, after)
    return None


def _number_for_duration(spot: Spot) -> Diagnostic | None:
    """`+ 48`, `+ 48 hours`, `+ 1.5 h`, `cooldown 30 days`: a number where a duration belongs."""
    if "DURATION" not in spot.expected or spot.kind not in ("INT", "DECIMAL", "MONEY"):
        return None
    number = spot.value.split()[0]
    unit = _next_word(spot.text, spot.pos + len(number))
    if unit is not None and _is_unit(unit.group(1)):
        return _duration_spelling(spot.source, spot.pos, unit.end(1), number, unit.group(1))
    if "." in number:
        return _duration_spelling(spot.source, spot.pos, spot.pos + len(number), number, "h")
    return make("duration-unit", spot.span(spot.pos, spot.pos + len(number)), number=number,
                label="add a unit",
                help=(f"write `{number}h` for hours, `{number}d` for days, `{number}w` for weeks "
                      f"or `{number}m` for minutes",))


def _number_for_time(spot: Spot) -> Diagnostic | None:
    """`between 10 and 18`, `at 9.30`, `10:30 pm`: a time of day written some other way."""
    if "TIME" not in spot.expected and not _am_pm_after_time(spot):
        return None
    if spot.kind not in ("INT", "DECIMAL", "NAME", "TIME"):
        return None
    return _time_spelling(spot)


def _am_pm_after_time(spot: Spot) -> bool:
    prev = spot.context.prev
    return (spot.kind == "NAME" and spot.value.lower().replace(".", "") in ("am", "pm")
            and prev is not None and re.fullmatch(r"\d{1,2}:\d{2}", prev.text) is not None)


def _number_for_percent(spot: Spot) -> Diagnostic | None:
    """`holdout 10`, `split 50 send …`: a percentage without `%`."""
    if spot.expected != {"PERCENT"} or spot.kind not in ("INT", "DECIMAL"):
        return None
    suggestion = f"{spot.value}%"
    span = spot.token_span
    return make("unexpected-token", span, found=f"number `{spot.value}`", context=_after(spot),
                label=f"write `{suggestion}`", help=(spot.help(),),
                fix=Fix(span, suggestion, f"write `{suggestion}`"))


def _operator_spelling(spot: Spot) -> Diagnostic | None:
    """`=` for `==` in a condition (and `=>`, `===`, `<>`), `==` for `=` in send parameters."""
    value, text = spot.value, spot.text
    if spot.kind == "EQUAL" and "COMPARE" in spot.expected:
        written = "=" + text[spot.pos + 1] if text[spot.pos + 1 : spot.pos + 2] in ("<", ">") else "="
        suggestion = {"=": "==", "=>": ">=", "=<": "<="}[written]
        span = spot.span(spot.pos, spot.pos + len(written))
        help_line = "to compare two values, write `==`" if written == "=" else COMPARISONS_HELP
        return _operator(span, written, suggestion, help_line)
    prev = spot.context.prev
    if prev is not None and prev.end == spot.pos:
        joined = prev.text + value
        if joined == "==" and "COMPARE" not in spot.expected:  # `coupon == "A"`, read as `=` `=`
            return _operator(spot.span(prev.start, spot.pos + 1), "==", "=", PARAMETER_HELP)
        if joined in ("===", "<>"):
            span = spot.span(prev.start, spot.pos + len(value))
            return _operator(span, joined, OPERATOR_SPELLINGS[joined], COMPARISONS_HELP)
    if spot.kind == "COMPARE" and value == "==" and "EQUAL" in spot.expected:
        return _operator(spot.token_span, "==", "=", PARAMETER_HELP)
    return None


def _operator(span: Span, written: str, suggestion: str, help_line: str) -> Diagnostic:
    return make("operator-spelling", span, text=written, suggestion=suggestion, label=f"write `{suggestion}`",
                help=(help_line,), fix=Fix(span, suggestion, f"write `{suggestion}`"))


def _bracket_balance(spot: Spot) -> Diagnostic | None:
    """A `)` with no `(`, or a `(` still open when the clause (or the file) ends."""
    opening = {")": "(", "]": "["}
    if spot.value in opening and spot.kind in ("RPAR", "RSQB"):
        if not any(w.text == opening[spot.value] for w in spot.context.open_brackets()):
            span = spot.token_span
            return make("unmatched-bracket", span, char=spot.value, opening=opening[spot.value],
                        label="nothing opened it",
                        help=(f"remove it, or add the missing `{opening[spot.value]}` where the group starts",),
                        fix=Fix(span, "", f"remove the `{spot.value}`"))
        return None
    still_open = spot.context.open_brackets()
    if not still_open or not (spot.at_end or spot.value in clause_words()):
        return None
    bracket = still_open[-1]
    closing = ")" if bracket.text == "(" else "]"
    if _closing_expected(spot, closing):
        prev = spot.context.prev
        at = prev.end if prev is not None else spot.pos
        return make("unclosed-bracket", spot.span(bracket.start), char=bracket.text, label="opened here",
                    help=(f"add `{closing}` where the group ends",),
                    fix=Fix(spot.span(at, at), closing, f"add `{closing}`"))
    return make("unclosed-bracket", spot.span(bracket.start), char=bracket.text, label="opened here",
                help=(f"close it with `{closing}`", spot.help()))


def _closing_expected(spot: Spot, closing: str) -> bool:
    return ("RPAR" if closing == ")" else "RSQB") in spot.expected


def _incomplete_condition(spot: Spot) -> Diagnostic | None:
    """`where not refunded and` followed by the next clause or the end of the file."""
    prev = spot.context.prev
    if prev is None or prev.text not in ("where", "unless", "when", "and", "or", "not"):
        return None
    if not (spot.at_end or spot.value in clause_words()):
        return None
    fix = None
    if prev.text in ("and", "or"):
        before = spot.context.words[-2] if len(spot.context.words) > 1 else None
        lo = before.end if before is not None else prev.start
        fix = Fix(spot.span(lo, prev.end), "", f"remove `{prev.text}`")
    return make("incomplete-condition", spot.span(prev.start, prev.end), word=prev.text,
                label="a condition is expected after this",
                help=(f"after `{prev.text}` {_value_slot(prev.text, spot.context)} is expected",), fix=fix)


def _stray_comma(spot: Spot) -> Diagnostic | None:
    """`via line,, email`, `via line, email,` followed by the next clause or the end of the file."""
    if spot.kind == "COMMA" and spot.expected & LITERAL_VALUES:
        span = spot.token_span
        return make("stray-comma", span, label="a name is expected before another comma",
                    help=("remove the extra comma",), fix=Fix(span, "", "remove the comma"))
    if spot.kind == "COMMA" and not spot.context.in_condition():
        span = spot.token_span
        return make("unexpected-token", span, found="`,`", context=_after(spot),
                    label="clauses are not separated by commas", help=(spot.help(),),
                    fix=Fix(span, "", "remove the comma"))
    prev = spot.context.prev
    closing = spot.value in (")", "]")
    if prev is None or prev.text != "," or not (spot.at_end or closing or spot.value in clause_words()):
        return None
    comma = spot.span(prev.start, prev.end)
    return make("stray-comma", comma, label="nothing follows this comma",
                help=("remove the comma, or add the missing item after it",),
                fix=Fix(comma, "", "remove the comma"))


def _list_without_brackets(spot: Spot) -> Diagnostic | None:
    """`where order.country in JP, KR`: a list needs brackets."""
    if spot.kind != "COMMA" or not spot.context.in_condition():
        return None
    words = spot.context.words_in_clause()
    names = [i for i, w in enumerate(words) if w.text == "in"]
    if not names:
        return None
    first = names[-1] + 1
    if first >= len(words):
        return None
    items = _comma_list(spot.text, words[first].start)
    if items is None:
        return None
    lo, hi, values = items
    suggestion = "[" + ", ".join(values) + "]"
    span = spot.span(lo, hi)
    return make("list-brackets", span, suggestion=suggestion, label=f"write `{suggestion}`",
                help=("`in` checks membership in a list, and a list is written `[A, B, C]`",),
                fix=Fix(span, suggestion, "add the brackets"))


_ITEM = r'(?:"[^"\n]*"|[A-Za-z0-9_.]+)'
_COMMA_LIST = re.compile(_ITEM + r"(?:[ \t]*,[ \t]*" + _ITEM + ")+")


def _comma_list(text: str, start: int) -> tuple[int, int, list[str]] | None:
    match = _COMMA_LIST.match(text, start)
    if match is None:
        return None
    values = [v.strip() for v in match.group().split(",")]
    return match.start(), match.end(), values


def _missing_via(spot: Spot) -> Diagnostic | None:
    """`on delivered line, email`: channels without `via`."""
    from .schema import CHANNELS

    if spot.kind != "NAME" or spot.value not in CHANNELS or "VIA" not in spot.expected:
        return None
    insert = spot.span(spot.pos, spot.pos)
    return make("missing-via", spot.token_span, label="a channel name",
                help=(f"write `via {spot.value}` to send through {spot.value}",),
                fix=Fix(insert, "via ", "insert `via`"))


def _misspelt_keyword(spot: Spot) -> Diagnostic | None:
    """`wehre`, `vai`, `sned`, `Where`: a word one slip away from a keyword allowed here."""
    if spot.kind != "NAME":
        return None
    word = spot.value
    literals = _literals()
    allowed = sorted({literals[t] for t in spot.expected if t in literals and literals[t].isalpha()})
    if not _first_on_line(spot.text, spot.pos):  # a new item (`flow`, `on`, …) begins a line
        allowed = [k for k in allowed if k not in item_starters()]
    guess = did_you_mean(word, allowed) if allowed else None
    if guess is None:  # `localtime`: a keyword with something glued to it
        guess = next((k for k in allowed if len(k) >= 4 and word.lower().startswith(k)), None)
    if guess is not None:
        return _keyword_fix(spot, guess)
    if spot.context.at_top_level(spot.expected):
        elsewhere = did_you_mean(word, CLAUSE_ORDER)
        if elsewhere is not None:
            return make("unknown-keyword", spot.token_span, word=word, where="",
                        label=f"did you mean `{elsewhere}`?",
                        help=(f"did you mean `{elsewhere}`? It belongs inside a flow: after `flow NAME`, "
                              "or after the flow's `on EVENT` trigger",))
    return None


def _keyword_fix(spot: Spot, guess: str) -> Diagnostic:
    word = spot.value
    span = spot.token_span
    if word.lower() == guess:
        label, help_line = f"write `{guess}`", "keywords are written in lower case"
    else:
        label, help_line = f"did you mean `{guess}`?", f"did you mean `{guess}`?"
    return make("unknown-keyword", span, word=word, where=" here", label=label, help=(help_line,),
                fix=Fix(span, guess, f"replace with `{guess}`"))


def _missing_comma(spot: Spot) -> Diagnostic | None:
    """`via line email`, `via line and email`, `[JP US]`, two split arms: items need commas."""
    prev = spot.context.prev
    clause = spot.context.clause_text
    if prev is not None and _between_items(spot, prev):
        at = spot.span(prev.end, prev.end)
        return make("missing-comma", spot.token_span, left=_clip(prev.text, 20), right=_clip(spot.value, 20),
                    label="a comma is missing before this", help=("separate the items with commas",),
                    fix=Fix(at, ",", "insert a comma"))
    if prev is None or clause not in ("via", "market") or not _list_item_like(clause, prev.text):
        return None
    if spot.kind == "NAME" and _list_item_like(clause, spot.value):
        at = spot.span(prev.end, prev.end)
        return make("missing-comma", spot.token_span, left=prev.text, right=spot.value,
                    label="a comma is missing before this", help=(f"write `{prev.text}, {spot.value}`",),
                    fix=Fix(at, ",", "insert a comma"))
    following = _next_word(spot.text, spot.pos + len(spot.value))
    if spot.value in ("and", "or") and following is not None and _list_item_like(clause, following.group(1)):
        span = spot.span(prev.end, spot.pos + len(spot.value))
        right = following.group(1)
        return make("missing-comma", spot.token_span, left=prev.text, right=right,
                    label="write a comma instead", help=(f"write `{prev.text}, {right}`",),
                    fix=Fix(span, ",", "replace with a comma"))
    return None


def _between_items(spot: Spot, prev: Word) -> bool:
    """Two values side by side inside `[…]`, or a split arm right after another."""
    if spot.context.in_split():
        return spot.kind == "PERCENT" and prev.text.startswith('"')
    brackets = spot.context.open_brackets()
    if not brackets or brackets[-1].text != "[" or "COMMA" not in spot.expected:
        return False
    return ends_a_phrase(prev.text) and spot.kind in VALUE_STARTS - {"SIGN", "LPAR"}


def _list_item_like(clause: str, word: str) -> bool:
    """A word that reads as another channel (after `via`) or market (after `market`)."""
    from .schema import CHANNELS

    if clause == "via":
        return word in CHANNELS
    return re.fullmatch(r"[A-Z]{2,3}", word) is not None


def _window_separator(spot: Spot) -> Diagnostic | None:
    """`between 10:00-18:00`, `between 10:00 to 18:00`: the two times are joined with `and`."""
    if spot.expected != {"AND"} or spot.value not in ("-", "to", "until", "till", "~"):
        return None
    prev = spot.context.prev
    lo = prev.end if prev is not None else spot.pos
    hi = spot.pos + len(spot.value)
    replacement = " and" + ("" if spot.text[hi : hi + 1].isspace() else " ")
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label="write `and`", help=("a send window is written `between 10:00 and 18:00`",),
                fix=Fix(spot.span(lo, hi), replacement, "write `and`"))


def _missing_trigger(spot: Spot) -> Diagnostic | None:
    """`flow survey` + clauses, then a new item or the end of the file, but never `on EVENT`."""
    header = spot.context.flow_header()
    if header is None or "ON" not in spot.expected:
        return None
    if not (spot.at_end or spot.value in item_starters()):
        return None
    name = _next_word(spot.text, header.end)
    name_text = name.group(1) if name else "?"
    end = name.end(1) if name else header.end
    return make("missing-trigger", spot.span(header.start, end), name=name_text,
                label="this flow never says when it starts",
                help=("add its trigger, for example `on delivered + 48h`, after the flow's name",))


_TRIGGER = re.compile(r"\bon[ \t]+([A-Za-z_][A-Za-z0-9_]*)")


def _clause_outside_flow(spot: Spot) -> Diagnostic | None:
    """`purpose service on delivered`: a clause before the `on` that starts a header-less flow."""
    word = spot.literal
    if word not in CLAUSE_ORDER or word in item_starters() or not spot.context.at_top_level(spot.expected):
        return None
    help_lines = ["a flow starts with `flow NAME` (then any clauses, then `on EVENT`) or directly with "
                  "`on EVENT`; put this clause after one of them"]
    trigger = _TRIGGER.search(spot.text, spot.pos, _line_end(spot.text, spot.pos))
    if trigger is not None:
        clause = spot.text[spot.pos : trigger.start()].strip()
        help_lines = [f"write `{trigger.group()} {clause}`, or name the flow first: `flow NAME` on the "
                      "line above"]
    return make("clause-outside-flow", spot.token_span, word=word, label="before the flow starts",
                help=tuple(help_lines))


def _missing_on(spot: Spot) -> Diagnostic | None:
    """`delivered + 48h via line`: the event of a flow written without `on` (also in a named flow)."""
    if spot.kind != "NAME" or "ON" not in spot.expected:
        return None
    in_header = spot.context.flow_header() is not None and _first_on_line(spot.text, spot.pos)
    if not (spot.context.at_top_level(spot.expected) or in_header):
        return None
    following = scan_words(spot.text, spot.pos + len(spot.value), _line_end(spot.text, spot.pos))
    if following and following[0].text not in clause_words() | {"+", "-", "at", "unless"}:
        return None
    insert = spot.span(spot.pos, spot.pos)
    return make("missing-on", spot.token_span, word=spot.value, label=f"did you mean `on {spot.value}`?",
                help=("every flow starts with `flow NAME` or with its trigger, `on EVENT`",),
                fix=Fix(insert, "on ", "insert `on`"))


def _flow_name_words(spot: Spot) -> Diagnostic | None:
    """`flow post delivery survey`, `flow post-delivery`: a flow name is one word."""
    header = spot.context.flow_header()
    words = spot.context.words
    if header is None or len(words) < 2 or words[-2] is not header:
        return None
    if spot.kind not in ("NAME", "SIGN"):
        return None
    line_end = _line_end(spot.text, spot.pos)
    tail = re.compile(r"(?:[ \t]*-?[ \t]*[A-Za-z0-9_]+)*").match(spot.text, spot.pos).end()
    tail = min(tail, line_end)
    parts = re.findall(r"[A-Za-z0-9_]+", spot.text[words[-1].start : tail])
    if any(p in keywords() for p in parts):
        return None
    suggestion = "_".join(parts)
    span = spot.span(words[-1].start, tail)
    return make("unexpected-token", span, found=_describe_token(spot), context=_after(spot),
                label=f"write `{suggestion}`",
                help=("a flow's name is one word of letters, digits and `_`; a title with spaces goes in "
                      'quotes after it, as in `flow post_delivery "Survey after delivery"`',),
                fix=Fix(span, suggestion, f"write `{suggestion}`"))


def _quoted_name(spot: Spot) -> Diagnostic | None:
    """`purpose "service"`, `via "line"`: a name in quotes."""
    if spot.kind != "STRING" or "NAME" not in spot.expected or "STRING" in spot.expected:
        return None
    inner = spot.value[1:-1]
    fix = None
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", inner):
        fix = Fix(spot.token_span, inner, "remove the quotes")
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label="names are written without quotes" if fix else "not a name",
                help=(spot.help(),), fix=fix)


def _unquoted_template(spot: Spot) -> Diagnostic | None:
    """`send survey`, `import policies/us.flow`: a template or file name without quotes."""
    if spot.kind != "NAME" or spot.expected != {"STRING"}:
        return None
    name = re.compile(r'[^\s"#]+').match(spot.text, spot.pos).group()
    span = spot.span(spot.pos, spot.pos + len(name))
    quoted = f'"{name}"'
    return make("unexpected-token", span, found=f"word `{_clip(name)}`", context=_after(spot),
                label=f"write `{quoted}`", help=(spot.help(),), fix=Fix(span, quoted, "add the quotes"))


def _forgotten_join(spot: Spot) -> Diagnostic | None:
    """`where not refunded returned`: two conditions with nothing joining them."""
    if not spot.context.in_condition() or "AND" not in spot.expected:
        return None
    if spot.kind not in VALUE_STARTS - {"SIGN", "LPAR"} and spot.kind != "NOT":
        return None
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label="`and` or `or` is missing before this",
                help=("join two conditions with `and` (both must hold) or `or` (either may hold)",))


def _forgotten_where(spot: Spot) -> Diagnostic | None:
    """`on delivered paid`: a condition written straight after the trigger."""
    if spot.kind != "NAME" or "WHERE" not in spot.expected or spot.context.clause_text != "on":
        return None
    after_on = [w.text for w in spot.context.words_in_clause()]
    if not (len(after_on) == 1 or (len(after_on) == 3 and after_on[1] in ("+", "-"))):
        return None
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label="not a clause",
                help=(f"to send only when something holds, write `where {spot.value}`",))


def _missing_keyword(spot: Spot) -> Diagnostic | None:
    """`expire 3d`, `exit refunded`, `once order`, `(coupon "A")`: the one word that must come first."""
    wanted_only = spot.expected - {"$END"}
    if len(wanted_only) != 1 or spot.kind not in VALUE_STARTS - {"SIGN", "LPAR", "LSQB"}:
        return None
    (only,) = wanted_only
    if only not in INSERTABLE:
        return None
    word = _literals()[only]
    insert = spot.span(spot.pos, spot.pos)
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label=f"`{word}` is missing before this", help=(spot.help(),),
                fix=Fix(insert, f"{word} ", f"insert `{word}`"))


def _missing_sign(spot: Spot) -> Diagnostic | None:
    """`on delivered 48h`, `step 1d`: an offset is written with its sign, `+ 48h`."""
    if spot.kind != "DURATION" or "SIGN" not in spot.expected or "DURATION" in spot.expected:
        return None
    if spot.context.clause_text not in ("on", "step"):
        return None
    insert = spot.span(spot.pos, spot.pos)
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label=f"write `+ {spot.value}`",
                help=("an offset counts from the event: `+ 48h` after it, `- 1d` before it",),
                fix=Fix(insert, "+ ", "insert `+`"))


def _swapped_words(spot: Spot) -> Diagnostic | None:
    """`30d cooldown`, `"survey" send`, `service purpose`: a clause's keyword after its value."""
    from .parser import reads_until

    if spot.at_end or spot.value in clause_words():
        return None
    following = scan_words(spot.text, spot.pos + len(spot.value), _line_end(spot.text, spot.pos))
    if not following or following[0].text not in clause_words() - item_starters():
        return None
    keyword = following[0]
    gap = spot.text[spot.pos + len(spot.value) : keyword.start]
    swapped = keyword.text + gap + spot.value
    candidate = spot.text[: spot.pos] + swapped + spot.text[keyword.end :]
    item_start = _item_start(spot.text, spot.context)
    if not reads_until(spot.source, candidate, item_start, _line_end(candidate, spot.pos)):
        return None
    span = spot.span(spot.pos, keyword.end)
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label=f"write `{swapped}`", help=("a clause starts with its keyword, then its value",),
                fix=Fix(span, swapped, f"write `{swapped}`"))


def _trigger_synonym(spot: Spot) -> Diagnostic | None:
    """`when delivered …`: a flow starts with `on`."""
    if spot.value.lower() not in TRIGGER_SYNONYMS or not spot.context.at_top_level(spot.expected):
        return None
    following = _next_word(spot.text, spot.pos + len(spot.value))
    if following is None or following.group(1) in keywords():
        return None
    span = spot.token_span
    return make("unexpected-token", span, found=_describe_token(spot), context="",
                label="write `on`", help=(f"a flow starts with its trigger: `on {following.group(1)}`",),
                fix=Fix(span, "on", "write `on`"))


def _currency_case(spot: Spot) -> Diagnostic | None:
    """`5000 jpy`: currency codes are upper case."""
    prev = spot.context.prev
    if spot.kind != "NAME" or prev is None or not re.fullmatch(r"\d+(?:\.\d+)?", prev.text):
        return None
    if not re.fullmatch(r"[A-Za-z]{3}", spot.value) or spot.value.isupper():
        return None
    if spot.text[prev.end : spot.pos].strip():
        return None
    money = f"{prev.text} {spot.value.upper()}"
    span = spot.span(prev.start, spot.pos + len(spot.value))
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label=f"write `{money}`",
                help=("currency codes are written in capitals: `JPY`, `USD`, `EUR`",),
                fix=Fix(span, money, f"write `{money}`"))


def _negated_presence(spot: Spot) -> Diagnostic | None:
    """`is not missing`: written `is present` (and `is not present`: `is missing`)."""
    prev = spot.context.prev
    if spot.kind != "NOT" or prev is None or prev.text != "is":
        return None
    following = _next_word(spot.text, spot.pos + len(spot.value))
    if following is None or following.group(1) not in ("missing", "present"):
        return None
    opposite = "present" if following.group(1) == "missing" else "missing"
    span = spot.span(prev.start, following.end(1))
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label=f"write `is {opposite}`", help=("the two checks are `is missing` and `is present`",),
                fix=Fix(span, f"is {opposite}", f"write `is {opposite}`"))


def _unexpected(spot: Spot) -> Diagnostic:
    if spot.at_end:
        return _unexpected_end(spot)
    return make("unexpected-token", spot.token_span, found=_describe_token(spot), context=_after(spot),
                label=f"{_describe_token(spot)} is not allowed here", help=(spot.help(),))


def _unexpected_end(spot: Spot) -> Diagnostic:
    prev = spot.context.prev
    span = spot.span(prev.start, prev.end) if prev is not None else spot.span(spot.pos, spot.pos)
    item = next((w.text for w in reversed(spot.context.words) if w.text in item_starters()), "flow")
    where = {"on": "a flow", "flow": "a flow", "policy": "a policy"}.get(item, f"`{item}`")
    if spot.context.in_condition():
        where = "a condition"
    elif prev is not None and prev.text == ",":
        where = "a list"
    return make("unexpected-end", span, where=where, label="the file ends after this", help=(spot.help(),))


def _after(spot: Spot) -> str:
    prev = spot.context.prev_text
    return f" after `{_clip(prev, 24)}`" if prev else ""


def _describe_token(spot: Spot) -> str:
    kind, value = spot.kind, spot.value
    if kind == "$END":
        return "end of file"
    if spot.literal:
        return f"keyword `{value}`" if value.isalpha() else f"`{value}`"
    names = {"NAME": "word", "INT": "number", "DECIMAL": "number", "DURATION": "duration",
             "PERCENT": "percentage", "TIME": "time", "MONEY": "amount"}
    if kind == "STRING":
        return f"text {_clip(value, 30)}"
    if kind in names:
        return f"{names[kind]} `{_clip(value, 30)}`"
    return f"`{_clip(value, 30)}`"


#: Token recognisers, most specific first; the last always answers.
TOKEN_RULES: tuple[Recogniser, ...] = (
    _fullwidth_after_token,
    _negated_presence,
    _number_for_duration,
    _number_for_time,
    _number_for_percent,
    _operator_spelling,
    _bracket_balance,
    _incomplete_condition,
    _list_without_brackets,
    _stray_comma,
    _missing_comma,
    _missing_via,
    _misspelt_keyword,
    _window_separator,
    _missing_keyword,
    _missing_sign,
    _currency_case,
    _swapped_words,
    _missing_trigger,
    _trigger_synonym,
    _clause_outside_flow,
    _missing_on,
    _flow_name_words,
    _quoted_name,
    _unquoted_template,
    _forgotten_join,
    _forgotten_where,
    _unexpected,
)


# -------------------------------------------------------------------- character recognisers


def _unclosed_string(spot: Spot) -> Diagnostic | None:
    if spot.char() != '"':
        return None
    end = len(spot.text[spot.pos : _line_end(spot.text, spot.pos)].rstrip()) + spot.pos
    return make("unclosed-string", spot.span(spot.pos, end), label="this text starts here",
                help=('end the text with `"` on the same line; to put a quote inside a text, write `\\"`',),
                fix=Fix(spot.span(end, end), '"', "close the text"))


def _single_quotes(spot: Spot) -> Diagnostic | None:
    if spot.char() != "'":
        return None
    match = re.compile(r"'([^'\n]*)'").match(spot.text, spot.pos)
    end = match.end() if match else spot.pos + 1
    span = spot.span(spot.pos, end)
    fix = Fix(span, '"' + match.group(1).replace('"', '\\"') + '"', "use double quotes") if match else None
    return make("single-quotes", span, label="single quotes", fix=fix,
                help=("write `\"…\"` instead of `'…'`",))


def _fullwidth_character(spot: Spot) -> Diagnostic | None:
    if _ascii_for(spot.char()) is None:
        return None
    return _fullwidth(spot.source, spot.text, spot.pos)


def _operator_character(spot: Spot) -> Diagnostic | None:
    """`&&`, `||`, `!refunded`, `≥`: operators of other languages."""
    for written in sorted(OPERATOR_SPELLINGS, key=len, reverse=True):
        if spot.text.startswith(written, spot.pos):
            suggestion = OPERATOR_SPELLINGS[written]
            span = spot.span(spot.pos, spot.pos + len(written))
            replacement = _spaced(spot.text, span.start, span.end, suggestion)
            joins = suggestion in ("and", "or", "not")
            help_line = "conditions are joined with `and`, `or` and `not`" if joins else COMPARISONS_HELP
            return make("operator-spelling", span, text=written, suggestion=suggestion,
                        label=f"write `{suggestion}`", help=(help_line,),
                        fix=Fix(span, replacement, f"write `{suggestion}`"))
    return None


def _separator_character(spot: Spot) -> Diagnostic | None:
    """`;` after a clause, `{ … }` around a flow: .flow needs neither."""
    char = spot.char()
    if char == ";":
        span = spot.span(spot.pos)
        return make("unexpected-character", span, char=char, label="remove it",
                    help=("clauses need no separator: each one starts with its keyword",),
                    fix=Fix(span, "", "remove the `;`"))
    if char in ("{", "}"):
        return make("unexpected-character", spot.span(spot.pos), char=char, label="remove it",
                    help=("a flow has no braces: its clauses simply follow its trigger or its "
                          "`flow NAME` line",))
    return None


def _number_word(spot: Spot) -> Diagnostic | None:
    """`1.5h`, `48H`, `48hrs`, `2days`, `90s`, `10am`: numbers glued to something the lexer rejects."""
    match = re.compile(r"(\d+(?:\.\d+)?)(?::(\d{2}))?([A-Za-z_%.]*)").match(spot.text, spot.pos)
    if match is None or not match.group(1):
        return None
    number, minutes, unit = match.groups()
    end = match.end()
    if unit.lower().replace(".", "") in ("am", "pm") or minutes is not None:
        return _time_spelling(spot)
    if _is_unit(unit):
        return _duration_spelling(spot.source, spot.pos, end, number, unit)
    return make("unexpected-token", spot.span(spot.pos, end), found=f"`{match.group()}`",
                context=_after(spot),
                label="not a number, duration or time",
                help=("a duration is a whole number and a unit: `m` minutes, `h` hours, `d` days, "
                      "`w` weeks, `y` years, as in `48h`",))


def _currency_sign(spot: Spot) -> Diagnostic | None:
    """`5000円`, `€20`: money is written with its ISO code, `5000 JPY`."""
    char = spot.char()
    if char not in CURRENCY_SIGNS and char not in AMBIGUOUS_CURRENCY:
        return None
    prev = spot.context.prev
    amount = prev.text if prev is not None and prev.end == spot.pos and prev.text[:1].isdigit() else None
    span = spot.span(spot.pos)
    code = CURRENCY_SIGNS.get(char)
    if amount is not None and code is not None:
        money = f"{amount} {code}"
        return make("unexpected-character", spot.span(prev.start, spot.pos + 1), char=char,
                    label=f"write `{money}`", help=("amounts are written with their ISO 4217 currency code, "
                                                    "as in `5000 JPY`",),
                    fix=Fix(spot.span(prev.start, spot.pos + 1), money, f"write `{money}`"))
    return make("unexpected-character", span, char=char, label="write the currency code instead",
                help=("amounts are written with their ISO 4217 currency code after the number: "
                      "`5000 JPY`, `20 USD`, `100 CNY`",))


def _non_ascii_text(spot: Spot) -> Diagnostic | None:
    char = spot.char()
    if not char or ord(char) < 128 or char.isspace():
        return None
    match = re.compile(r"[^\x00-\x7f\s]+").match(spot.text, spot.pos)
    word = match.group()
    span = spot.span(spot.pos, spot.pos + len(word))
    help_lines = [FREE_TEXT_HELP]
    fix = None
    prev = spot.context.prev_text
    if prev == "send":
        help_lines = ['the template name goes in quotes, as in `send "survey"`']
        fix = Fix(span, f'"{word}"', "add the quotes")
    elif prev in NAME_SLOTS or prev == "purpose":
        help_lines.insert(0, expectation(frozenset({"NAME"}), spot.context))
        if prev == "on":
            help_lines.append(f"a note in your own words can follow as a comment: `on delivered  # {word}`")
    return make("non-ascii-text", span, text=_clip(word, 20), label="not a name or keyword",
                help=tuple(help_lines), fix=fix)


def _other_character(spot: Spot) -> Diagnostic:
    char = spot.char()
    shown = repr(char)[1:-1] if not char.isprintable() or char.isspace() else char
    return make("unexpected-character", spot.span(spot.pos), char=shown or "end of file",
                label="not allowed here", help=(spot.help(),) if spot.expected else ())


#: Character recognisers, most specific first; the last always answers.
CHARACTER_RULES: tuple[Recogniser, ...] = (
    _unclosed_string,
    _single_quotes,
    _fullwidth_character,
    _operator_character,
    _separator_character,
    _number_word,
    _currency_sign,
    _non_ascii_text,
    _other_character,
)


# --------------------------------------------------------------------------- full-width input


def _ascii_for(char: str) -> str | None:
    """The ASCII character a full-width or typographic one stands for, if any."""
    if not char or char.isascii():
        return None
    if char in FULLWIDTH:
        return FULLWIDTH[char]
    folded = unicodedata.normalize("NFKC", char)
    return folded if folded != char and folded.isascii() and folded.isprintable() else None


def _fullwidth(source: SourceFile, text: str, pos: int) -> Diagnostic:
    """A full-width character at `pos`; the fix converts every one on the rest of the line."""
    char = text[pos]
    ascii_char = _ascii_for(char)
    span = Span(source, pos, pos + 1)
    closing = QUOTE_PAIRS.get(char)
    if closing is not None:
        end = text.find(closing, pos + 1, _line_end(text, pos))
        if end != -1:
            span = Span(source, pos, end + 1)
    end, replacement, count = _ascii_line(text, pos)
    description = f"replace with `{ascii_char}`" if count == 1 else "use ASCII"
    help_lines = [KEYBOARD_HELP]
    if count > 1:
        help_lines.append(f"the fix replaces all {count} full-width characters on this line")
    return make("fullwidth-character", span, char=char, ascii=ascii_char, label=f"use `{ascii_char}`",
                help=tuple(help_lines), fix=Fix(Span(source, pos, end), replacement, description))


def _ascii_line(text: str, pos: int) -> tuple[int, str, int]:
    """The rest of the line from `pos` with full-width punctuation made ASCII (texts untouched).

    Returns the end offset of the part to replace, its replacement and how many characters changed.
    """
    line_end = _line_end(text, pos)
    out = ""
    i, last, kept, count = pos, pos, 0, 0
    while i < line_end and text[i] != "#":
        char = text[i]
        closing = QUOTE_PAIRS.get(char)
        close = text.find(closing, i + 1, line_end) if closing else -1
        if char == '"':  # an ASCII text: copied as it is
            close = text.find('"', i + 1, line_end)
            close = line_end - 1 if close == -1 else close
            out += text[i : close + 1]
            i = close + 1
        elif close != -1:  # a text in typographic quotes: the quotes change, the words do not
            out += '"' + text[i + 1 : close].replace('"', '\\"') + '"'
            i, count = close + 1, count + 2
            last, kept = i, len(out)
        else:
            ascii_char = _ascii_for(char)
            out += char if ascii_char is None else ascii_char
            i += 1
            if ascii_char is not None:
                last, kept, count = i, len(out), count + 1
    return last, out[:kept], count


# ---------------------------------------------------------------------- durations and times


def _is_unit(word: str) -> bool:
    lowered = word.lower()
    return lowered in UNIT_WORDS or lowered in MONTH_WORDS


def _duration_spelling(source: SourceFile, start: int, end: int, number: str, unit_word: str) -> Diagnostic:
    span = Span(source, start, end)
    suggestion, exact, note = _as_duration(number, unit_word)
    fix = Fix(span, suggestion, f"write `{suggestion}`") if exact else None
    return make("duration-spelling", span, suggestion=suggestion,
                label=f"write `{suggestion}`" if exact else note, help=(UNITS_HELP,),
                fix=fix)


def _as_duration(number: str, unit_word: str) -> tuple[str, bool, str]:
    """(suggestion, whether it means exactly the same, a note when it does not)."""
    from .parser import MAX_NUMBER_DIGITS

    if len(number.partition(".")[0]) > MAX_NUMBER_DIGITS:
        return "48h", False, f"a number has at most {MAX_NUMBER_DIGITS} digits"
    lowered = unit_word.lower()
    try:
        amount = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the caller matched digits
        amount = Decimal(0)
    if lowered in MONTH_WORDS:
        return (f"{int(amount * 30)}d", False,
                "months differ in length: write days, for example `90d` for about three months")
    unit = UNIT_WORDS[lowered]
    if unit == "":
        minutes = max(1, -(-int(amount) // 60))
        return f"{minutes}m", False, "seconds are not supported: the smallest unit is `m`, minutes"
    if unit_word == "M":
        return f"{number}m", False, "`m` is minutes; for months write days, for example `90d`"
    if amount == amount.to_integral_value():
        return f"{int(amount)}{unit}", True, ""
    minutes = amount * MINUTES_PER[unit]
    for larger in ("w", "d", "h", "m"):
        count = minutes / MINUTES_PER[larger]
        if count == count.to_integral_value() and count > 0:
            return f"{int(count)}{larger}", True, ""
    return f"{max(1, round(minutes))}m", False, "fractions are not allowed: use a whole number of a smaller unit"


_TIMEISH = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?(?:[ \t]*([AaPp]\.?[Mm]\.?)(?![A-Za-z]))?")
_SEPARATOR = r"[ \t]*(?:and|to|until|till|-|~|–|—)[ \t]*"


def _as_time(written: str) -> str | None:
    match = _TIMEISH.fullmatch(written.strip())
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    suffix = (match.group(3) or "").lower().replace(".", "")
    if suffix:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def _time_spelling(spot: Spot) -> Diagnostic | None:
    """One diagnostic for a whole send window (`between 10 and 18`) or a single time (`at 9`)."""
    window = _window_at(spot)
    if window is not None:
        return window
    start = spot.context.prev.start if _am_pm_after_time(spot) else spot.pos
    match = _TIMEISH.match(spot.text, start)
    if match is None:
        return None
    suggestion = _as_time(match.group())
    if suggestion is None:
        return None
    span = spot.span(start, match.end())
    return make("time-spelling", span, suggestion=suggestion, label=f"write `{suggestion}`",
                help=("times of day run from `00:00` to `23:59`, on a 24-hour clock",),
                fix=Fix(span, suggestion, f"write `{suggestion}`"))


_WINDOW = re.compile(r"between[ \t]+(" + _TIMEISH.pattern + ")(" + _SEPARATOR + ")(" + _TIMEISH.pattern + ")")


def _window_at(spot: Spot) -> Diagnostic | None:
    """`between 10 and 18`: one diagnostic and one fix for the whole window.

    The span starts at the first part that needs changing, so `between 10:00 and 18` points at
    `18`; a time that is already written `HH:MM` is left alone (impossible ones such as `25:00`
    are the structure pass's business).
    """
    clause = spot.context.clause()
    if clause is None or clause.text != "between":
        return None
    match = _WINDOW.match(spot.text, clause.start)
    if match is None or not match.start(1) <= spot.pos < match.end():
        return None
    first, second = _time_or_none(match.group(1)), _time_or_none(match.group(6))
    if first is None or second is None:
        return None
    first_ok, joined_ok = first == match.group(1), match.group(5).strip() == "and"
    lo = match.start(6) if first_ok and joined_ok else match.start(1)
    suggestion = second if first_ok and joined_ok else f"{first} and {second}"
    span = spot.span(lo, match.end(6))
    return make("time-spelling", span, suggestion=suggestion, label=f"write `{suggestion}`",
                help=("times of day run from `00:00` to `23:59`, on a 24-hour clock",),
                fix=Fix(span, suggestion, f"write `{suggestion}`"))


def _time_or_none(written: str) -> str | None:
    """`written` itself when it already reads as a time (`9:00`, `25:00`), else its spelling as one."""
    if re.fullmatch(r"\d{1,2}:\d{2}", written):
        return written
    return _as_time(written)


# ---------------------------------------------------------------------------------- helpers


def _spaced(text: str, start: int, end: int, word: str) -> str:
    """`word` with a space on each side where it would otherwise touch the text around it."""
    before = " " if start > 0 and not text[start - 1].isspace() and word[0].isalpha() else ""
    after = " " if end < len(text) and not text[end].isspace() and word[-1].isalpha() else ""
    return before + word + after


def _first_on_line(text: str, pos: int) -> bool:
    return not text[text.rfind("\n", 0, pos) + 1 : pos].strip()


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end == -1 else end


def _next_word(text: str, pos: int) -> re.Match | None:
    return re.compile(r"[ \t]*([A-Za-z_][A-Za-z0-9_]*)").match(text, pos)


def _clip(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
