"""The text around a position, read without the parser, so it works in files that do not parse.

Strings and comments never span lines, so scanning from the start of a line is always in step
with the real tokens.
"""

from __future__ import annotations

import re

import attrs

#: A quoted text (maybe unclosed), a comment, a time, a number with the letters after it, a word,
#: a two-character operator, or any other single character.
_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|\d{1,2}:\d{2}|\d+(?:\.\d+)?[A-Za-z%]*|[A-Za-z_][A-Za-z0-9_]*'
    r"|==|!=|<=|>=|\.\.|\S"
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@attrs.frozen
class Token:
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def is_word(self) -> bool:
        return bool(_WORD.match(self.text))

    @property
    def is_string(self) -> bool:
        return self.text.startswith('"')

    @property
    def is_comment(self) -> bool:
        return self.text.startswith("#")

    @property
    def closed(self) -> bool:
        """For a string: whether it has its closing quote."""
        body = self.text[1:]
        return body.endswith('"') and not _escaped_end(body)


def _escaped_end(body: str) -> bool:
    backslashes = len(body[:-1]) - len(body[:-1].rstrip("\\"))
    return backslashes % 2 == 1


def line_start(text: str, offset: int) -> int:
    return max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1


def line_tokens(text: str, offset: int) -> list[Token]:
    """The tokens of the line holding `offset`, comments included."""
    start = line_start(text, offset)
    end = len(text)
    for stop in ("\n", "\r"):
        found = text.find(stop, offset)
        if found != -1:
            end = min(end, found)
    return [Token(m.group(), m.start()) for m in _TOKEN.finditer(text, start, end)]


def token_at(text: str, offset: int) -> Token | None:
    """The token under `offset`, or the one that ends right there (the cursor just after a word)."""
    touching = None
    for token in line_tokens(text, offset):
        if token.start <= offset < token.end:
            return token
        if token.end == offset:
            touching = token
    return touching


def tokens_before(text: str, offset: int, lookback: int = 20_000) -> list[Token]:
    """The significant tokens (comments left out) from a line well before `offset` up to it."""
    start = line_start(text, max(0, offset - lookback)) if offset > lookback else 0
    return [Token(m.group(), m.start()) for m in _TOKEN.finditer(text, start, offset)
            if not m.group().startswith("#")]
