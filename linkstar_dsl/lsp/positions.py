"""Character offsets ↔ LSP positions.

Our spans are offsets into a Python `str` (code points).  LSP positions are a line and a
character counted in the code units of the encoding negotiated at initialisation: UTF-16 unless
the client offers another, so an emoji is two characters and a CJK ideograph one.  Lines end at
`\\n`, `\\r\\n` or a lone `\\r`, as LSP says.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from lsprotocol import types as lsp

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def units(text: str, encoding: str = UTF16) -> int:
    """How many code units `text` takes in `encoding`."""
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


class LineIndex:
    """Positions of one text in one encoding."""

    def __init__(self, text: str, encoding: str = UTF16) -> None:
        self.text = text
        self.encoding = str(getattr(encoding, "value", encoding) or UTF16)
        self._starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]

    def _line_end(self, line: int) -> int:
        """Offset just before the line break of `line` (0-based), or the end of the text."""
        if line + 1 < len(self._starts):
            end = self._starts[line + 1] - 1
            if end > self._starts[line] and self.text[end] == "\n" and self.text[end - 1] == "\r":
                end -= 1
            return end
        return len(self.text)

    def position(self, offset: int) -> lsp.Position:
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self._starts, offset) - 1
        # An offset between `\r` and `\n` belongs to the end of its line.
        offset = min(offset, self._line_end(line))
        start = self._starts[line]
        return lsp.Position(line=line, character=units(self.text[start:offset], self.encoding))

    def offset(self, position: lsp.Position) -> int:
        """The offset of a position; past the end of a line means the end of that line."""
        if position.line < 0:
            return 0
        if position.line >= len(self._starts):
            return len(self.text)
        start = self._starts[position.line]
        end = self._line_end(position.line)
        wanted = max(0, position.character)
        if self.encoding == UTF32:
            return min(start + wanted, end)
        count = 0
        for i in range(start, end):
            if count >= wanted:
                return i
            count += units(self.text[i], self.encoding)
        return end

    def range(self, start: int, end: int) -> lsp.Range:
        return lsp.Range(start=self.position(start), end=self.position(end))

    @property
    def end(self) -> lsp.Position:
        return self.position(len(self.text))
