"""Copying a store into a new file with its events in time order: the layout ticks rely on.

A tick finds what is due by a range on `occurred_at`; DuckDB skips the row groups whose smallest
and largest `occurred_at` lie outside it, which only helps when the events are stored in about
the order they happened.  Events appended as they arrive are; a history loaded in one go, or the
generated demo data (written customer by customer), is not.  `copy_in_time_order` writes every
table of a store into a new store, the events tables sorted by time, the rest as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import StoreError, open_store

#: Tables written sorted, and by what.
TIME_ORDER = {"order_events": "occurred_at, id", "customer_events": "occurred_at, id"}


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
        copied = {}
        for table in ours:  # names from the catalog of a store we created
            if table not in present:
                continue
            if progress is not None:
                progress(table)
            order = f" ORDER BY {TIME_ORDER[table]}" if table in TIME_ORDER else ""
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM src.{table}{order}")
            copied[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        con.execute("DETACH src")
        con.execute("CHECKPOINT")
        return copied
    finally:
        con.close()


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
