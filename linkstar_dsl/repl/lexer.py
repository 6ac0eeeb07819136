"""Syntax highlighting: the grammar's own terminals, as a prompt_toolkit lexer.

The token patterns are read off the Lark parser (`DURATION`, `MONEY`, `STRING`, the keywords …),
so the colours follow the grammar.  A line is cut into tokens on its own (no string or comment
spans lines), and input that does not parse yet still highlights: an unclosed string and stray
characters are tokens too.  Names are told apart by what the schema says they are: an event, a
record, a field, an enum value or a channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import attrs

#: Grammar terminals by the kind of token they make; the rest of the symbols are punctuation.
NUMBERS = ("MONEY", "DURATION", "PERCENT", "TIME", "DECIMAL", "INT")
OPERATORS = ("COMPARE", "SIGN", "MULOP")

STYLES = {
    "keyword": "bold ansiblue",
    "string": "ansigreen",
    "open-string": "ansigreen underline",
    "number": "ansicyan",
    "comment": "italic ansibrightblack",
    "event": "ansimagenta",
    "entity": "ansiyellow",
    "field": "ansiyellow",
    "constant": "ansicyan",
    "channel": "ansimagenta",
    "operator": "bold",
    "command": "bold ansigreen",
    "error": "ansired",
}


@attrs.frozen
class Token:
    kind: str
    text: str
    start: int


@cache
def _pattern() -> re.Pattern:
    from ..parser import lark_parser

    regexps = {t.name: t.pattern.to_regexp() for t in lark_parser().terminals}
    symbols = sorted((t for t in lark_parser().terminals
                      if t.pattern.type == "str" and not t.pattern.value.isalpha()),
                     key=lambda t: -len(t.pattern.value))
    parts = [f"(?P<comment>{regexps['COMMENT']})", f"(?P<string>{regexps['STRING']})",
             r'(?P<open_string>"(?:[^"\\\n]|\\.)*\\?$)']
    parts += [f"(?P<number_{name}>{regexps[name]})" for name in NUMBERS]
    parts += [r"(?P<bad_number>[0-9][A-Za-z0-9_.]*)", f"(?P<name>{regexps['NAME']})"]
    parts += [f"(?P<operator_{name}>{regexps[name]})" for name in OPERATORS]
    parts += [f"(?P<punct_{i}>{t.pattern.to_regexp()})" for i, t in enumerate(symbols)]
    parts += [r"(?P<space>\s+)", r"(?P<error>.)"]
    return re.compile("|".join(parts))


def tokenize(line: str) -> list[Token]:
    """Every token of one line, spaces included, so the texts add up to the line."""
    tokens = []
    for match in _pattern().finditer(line):
        group = match.lastgroup or "error"
        kind = group.split("_", 1)[0] if group != "open_string" else "open-string"
        kind = {"bad": "error"}.get(kind, kind)
        tokens.append(Token(kind, match.group(), match.start()))
    return tokens


@attrs.frozen
class Vocabulary:
    """What the names of the language stand for: read from the session's schema."""

    events: frozenset[str]
    entities: frozenset[str]
    constants: frozenset[str]
    channels: frozenset[str]

    @classmethod
    def of(cls, schema) -> Vocabulary:
        from ..schema import CHANNELS

        return cls(frozenset(schema.events), frozenset(schema.entities), frozenset(schema.enum_values),
                   frozenset(CHANNELS))


def classify(line: str, vocabulary: Vocabulary) -> list[tuple[str, str]]:
    """(kind, text) for each token of the line; names get their meaning, keywords their class."""
    from ..syntax_errors import keywords

    if line.lstrip().startswith(":"):
        head, _, rest = line.partition(" ")
        return [("command", head)] + ([("", " " + rest)] if _ or rest else [])
    out: list[tuple[str, str]] = []
    previous = None
    for token in tokenize(line):
        kind = token.kind
        if kind == "name":
            kind = _name_kind(token.text, previous, vocabulary, keywords())
        elif kind in ("punct", "space"):
            kind = ""
        out.append((kind, token.text))
        if token.kind != "space":
            previous = token
    return out


def _name_kind(word: str, previous: Token | None, vocabulary: Vocabulary, reserved: frozenset[str]) -> str:
    if word in reserved:
        return "keyword"
    if previous is not None and previous.text == ".":
        return "field"
    if word in vocabulary.entities:
        return "entity"
    if word in vocabulary.events:
        return "event"
    if word in vocabulary.channels:
        return "channel"
    if word in vocabulary.constants:
        return "constant"
    return ""


def prompt_lexer(schema_of: Callable[[], object]):
    """A prompt_toolkit lexer over the schema `schema_of()` returns when a line is drawn."""
    from prompt_toolkit.lexers import Lexer

    class FlowLexer(Lexer):
        def lex_document(self, document):
            vocabulary = Vocabulary.of(schema_of())
            lines = document.lines

            def line(number: int):
                if number >= len(lines):
                    return []
                tokens = classify(lines[number], vocabulary)
                return [(f"class:{kind}" if kind else "", text) for kind, text in tokens]

            return line

    return FlowLexer()


def prompt_style():
    from prompt_toolkit.styles import Style

    return Style.from_dict({**STYLES, "bottom-toolbar": "noreverse ansibrightblack", "prompt": "bold"})
