"""Which files to import, in which format, into which table.

A folder stands for every file inside it (recursively, hidden files aside) whose extension is
recognised: `.csv`, `.tsv`, `.parquet`, `.jsonl`, `.ndjson`, `.json`.  With `--format auto` the
format comes from the extension and, for JSON, from the content: orders with `AmazonOrderId` are
Amazon's, orders with `line_items`, `financial_status` or `total_price` are Shopify's, documents
wrapping them (`{"payload": {"Orders": …}}`, `{"orders": …}`) likewise; other JSON Lines are
canonical.  A canonical file's table is `--table`, else the part of its name before the first
dot (`orders.csv`, `order_events.2024-05.jsonl`).  Files are imported table by table in the
store's load order (customers first), each in its own transaction.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from ..store import DATA_TABLES
from . import FORMATS, amazon, shopify
from .messages import UsageProblem
from .readers import check_document, first_json_line

EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
              ".jsonl": "json", ".ndjson": "json", ".json": "json"}
EXPORTS = ("shopify", "amazon")


@attrs.frozen
class Source:
    path: Path
    label: str
    format: str          # csv | parquet | jsonl | shopify | amazon
    table: str           # the table of the primary rows
    document: bool = False   # an export as one JSON document rather than JSON Lines

    @property
    def is_export(self) -> bool:
        return self.format in EXPORTS


def find_sources(paths: list[str], format_name: str = "auto", table: str | None = None) -> list[Source]:
    files = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files.extend((child, str(path / child.relative_to(path))) for child in _folder_files(path))
        else:
            files.append((path, given))
    if not files:
        raise UsageProblem("no-files", paths=", ".join(paths))
    sources = [_source(path, label, format_name, table) for path, label in files]
    return sorted(sources, key=lambda s: DATA_TABLES.index(s.table))


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _source(path: Path, label: str, format_name: str, table: str | None) -> Source:
    if not path.is_file():
        raise UsageProblem("unreadable", file=label, reason="no such file")
    detected = format_name if format_name != "auto" else EXTENSIONS.get(path.suffix.lower())
    if detected is None:
        raise UsageProblem("unknown-format", file=label, formats=", ".join(FORMATS[1:]))
    if detected in ("json", "jsonl", *EXPORTS):
        return _json_source(path, label, detected, table)
    return Source(path, label, detected, _table_of(path, label, table))


def _json_source(path: Path, label: str, wanted: str, table: str | None) -> Source:
    first = first_json_line(path)
    if first is not None and not _is_wrapper(first):
        kind = _kind_of_order(first)
        if wanted in EXPORTS or (wanted == "json" and kind):
            return Source(path, label, wanted if wanted in EXPORTS else kind, "orders")
        return Source(path, label, "jsonl", _table_of(path, label, table))
    if wanted == "jsonl":
        return Source(path, label, "jsonl", _table_of(path, label, table))
    check_document(path)
    kind = wanted if wanted in EXPORTS else _kind_of_document(path)
    if kind is None:
        raise UsageProblem("unknown-format", file=label, formats=", ".join(FORMATS[1:]))
    return Source(path, label, kind, "orders", document=True)


def _is_wrapper(value: dict) -> bool:
    return any(key in value for key in ("orders", "order", "payload", "Orders"))


def _kind_of_order(order) -> str | None:
    if not isinstance(order, dict):
        return None
    if amazon.looks_like_amazon(order):
        return "amazon"
    if shopify.looks_like_shopify(order):
        return "shopify"
    return None


def _kind_of_document(path: Path) -> str | None:
    document = json.loads(path.read_text(encoding="utf-8-sig"))
    if isinstance(document, dict):
        if "payload" in document or "Orders" in document:
            return "amazon"
        if "orders" in document or "order" in document:
            return "shopify"
        return None
    if isinstance(document, list) and document:
        return _kind_of_order(document[0])
    return None


def _table_of(path: Path, label: str, table: str | None) -> str:
    if table is not None:
        return table
    stem = path.name.split(".")[0]
    if stem not in DATA_TABLES:
        raise UsageProblem("unknown-table", file=label, tables=", ".join(DATA_TABLES))
    return stem
