"""A fresh in-memory store for one test: the real migrations, then the test's rows.

`Stores` hands out one connection for all the tests of a file, emptied between tests (cheaper
than migrating a new database each time, and just as empty).  Customers' order figures
(`last_order_at`, `order_count`, `lifetime_value`…) are computed from their orders with the
same statement `linkstar import` uses, unless the test wrote them.
"""

from __future__ import annotations

import duckdb

from ..importers.sql import CUSTOMER_FIGURES
from ..store import migrate
from .model import Fixtures

#: Tables in the order they are filled (the ledger holds the test's earlier sends).
ORDER = ("customers", "orders", "reviews", "carts", "order_events", "customer_events", "consents",
         "suppressions", "ledger")


class Stores:
    def __init__(self) -> None:
        self.con: duckdb.DuckDBPyConnection | None = None

    def fresh(self, fixtures: Fixtures) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            self.con = duckdb.connect(":memory:")
            self.con.execute("SET TimeZone = 'UTC'")
            migrate(self.con)
        else:
            tables = [name for (name,) in self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                "AND NOT temporary AND table_name <> 'schema_migrations'").fetchall()]
            for table in tables:  # names from the catalog, not from the test file
                self.con.execute(f'DELETE FROM "{table}"')
        fill(self.con, fixtures)
        return self.con

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None


def build_store(fixtures: Fixtures) -> duckdb.DuckDBPyConnection:
    """A new store holding `fixtures` (the caller closes it)."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    fill(con, fixtures)
    return con


def fill(con: duckdb.DuckDBPyConnection, fixtures: Fixtures) -> None:
    for table in ORDER:  # names from a fixed tuple; values travel as parameters
        rows = fixtures.rows.get(table, ())
        by_columns: dict[tuple[str, ...], list[list]] = {}
        for row in rows:
            columns = tuple(row)
            by_columns.setdefault(columns, []).append([row[c] for c in columns])
        for columns, values in by_columns.items():
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            con.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)
    touched = [cid for cid, given in fixtures.figures_given.items() if not given]
    if touched:
        con.execute("CREATE TEMP TABLE import_touched (customer_id VARCHAR)")
        con.executemany("INSERT INTO import_touched VALUES (?)", [[cid] for cid in touched])
        con.execute(CUSTOMER_FIGURES)
        con.execute("DROP TABLE import_touched")
