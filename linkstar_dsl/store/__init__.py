"""The DuckDB store: orders, customers, events, consents, suppressions and the send ledger.

`open_store(path)` opens (or creates) the database file and brings its schema up to date by
applying the numbered SQL files in `migrations/` that it has not seen yet (in number order, a
late one numbered below a version already applied included), each in its own transaction,
recording them in `schema_migrations`.  A database made by a newer version is refused rather
than touched.

A database whose last writer did not close it (a process killed, a write-ahead log left beside
the file) is checkpointed as soon as it is opened, before anything else reads or writes it: see
`recover_after_unclean_shutdown`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_PATH = "linkstar.duckdb"

log = logging.getLogger("linkstar.store")

#: Tables holding order data, in the order a bulk load should fill them.
DATA_TABLES = ("customers", "orders", "reviews", "carts", "order_events", "customer_events",
               "consents", "suppressions")


class StoreError(Exception):
    """A database that cannot be used: unreadable, locked, or from a newer version."""


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped, in order."""
    found = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        match = re.match(r"(\d+)_(.+)\.sql$", path.name)
        if match:
            found.append((int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    return found


def latest_version() -> int:
    return migrations()[-1][0]


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'").fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> list[int]:
    """Apply the missing migrations up to `target` (default: all); return the versions applied."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version BIGINT PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    have = current_version(con)
    newest = latest_version()
    if have > newest:
        raise StoreError(f"the database is at schema version {have}, newer than this linkstar ({newest}); "
                         "upgrade linkstar")
    # every missing version, not only those above the newest applied: migrations written side by
    # side may land out of order, and each is applied exactly once, in number order
    done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in migrations():
        if version in done or (target is not None and version > target):
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def open_store(path: str | Path = DEFAULT_PATH, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the store at `path`, migrated to the latest schema (unless read-only)."""
    log_left = not read_only and write_ahead_log_left(path)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise StoreError(f"{path}: cannot open the database ({_first_line(exc)})") from None
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        # A tick fetches a few thousand rows by key; fetching one row out of an FSST-compressed
        # block of strings costs about ten times as much as out of a plain or dictionary one.
        con.execute("SET disabled_compression_methods = 'fsst'")
        # with another connection of this process open, the log is that connection's own
        if log_left and _only_connection(con):
            recover_after_unclean_shutdown(con, path)
        try:
            migrate(con)
        except duckdb.Error as exc:
            con.close()
            raise StoreError(f"{path}: cannot bring the database up to date ({_first_line(exc)})") from None
    return con


def write_ahead_log(path: str | Path) -> Path:
    """The file DuckDB keeps a database's committed changes in until it checkpoints them."""
    return Path(f"{path}.wal")


def write_ahead_log_left(path: str | Path) -> bool:
    """Whether the database has changes in its write-ahead log (none once a writer closed it)."""
    if str(path) == ":memory:":
        return False
    wal = write_ahead_log(path)
    return wal.is_file() and wal.stat().st_size > 0


def _only_connection(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT count FROM duckdb_connection_count()").fetchone()[0] == 1


def recover_after_unclean_shutdown(con: duckdb.DuckDBPyConnection, path: str | Path) -> None:
    """Checkpoint a database whose write-ahead log its last writer left behind, at once.

    Opening the database replays the log, but DuckDB (up to 1.5 at least) only buffers the log's
    changes to an index until a statement needs that index.  A process that never touches an
    index and closes cleanly (`linkstar consent` after a killed runner, say) checkpoints on its way
    out without a statement to apply them, and writes the index as it was before the log: rows the
    table holds are missing from it, and the first update of such a row fails with "Failed to
    delete all rows from index", at every start after.  An explicit checkpoint applies the
    buffered changes before it writes the indexes, and leaves no log for a later close to mishandle.
    """
    log.warning("%s: a write-ahead log was left beside it (a process stopped before closing the store); "
                "writing its changes to the database, indexes included, before anything else", path)
    try:
        con.execute("CHECKPOINT")
    except duckdb.Error as exc:
        con.close()
        reason = _first_line(exc)
        raise StoreError(f"{path}: cannot recover the changes of an unfinished run ({reason})") from None


#: Up to how many distinct keys a hash join hands to the scan of its other side (DuckDB: 50).
LOOKUP_KEYS = 10_000


@contextmanager
def key_lookups(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Let the queries run inside read a table by a few thousand keys through its ART index.

    A hash join passes the keys of its smaller side to the scan of the other as a filter, and a
    scan filtered on an indexed column alone reads the rows from the index instead of the table.
    DuckDB does so for at most 50 keys; a tick looks up its due rows' orders, customers and events
    by some thousands.  The setting is global and makes scans without such an index slower, so it
    is raised only around these queries.
    """
    global _lookups_open, _lookups_before
    with _lookups_lock:  # several connections of one process may be inside at once
        if _lookups_open == 0:
            _lookups_before = con.execute("SELECT current_setting('dynamic_or_filter_threshold')").fetchone()[0]
            con.execute(f"SET dynamic_or_filter_threshold = {LOOKUP_KEYS}")
        _lookups_open += 1
    try:
        yield
    finally:
        with _lookups_lock:
            _lookups_open -= 1
            if _lookups_open == 0:
                con.execute(f"SET dynamic_or_filter_threshold = {int(_lookups_before)}")


_lookups_lock = threading.Lock()
_lookups_open = 0
_lookups_before = 50


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
