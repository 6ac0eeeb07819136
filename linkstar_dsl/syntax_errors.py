"""Lark's parse errors, translated into diagnostics an ops person can act on.

Lark reports terminal names (`VIA`, `DURATION`, `$END`); users type keywords.  This module spells
the expected set the way users write it, recognises the mistakes people actually make (a duration
without its unit, `48 hours`, a misspelt keyword, a channel list without `via`, a stray comma, an
unclosed quote, full-width punctuation or Chinese text outside quotes) and proposes the fix.
"""

from __future__ import annotations

import re
from functools import cache

from lark import Token, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .diagnostics import Diagnostic, Fix, make
from .source import SourceFile, Span
from .suggest import did_you_mean

#: Full-width and typographic characters that Chinese and Japanese keyboards produce, and the
#: ASCII character meant.
FULLWIDTH = {
    "，": ",", "、": ",", "：": ":", "；": ";", "（": "(", "）": ")", "“": '"', "”": '"',
    "「": '"', "」": '"', "＂": '"', "　": " ", "＋": "+", "－": "-", "．": ".", "。": ".",
    "％": "%", "＝": "=", "＞": ">", "＜": "<", "！": "!", "［": "[", "］": "]", "＃": "#",
    "＿": "_", "‘": "'", "’": "'",
}

#: Regex terminals, as a user would describe what goes there.
TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a quoted text such as "survey"',
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

#: Keywords that start a clause, in the order users meet them (used to order suggestions).
CLAUSE_ORDER = [
    "flow", "purpose", "market", "on", "where", "via", "send", "split", "between", "cooldown",
    "cap", "expire", "exit", "holdout", "once", "step", "policy", "import",
]

CHANNEL_WORDS = {"line", "email", "sms", "whatsapp", "amazon", "webhook", "smtp"}
UNIT_WORDS = {
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w",
    "y": "y", "yr": "y", "yrs": "y", "year": "y", "years": "y",
    "s": "", "sec": "", "secs": "", "second": "", "seconds": "",
}


@cache
def _keyword_of() -> dict[str, str]:
    """Terminal name → the literal keyword or symbol it stands for."""
    from .parser import lark_parser

    result = {}
    for term in lark_parser().terminals:
        if term.pattern.type == "str":
            result[term.name] = term.pattern.value
    return result


def spell(terminal: str) -> str:
    if terminal in TERMINAL_WORDS:
        return TERMINAL_WORDS[terminal]
    return f"`{_keyword_of().get(terminal, terminal.lower())}`"


def expected_words(expected) -> list[str]:
    """The expected terminals, spelled for users, clause keywords first in their usual order."""
    kw = _keyword_of()
    words = {kw.get(t, t) for t in expected if t in kw}
    ordered = [w for w in CLAUSE_ORDER if w in words]
    ordered += sorted(w for w in words if w not in CLAUSE_ORDER)
    spelled = [f"`{w}`" for w in ordered]
    spelled += [TERMINAL_WORDS[t] for t in sorted(expected) if t in TERMINAL_WORDS and t != "$END"]
    return spelled


def _expected_help(expected) -> str:
    words = expected_words(expected)
    if not words:
        return ""
    if len(words) > 12:
        words = words[:12] + ["…"]
    if len(words) == 1:
        return f"expected {words[0]}"
    return "expected one of: " + ", ".join(words)


def _describe_token(tok: Token) -> str:
    kw = _keyword_of()
    if tok.type == "$END":
        return "end of file"
    if tok.type in kw:
        value = kw[tok.type]
        return f"keyword `{value}`" if value.isalpha() else f"`{value}`"
    if tok.type == "NAME":
        return f"word `{tok}`"
    if tok.type == "STRING":
        return f"text {_clip(str(tok))}"
    if tok.type in ("INT", "DECIMAL"):
        return f"number `{tok}`"
    if tok.type == "DURATION":
        return f"duration `{tok}`"
    if tok.type == "PERCENT":
        return f"percentage `{tok}`"
    if tok.type == "TIME":
        return f"time `{tok}`"
    if tok.type == "MONEY":
        return f"amount `{tok}`"
    return f"`{tok}`"


