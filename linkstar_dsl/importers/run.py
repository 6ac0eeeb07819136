"""Importing files into a store: check everything first, then one transaction per file.

`import_paths` finds the files, opens the store, checks every option and every file's columns
before anything is written (a `UsageProblem` stops the run with nothing imported), then imports
the files one by one.  A file is imported whole or not at all: its records are staged and merged
inside one transaction, committed at the end (or rolled back under `--dry-run`, after counting
what would have happened), so a crash or an interrupt mid-file leaves the store as it was.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from ..store import StoreError, current_version, latest_version, open_store
from . import amazon, readers, shopify
from .canonical import CanonicalConverter
from .dates import DateReader
from .messages import Problem, UsageProblem
from .options import ImportOptions, Plan, plan_files
from .records import Record
from .report import FileOutcome
from .sources import Source, find_sources
from .staging import StagedFile
from .tables import store_tables

BATCH_SIZE = 50_000


def import_paths(paths: list[str], db: str, options: ImportOptions,
                 on_file: Callable[[FileOutcome], None] | None = None,
                 on_rows: Callable[[int], None] | None = None) -> list[FileOutcome]:
    """Import `paths` into the store at `db`; the outcome of each file, in import order.

    `on_rows(n)`, when given, is called as rows are read (for a progress bar)."""
    sources = find_sources(paths, options.format, options.table)
    con = _open(db, options.dry_run)
    try:
        plan = plan_files(sources, store_tables(con), options)
        outcomes = []
        for source in sources:
            outcome = import_file(con, plan, source, options, on_rows=on_rows)
            outcomes.append(outcome)
            if on_file is not None:
                on_file(outcome)
        return outcomes
    finally:
        con.close()


def _open(db: str, dry_run: bool) -> duckdb.DuckDBPyConnection:
    try:
        if dry_run and not Path(db).exists():
            return open_store(":memory:")
        if dry_run:
            _refuse_old_schema(db)
        return open_store(db)
    except StoreError as exc:
        raise UsageProblem("store", reason=str(exc)) from None


def _refuse_old_schema(db: str) -> None:
    """A dry run must not migrate: an older database is refused instead."""
    try:
        con = duckdb.connect(db, read_only=True)
    except duckdb.Error as exc:
        raise StoreError(f"{db}: cannot open the database ({str(exc).splitlines()[0]})") from None
    try:
        have = current_version(con)
    finally:
        con.close()
    if have < latest_version():
        raise UsageProblem("dry-run-old-schema", db=db, have=have)


def import_file(con: duckdb.DuckDBPyConnection, plan: Plan, source: Source, options: ImportOptions,
                batch_size: int | None = None, on_rows: Callable[[int], None] | None = None) -> FileOutcome:
    """Import one file in one transaction (rolled back under `--dry-run` or on any exception)."""
    started = time.perf_counter()
    outcome = FileOutcome(label=source.label, format=source.format, table=source.table, dry_run=options.dry_run)
    converter = _converter(plan, source)
    with tempfile.TemporaryDirectory(prefix="linkstar-import-") as workdir:
        staged = StagedFile(con, plan.tables, source.table, options.on_conflict, Path(workdir))
        con.execute("BEGIN TRANSACTION")
        try:
            _stage_records(staged, converter, _rows(source), outcome, batch_size or BATCH_SIZE, on_rows)
            outcome.absorb(staged.merge())
            con.execute("ROLLBACK" if options.dry_run else "COMMIT")
        except BaseException:
            staged.close()
            con.execute("ROLLBACK")
            raise
    outcome.ignored_columns = list(getattr(converter, "ignored", {}))
    outcome.seconds = time.perf_counter() - started
    return outcome


def _stage_records(staged: StagedFile, converter, rows: Iterator, outcome: FileOutcome,
                   batch_size: int, on_rows: Callable[[int], None] | None = None) -> None:
    waiting = 0
    for raw in rows:
        record = _convert(converter, raw)
        outcome.read += 1
        if on_rows is not None and outcome.read % 1000 == 0:
            on_rows(1000)
        outcome.warnings.extend((record.line, w) for w in record.warnings)
        if record.problem is not None:
            outcome.problems.append((record.line, record.problem))
            continue
        staged.add(record)
        waiting += 1
        if waiting >= batch_size:
            staged.load_batch()
            waiting = 0


def _convert(converter, raw: readers.RawRow) -> Record:
    """The converter's record; a row whose nesting or types it cannot follow is rejected, not fatal."""
    try:
        return converter.convert(raw)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Record.rejected(raw.line, Problem("unexpected-shape", None, {"reason": reason}))


def _converter(plan: Plan, source: Source):
    if source.format == "shopify":
        return shopify.ShopifyConverter(plan.tables, DateReader())
    if source.format == "amazon":
        return amazon.AmazonConverter(plan.tables, DateReader())
    table = plan.tables[source.table]
    return CanonicalConverter(table, plan.tables, plan.mapping_for(source.table), plan.dates)


def _rows(source: Source) -> Iterator[readers.RawRow]:
    if source.format == "csv":
        return readers.read_csv(source.path)
    if source.format == "parquet":
        return readers.read_parquet(source.path)
    if not source.document:
        return readers.read_jsonl(source.path)
    module = shopify if source.format == "shopify" else amazon
    return readers.read_document_items(source.path, module.DOCUMENT_PATHS, module.DOCUMENT_SHAPE, source.format)
