"""Copying a store into a new file with its events in time order: the layout ticks rely on.

A tick finds what is due by a range on `occurred_at`; DuckDB skips the row groups whose smallest
and largest `occurred_at` lie outside it, which only helps when the events are stored in about
the order they happened.  Events appended as they arrive are; a history loaded in one go, or the
generated demo data (written customer by customer), is not.  `copy_in_time_order` writes every
table of a store into a new store, the events tables sorted by time, the rest as they are.

A store of ten million orders holds about fifty million events, more than a sort and the
indexes' updates fit in memory in one statement.  So the copy drops the new store's secondary
indexes, copies each table in slices (the events by time, the others by row number), each in
its own transaction, and builds the indexes again at the end, in one pass over each table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import StoreError, open_store

#: Tables written sorted, and by what.
TIME_ORDER = {"order_events": "occurred_at, id", "customer_events": "occurred_at, id"}
#: Rows copied per statement (about; the events go by time slices of about this many rows).
SLICE_ROWS = 2_000_000


def copy_in_time_order(source: str | Path, target: str | Path,
                       progress: Callable[[str], None] | None = None, *,
                       memory_limit: str | None = None, threads: int | None = None) -> dict[str, int]:
    """Copy the store at `source` into a new store at `target`; return the rows copied per table.

    `memory_limit` and `threads` bound DuckDB while it copies (a large store's copy otherwise
    takes what the machine has: DuckDB's default limit is 80% of its memory).
    """
    if Path(target).exists():
        raise StoreError(f"{target}: already exists; the copy goes to a new file")
    con = open_store(target)
    try:
        if memory_limit is not None:
            con.execute(f"SET memory_limit = {_sql_string(memory_limit)}")
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        # ATTACH takes no parameters: the path goes in as a quoted SQL string literal.
        con.execute(f"ATTACH {_sql_string(str(source))} AS src (READ_ONLY)")
        present = {name for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'src' AND schema_name = 'main'").fetchall()}
        ours = [name for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name <> 'schema_migrations' ORDER BY table_name").fetchall()]
        indexes = _drop_secondary_indexes(con)
        copied = {}
        for table in ours:  # names from the catalog of a store we created
            if table not in present:
                continue
            if progress is not None:
                progress(table)
            if table in TIME_ORDER:
                _copy_by_time(con, table)
            else:
                _copy_by_row(con, table)
            copied[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        con.execute("DETACH src")
        for table, sql in indexes:
            if progress is not None:
                progress(f"index on {table}")
            con.execute(sql)
        con.execute("CHECKPOINT")
        return copied
    finally:
        con.close()


def _drop_secondary_indexes(con) -> list[tuple[str, str]]:
    """Drop the new store's indexes other than its keys; (table, CREATE statement) of each."""
    found = con.execute("SELECT index_name, table_name, sql FROM duckdb_indexes() "
                        "WHERE database_name = current_database() AND sql IS NOT NULL ORDER BY index_name").fetchall()
    for name, _, _ in found:
        con.execute(f"DROP INDEX {name}")  # names from the catalog of a store we created
    return [(table, sql) for _, table, sql in found]


def _copy_by_time(con, table: str) -> None:
    """Copy `table` sorted by time, a time slice of about `SLICE_ROWS` rows per statement."""
    (total,) = con.execute(f"SELECT count(*) FROM src.{table}").fetchone()
    if not total:
        return
    slices = max(1, -(-total // SLICE_ROWS))
    bounds = []
    if slices > 1:  # the quantiles must be constants in the SQL text: numbers made here
        fractions = ", ".join(repr(k / slices) for k in range(1, slices))
        (found,) = con.execute(f"SELECT quantile_disc(occurred_at, [{fractions}]) FROM src.{table}").fetchone()
        bounds = sorted(set(found))
    edges = [None, *bounds, None]
    for low, high in zip(edges, edges[1:]):
        where, params = [], []
        if low is not None:
            where.append("occurred_at >= ?")
            params.append(low)
        if high is not None:
            where.append("occurred_at < ?")
            params.append(high)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM src.{table}{clause} "
                    f"ORDER BY {TIME_ORDER[table]}", params)
    # Rows without a time are not in any slice: they go last.
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM src.{table} WHERE occurred_at IS NULL ORDER BY id")


def _copy_by_row(con, table: str) -> None:
    """Copy `table` as it is stored, `SLICE_ROWS` rows per statement."""
    (highest,) = con.execute(f"SELECT max(rowid) FROM src.{table}").fetchone()
    if highest is None:
        return
    for start in range(0, highest + 1, SLICE_ROWS):
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM src.{table} "
                    f"WHERE rowid >= ? AND rowid < ? ORDER BY rowid", [start, start + SLICE_ROWS])


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