def _clip(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- screening


def screen(source: SourceFile) -> Diagnostic | None:
    """Reject input that is not flow text at all (binary data) before parsing it."""
    nul = source.text.find("\x00")
    if nul != -1:
        return make("binary-file", Span(source, nul, nul + 1),
                    help=("`.flow` files are plain UTF-8 text; is this the right file?",))
    return None


# ------------------------------------------------------------------------- translation


def describe(error: UnexpectedInput, source: SourceFile, text: str) -> Diagnostic:
    """One diagnostic for one Lark error; `text` is the (possibly partly blanked) parsed text."""
    if isinstance(error, UnexpectedCharacters):
        return _characters(error, source, text)
    if isinstance(error, UnexpectedEOF):
        return _end(set(error.expected), source, text)
    if isinstance(error, UnexpectedToken):
        if error.token.type == "$END":
            return _end(set(error.expected), source, text)
        return _token(error, source, text)
    return make("unexpected-token", Span(source, 0, 0), found="input", context="")


def _end(expected: set, source: SourceFile, text: str) -> Diagnostic:
    stripped = _strip_comments(text).rstrip()
    end = len(stripped)
    last = re.search(r"\S+$", stripped)
    start = last.start() if last else end
    prev_word = last.group() if last else ""
    where = "a flow"
    if prev_word == ",":
        where = "a list"
    help_lines = [_expected_help(expected)]
    if prev_word.endswith(","):
        comma = start + len(prev_word) - 1
        return make("stray-comma", Span(source, comma, comma + 1), label="nothing follows this comma",
                    help=("remove the comma, or add the missing item after it",),
                    fix=Fix(Span(source, comma, comma + 1), "", "remove the comma"))
    return make("unexpected-end", Span(source, start, end), where=where,
                label=f"{_expected_help(expected) or 'more was expected'} after this",
                help=[h for h in help_lines if h])


def _strip_comments(text: str) -> str:
    return re.sub(r'("(?:[^"\\\n]|\\.)*")|#[^\n]*', lambda m: m.group(1) or "", text)


def _next_word(text: str, pos: int) -> re.Match | None:
    return re.compile(r"[ \t]*([A-Za-z_]+)").match(text, pos)


def _prev_significant(text: str, pos: int) -> int:
    """Offset of the last non-blank character before `pos`, ignoring comments (-1 if none)."""
    head = _strip_comments(text[:pos])
    head = head.rstrip()
    return len(head) - 1


def _token(error: UnexpectedToken, source: SourceFile, text: str) -> Diagnostic:
    tok: Token = error.token
    expected = set(error.accepts or error.expected)
    span = Span(source, tok.start_pos, tok.end_pos)
    kw = _keyword_of()
    value = str(tok)

    # `+ 48` / `+ 48 hours` / `+ 2 days`: a number where a duration belongs.
    if tok.type in ("INT", "DECIMAL") and "DURATION" in expected:
        return _duration(tok, source, text)
    if tok.type == "MONEY" and "DURATION" in expected:
        number = value.split()[0]
        return make("duration-unit", span, number=number, label="a duration is expected here",
                    help=(f"write `{number}h` for hours, `{number}d` for days, `{number}w` for weeks "
                          f"or `{number}m` for minutes",))

    # A stray comma: `via line,, email` or `via line, email,` followed by the next clause.
    if tok.type == "COMMA" and "NAME" in expected:
        return make("stray-comma", span, label="a name is expected before another comma",
                    help=("remove the extra comma",), fix=Fix(span, "", "remove the comma"))
    before = _prev_significant(text, tok.start_pos)
    if before >= 0 and text[before] == "," and tok.type != "COMMA":
        comma = Span(source, before, before + 1)
        return make("stray-comma", comma, label="nothing follows this comma",
                    help=("remove the comma, or add the missing item after it",),
                    fix=Fix(comma, "", "remove the comma"))

    # A word where keywords are expected.
    if tok.type == "NAME" or (tok.type in kw and kw[tok.type].isalpha()):
        word = value
        keywords = sorted({kw[t] for t in expected if t in kw and kw[t].isalpha()})
        if word in CHANNEL_WORDS and "VIA" in expected:
            return make("missing-via", span, label="a channel name",
                        help=(f"write `via {word}` to send through {word}",),
                        fix=Fix(Span(source, tok.start_pos, tok.start_pos), "via ", "insert `via`"))
        if tok.type == "NAME" and keywords:
            guess = _closest(word, keywords)
            if guess is not None:
                return make("unknown-keyword", span, word=word, where=" here",
                            label=f"did you mean `{guess}`?",
                            help=(f"did you mean `{guess}`?",),
                            fix=Fix(span, guess, f"replace with `{guess}`"))
        if tok.type in kw and expected & {"FLOW", "ON", "POLICY", "IMPORT"} and "WHERE" not in expected:
            if kw[tok.type] in CLAUSE_ORDER and kw[tok.type] not in ("flow", "on", "policy", "import"):
                return make("clause-outside-flow", span, word=kw[tok.type],
                            help=("a flow starts with `flow NAME` (then any clauses, then `on EVENT`) "
                                  "or directly with `on EVENT`; put this clause after one of them",))

    context = ""
    prev = _prev_token_text(text, tok.start_pos)
    if prev:
        context = f" after `{prev}`"
    help_lines = [h for h in (_expected_help(expected),) if h]
    return make("unexpected-token", span, found=_describe_token(tok), context=context,
                label=f"{_describe_token(tok)} is not allowed here", help=help_lines)


def _prev_token_text(text: str, pos: int) -> str:
    head = _strip_comments(text[:pos]).rstrip()
    m = re.search(r'("(?:[^"\\\n]|\\.)*"|[A-Za-z0-9_:%.]+|[^\sA-Za-z0-9_])$', head)
    return _clip(m.group(), 24) if m else ""


def _closest(word: str, candidates: list[str]) -> str | None:
    return did_you_mean(word, candidates)


def _duration(tok: Token, source: SourceFile, text: str) -> Diagnostic:
    number = str(tok)
    span = Span(source, tok.start_pos, tok.end_pos)
    nxt = _next_word(text, tok.end_pos)
    if nxt and nxt.group(1).lower() in UNIT_WORDS:
        unit = UNIT_WORDS[nxt.group(1).lower()]
        whole = Span(source, tok.start_pos, nxt.end(1))
        if unit and "." not in number:
            suggestion = f"{number}{unit}"
            return make("duration-spelling", whole, suggestion=suggestion, label=f"write `{suggestion}`",
                        help=("units: `m` minutes, `h` hours, `d` days, `w` weeks, `y` years (365 days)",),
                        fix=Fix(whole, suggestion, f"write `{suggestion}`"))
        minutes = _as_minutes(number, unit or "s")
        suggestion = f"{minutes}m" if minutes else "1m"
        return make("duration-spelling", whole, suggestion=suggestion, label="whole minutes, hours, days or weeks",
                    help=("durations are whole numbers of `m`, `h`, `d`, `w` or `y`; "
                          "seconds and fractions are not allowed",))
    if "." in number:
        return make("duration-spelling", span, suggestion=f"{_as_minutes(number, 'h')}m",
                    label="fractions are not allowed",
                    help=("write a whole number of a smaller unit, for example `90m` instead of `1.5h`",))
    return make("duration-unit", span, number=number, label="add a unit",
                help=(f"write `{number}h` for hours, `{number}d` for days, `{number}w` for weeks "
                      f"or `{number}m` for minutes",))


def _as_minutes(number: str, unit: str) -> int:
    per = {"m": 1, "h": 60, "d": 1440, "w": 10080, "y": 525600, "s": 1 / 60}[unit]
    try:
        return int(round(float(number) * per))
    except ValueError:
        return 0


def _characters(error: UnexpectedCharacters, source: SourceFile, text: str) -> Diagnostic:
    pos = error.pos_in_stream
    char = text[pos] if pos < len(text) else ""
    if char == '"':
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end == -1 else line_end
        end = len(text[pos:line_end].rstrip("\r")) + pos
        return make("unclosed-string", Span(source, pos, end), label="this text starts here",
                    help=('end the text with `"` on the same line; to put a quote inside a text, '
                          'write `\\"`',),
                    fix=Fix(Span(source, end, end), '"', "close the text"))
    if char == "'":
        m = re.compile(r"'[^'\n]*'").match(text, pos)
        end = m.end() if m else pos + 1
        fix = Fix(Span(source, pos, end), '"' + text[pos + 1 : end - 1] + '"', "use double quotes") if m else None
        return make("single-quotes", Span(source, pos, end), label="single quotes", fix=fix,
                    help=('write `"…"` instead of `\'…\'`',))
    if char in FULLWIDTH:
        ascii_char = FULLWIDTH[char]
        span = Span(source, pos, pos + 1)
        return make("fullwidth-character", span, char=char, ascii=ascii_char,
                    label=f"use `{ascii_char}`", fix=Fix(span, ascii_char, f"replace with `{ascii_char}`"),
                    help=("switch the keyboard to half-width (ASCII) input for keywords, names, "
                          "numbers and punctuation; any text can go inside quotes",))
    if ord(char) > 127 and not char.isspace():
        m = re.compile(r"[^\x00-\x7f\s]+").match(text, pos)
        word = m.group() if m else char
        span = Span(source, pos, pos + len(word))
        return make("non-ascii-text", span, text=_clip(word, 20), label="not a name or keyword",
                    help=('names and keywords use ASCII letters, digits and `_`; put free text inside '
                          'quotes `"…"` or after `#` as a comment',))
    if char.isspace() or not char:
        return make("unexpected-character", Span(source, pos, pos + 1), char=repr(char)[1:-1])
    span = Span(source, pos, pos + 1)
    return make("unexpected-character", span, char=char, label="not allowed here",
                help=[h for h in (_expected_help(error.allowed or ()),) if h])
