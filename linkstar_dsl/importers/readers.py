"""Reading input files into numbered rows: CSV, JSON Lines, Parquet and JSON documents.

Every reader yields `RawRow`s: the line the row starts on (for Parquet, the row number, from 1)
and its values as a dict, or the problem that makes the row unreadable (a line that is not JSON,
a CSV row with too many fields, bytes that are not UTF-8).  Unreadable rows are reported like any
other rejected row; they do not stop the file.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import attrs
import duckdb

from .messages import Problem, UsageProblem

CSV_DELIMITERS = (",", ";", "\t")
PARQUET_BATCH = 10_000
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_float=Decimal)

csv.field_size_limit(16 * 1024 * 1024)


@attrs.frozen
class RawRow:
    line: int
    values: dict | None
    problem: Problem | None = None


def open_text(path: Path):
    """The file as text; bytes that are not UTF-8 survive as surrogates, found per row."""
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def is_clean(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ------------------------------------------------------------------------------------- CSV


def csv_header(path: Path) -> list[str]:
    with open_text(path) as handle:
        first = handle.readline()
        handle.seek(0)
        return next(csv.reader(handle, delimiter=_delimiter(first)), [])


def _delimiter(header_line: str) -> str:
    return max(CSV_DELIMITERS, key=header_line.count)


def read_csv(path: Path) -> Iterator[RawRow]:
    with open_text(path) as handle:
        delimiter = _delimiter(handle.readline())
        handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        header = [name.strip() for name in next(reader, [])]
        previous_end = reader.line_num
        for fields in reader:
            line, previous_end = previous_end + 1, reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            yield _csv_row(line, header, fields)


def _csv_row(line: int, header: list[str], fields: list[str]) -> RawRow:
    if not is_clean("".join(fields)):
        return RawRow(line, None, Problem("bad-encoding"))
    if len(fields) != len(header):
        return RawRow(line, None, Problem("field-count", None, {"count": len(fields), "expected": len(header)}))
    return RawRow(line, dict(zip(header, fields, strict=True)))


# ------------------------------------------------------------------------------ JSON Lines


def read_jsonl(path: Path) -> Iterator[RawRow]:
    with open_text(path) as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield _jsonl_row(number, text)


def _jsonl_row(line: int, text: str) -> RawRow:
    if not is_clean(text):
        return RawRow(line, None, Problem("bad-encoding"))
    try:
        value = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        return RawRow(line, None, Problem("bad-json-line", None, {"reason": exc.msg}))
    if not isinstance(value, dict):
        return RawRow(line, None, Problem("not-an-object", None, {"kind": _json_kind(value)}))
    return RawRow(line, value)


def _json_kind(value) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def first_json_line(path: Path) -> dict | None:
    """The first non-blank line of a file when it is a whole JSON object (JSON Lines), else None."""
    with open_text(path) as handle:
        for text in handle:
            if text.strip():
                try:
                    value = json.loads(text, parse_float=Decimal)
                except json.JSONDecodeError:
                    return None
                return value if isinstance(value, dict) else None
    return None


# --------------------------------------------------------------------------------- Parquet


def parquet_columns(path: Path) -> list[str]:
    with _parquet_connection() as con:
        try:
            described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
            return [row[0] for row in described]
        except duckdb.Error as exc:
            raise UsageProblem("parquet-unreadable", file=str(path), reason=str(exc).splitlines()[0]) from None


def read_parquet(path: Path) -> Iterator[RawRow]:
    with _parquet_connection() as con:
        result = con.execute("SELECT * FROM read_parquet(?)", [str(path)])
        names = [d[0] for d in result.description]
        number = 0
        while batch := result.fetchmany(PARQUET_BATCH):
            for values in batch:
                number += 1
                yield RawRow(number, dict(zip(names, values, strict=True)))


def _parquet_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


# --------------------------------------------------------------------------- JSON documents


def read_document_items(path: Path, paths: tuple[tuple[str, ...], ...], shape: str,
                        format_name: str) -> Iterator[RawRow]:
    """The objects of a JSON document's list: the top-level list, or the one under one of `paths`
    (`("payload", "Orders")`); a single object under the path counts as a list of one."""
    text = path.read_text(encoding="utf-8-sig")
    lines = _LineCounter(text)
    try:
        for start, value in _items(text, _skip(text, 0), paths, shape, format_name, path):
            if isinstance(value, dict):
                yield RawRow(lines.at(start), value)
            else:
                yield RawRow(lines.at(start), None, Problem("not-an-object", None, {"kind": _json_kind(value)}))
    except json.JSONDecodeError as exc:
        raise UsageProblem("bad-document", file=str(path), line=exc.lineno, reason=exc.msg) from None


def check_document(path: Path) -> None:
    """Raise `UsageProblem` unless the file is one well-formed JSON document (UTF-8)."""
    try:
        json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UsageProblem("unreadable", file=str(path), reason=f"not UTF-8 text at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise UsageProblem("bad-document", file=str(path), line=exc.lineno, reason=exc.msg) from None


class _LineCounter:
    def __init__(self, text: str) -> None:
        self.text, self.position, self.line = text, 0, 1

    def at(self, position: int) -> int:
        self.line += self.text.count("\n", self.position, position)
        self.position = position
        return self.line


def _skip(text: str, position: int) -> int:
    return _WHITESPACE.match(text, position).end()


def _items(text, position, paths, shape, format_name, path):
    if text.startswith("[", position):
        yield from _array(text, position)
        return
    if not paths or not text.startswith("{", position):
        raise UsageProblem("document-shape", file=str(path), format=format_name, shape=shape)
    if any(not p for p in paths):
        yield position, _DECODER.raw_decode(text, position)[0]
        return
    for key, value_position in _members(text, position):
        deeper = tuple(p[1:] for p in paths if p[0] == key)
        if deeper:
            yield from _items(text, value_position, deeper, shape, format_name, path)
            return
    raise UsageProblem("document-shape", file=str(path), format=format_name, shape=shape)


def _array(text: str, position: int):
    position = _skip(text, position + 1)
    if text.startswith("]", position):
        return
    while True:
        value, end = _DECODER.raw_decode(text, position)
        yield position, value
        position = _skip(text, end)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
        elif text.startswith("]", position):
            return
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, position)


def _members(text: str, position: int):
    """(key, position of its value) of each member of the object at `position`."""
    position = _skip(text, position + 1)
    while not text.startswith("}", position):
        key, end = _DECODER.raw_decode(text, position)
        position = _skip(text, end)
        if not isinstance(key, str) or not text.startswith(":", position):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, position)
        position = _skip(text, position + 1)
        yield key, position
        _, end = _DECODER.raw_decode(text, position)
        position = _skip(text, end)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
