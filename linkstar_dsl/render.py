"""Diagnostics as text for people: location, message, the source line, carets, help.

The caret line is measured in display cells, not characters, so it stays under the right text
when the line holds wide CJK characters or tabs.  Colour is optional and off unless asked for.
"""

from __future__ import annotations

from wcwidth import wcwidth

from .diagnostics import Diagnostic, Severity

TAB_WIDTH = 4

#: Source lines wider than this (in display cells) are shown as a window around the span.
MAX_SNIPPET_WIDTH = 120

_COLOURS = {Severity.ERROR: "\x1b[1;31m", Severity.WARNING: "\x1b[1;33m", Severity.NOTE: "\x1b[1;36m"}
_BOLD, _BLUE, _RESET = "\x1b[1m", "\x1b[1;34m", "\x1b[0m"


def cell_width(char: str, column: int = 0) -> int:
    """Display cells taken by one character starting at display `column`."""
    if char == "\t":
        return TAB_WIDTH - column % TAB_WIDTH
    width = wcwidth(char)
    return max(width, 0)


def expand(line: str) -> str:
    """The line as displayed: tabs expanded, control characters shown as `?`."""
    out, col = [], 0
    for ch in line:
        if ch == "\t":
            n = cell_width(ch, col)
            out.append(" " * n)
            col += n
        elif wcwidth(ch) < 0:
            out.append("?")
            col += 1
        else:
            out.append(ch)
            col += cell_width(ch, col)
    return "".join(out)


def display_columns(line: str, start: int, end: int) -> tuple[int, int]:
    """Display-cell offsets of character columns [start, end) (0-based) within `line`."""
    col = 0
    lo = hi = None
    for i, ch in enumerate(line):
        if i == start:
            lo = col
        if i == end:
            hi = col
        col += cell_width(ch, col) if wcwidth(ch) >= 0 or ch == "\t" else 1
    if lo is None:
        lo = col + max(0, start - len(line))
    if hi is None:
        hi = col
    return lo, max(hi, lo + 1)


def render(diagnostic: Diagnostic, *, color: bool = False) -> str:
    """One diagnostic in the `path:line:col: severity[code]: message` layout with a snippet."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    sev = diagnostic.severity
    head = f"{sev}[{diagnostic.code}]"
    span = diagnostic.span
    if span is None:
        return f"{paint(head, _COLOURS[sev])}: {paint(diagnostic.message, _BOLD)}"
    lines = [f"{span.file}:{span.start_line}:{span.start_column}: {paint(head, _COLOURS[sev])}: "
             f"{paint(diagnostic.message, _BOLD)}"]
    line_no = span.start_line
    text = span.source.line_text(line_no)
    gutter = " " * len(str(line_no))
    start_col = span.start_column - 1
    end_col = span.end_column - 1 if span.end_line == line_no else len(text)
    text, start_col, end_col = _clip_line(text, start_col, end_col)
    lo, hi = display_columns(text, start_col, max(end_col, start_col + 1))
    carets = "^" * (hi - lo)
    label = f" {diagnostic.label}" if diagnostic.label else ""
    if span.end_line > line_no:
        label = (label + " …").rstrip() if label else " …"
    bar = paint("|", _BLUE)
    lines.append(f"{gutter} {bar}")
    lines.append(f"{paint(str(line_no), _BLUE)} {bar} {expand(text)}".rstrip())
    lines.append(f"{gutter} {bar} {' ' * lo}{paint(carets + label, _COLOURS[sev])}")
    for extra in diagnostic.labels:
        lines.append(f"{gutter} = note: {extra.text} ({extra.span.file}:{extra.span.start_line}:"
                     f"{extra.span.start_column})")
    for line in diagnostic.help:
        lines.append(f"{gutter} = {paint('help', _BOLD)}: {line}")
    return "\n".join(lines)


def _clip_line(text: str, start: int, end: int) -> tuple[str, int, int]:
    """A window of a very long line around [start, end), with `…` where text was cut."""
    if len(text) <= MAX_SNIPPET_WIDTH // 2 or len(expand(text)) <= MAX_SNIPPET_WIDTH:
        return text, start, end
    keep = MAX_SNIPPET_WIDTH // 2
    lo = max(0, start - keep // 2)
    hi = min(len(text), max(end, start + 1) + keep // 2)
    if hi - lo > MAX_SNIPPET_WIDTH:  # a very long span: show its beginning
        hi = lo + MAX_SNIPPET_WIDTH
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(text) else ""
    shift = lo - len(prefix)
    return prefix + text[lo:hi] + suffix, start - shift, min(end, hi) - shift


def summary(files: int, errors: int, warnings: int) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return f"{plural(files, 'file')} checked: {plural(errors, 'error')}, {plural(warnings, 'warning')}"
