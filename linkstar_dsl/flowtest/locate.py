"""Reading a TOML test file while keeping the line each table and key was written on.

`tomllib` gives values without positions, so the lines are found by a light scan of the text:
table headers (`[[test]]`, `[[test.expect]]`) and `key = value` lines, in document order, which is
also the order in which TOML fills arrays of tables.  Positions are addressed by paths such as
`("test", 0, "expect", 2, "send")`; a path not found falls back to its nearest known parent.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from .values import TestFileError

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


class Locator:
    """Line numbers of a TOML document's tables and keys."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple, int] = {}
        self._scan(text.splitlines())

    def line(self, *path) -> int | None:
        """The line of `path`, else of the first thing written inside it, else of its parent."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            inside = [line for p, line in self.lines.items() if p[:len(path)] == path]
            if inside:
                return min(inside)
            path = path[:-1]
        return None

    def _scan(self, lines: list[str]) -> None:
        counts: dict[tuple, int] = {}
        latest: dict[tuple, tuple] = {}  # a header's names → the concrete path of its last instance
        table: tuple = ()
        in_string = None  # the quote of a multi-line string being skipped
        array_key: tuple | None = None  # a multi-line array value: the key it belongs to
        depth, items = 0, 0
        for number, line in enumerate(lines, start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            if array_key is not None:
                if depth == 1 and line.lstrip().startswith("{"):
                    self.lines.setdefault(array_key + (items,), number)
                    items += 1
                depth += _depth_change(line)
                if depth <= 0:
                    array_key = None
                continue
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                names = tuple(_unquote(p) for p in _split_dotted(header.group(2)))
                parent = latest.get(names[:-1], names[:-1])
                if header.group(1) == "[[":
                    index = counts.get(parent + names[-1:], 0)
                    counts[parent + names[-1:]] = index + 1
                    table = parent + (names[-1], index)
                else:
                    table = parent + names[-1:]
                latest[names] = table
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if not key:
                continue
            path = table + tuple(_unquote(p) for p in _split_dotted(key.group(1)))
            self.lines.setdefault(path, number)
            rest = line[key.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_string = quote
            change = _depth_change(rest)
            if in_string is None and change > 0:
                array_key, depth, items = path, change, 0
                if rest.strip().startswith("[{") or rest.strip().startswith("[ {"):
                    self.lines.setdefault(path + (0,), number)
                    items = 1


def _split_dotted(text: str) -> list[str]:
    return [p.strip() for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text)]


def _unquote(part: str) -> str:
    part = part.strip()
    return part[1:-1] if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'" else part


def _depth_change(text: str) -> int:
    """Net opening brackets in `text`, outside strings and comments."""
    depth, quote = 0, None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


def read_document(path: Path) -> tuple[dict, Locator]:
    """The parsed TOML of `path` and its locator; any problem is a `TestFileError`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TestFileError(str(path), None, f"cannot read the file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise TestFileError(str(path), line, "the file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        line = int(position.group(1)) if position else None
        column = int(position.group(2)) if position else None
        message = _TOML_POSITION.sub("", message)
        raise TestFileError(str(path), line, f"not valid TOML: {message[:1].lower() + message[1:]}",
                            column) from None
    return data, Locator(text)
