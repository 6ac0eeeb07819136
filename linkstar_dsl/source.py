"""Source text and positions.

A `SourceFile` owns the text of one input and answers "which line and column is this offset".
A `Span` is a half-open range of character offsets into one `SourceFile`; lines and columns are
1-based and counted in characters (code points), offsets are 0-based, ends are exclusive.  Spans
compare equal regardless of position so that two ASTs of the same program compare equal however
they were laid out.
"""

from __future__ import annotations

from bisect import bisect_right


class SourceFile:
    """The text of one input, with a table of line starts for offset → line/column lookups."""

    __slots__ = ("name", "text", "_line_starts")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._line_starts: list[int] | None = None

    @property
    def line_starts(self) -> list[int]:
        """Offsets where lines start; found on first use, so text refused unread costs nothing."""
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i != -1:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._line_starts = starts
        return self._line_starts

    def __repr__(self) -> str:
        return f"SourceFile({self.name!r})"

    @property
    def line_count(self) -> int:
        return len(self.line_starts)

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a 0-based character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1

    def offset(self, line: int, column: int) -> int:
        """0-based offset of a 1-based (line, column)."""
        return self.line_starts[line - 1] + column - 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its line break."""
        start = self.line_starts[line - 1]
        end = self.line_starts[line] - 1 if line < len(self.line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def span(self, start: int, end: int) -> Span:
        return Span(self, start, end)


class Span:
    """A half-open range [start, end) of character offsets in one source file.

    A plain slotted class rather than an attrs one: the parser makes one per token, and this is
    the cheapest object Python offers.  Treat it as immutable.
    """

    __slots__ = ("source", "start", "end")

    def __init__(self, source: SourceFile, start: int, end: int) -> None:
        self.source = source
        self.start = start
        self.end = end

    # Spans never take part in AST equality: position is layout, not meaning.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Span)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"<{self.file}:{self.start_line}:{self.start_column}-{self.end_line}:{self.end_column}>"

    @property
    def file(self) -> str:
        return self.source.name

    @property
    def start_line(self) -> int:
        return self.source.line_col(self.start)[0]

    @property
    def start_column(self) -> int:
        return self.source.line_col(self.start)[1]

    @property
    def end_line(self) -> int:
        return self.source.line_col(self.end)[0]

    @property
    def end_column(self) -> int:
        return self.source.line_col(self.end)[1]

    @property
    def text(self) -> str:
        return self.source.text[self.start : self.end]

    def to(self, other: Span) -> Span:
        """The smallest span covering both."""
        return Span(self.source, min(self.start, other.start), max(self.end, other.end))
