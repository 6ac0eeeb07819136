"""Do the store's tables hold every field the flows read?

A file may declare fields of its own on the standard records (`entity order` / `carrier:
string?`). The checker accepts them, since the schema says they exist; whether the store holds
them is known only once a store is opened. `missing_fields` compares the fields the flows read
(in conditions and `send` parameters) with the columns of the store's tables, so `run`,
`simulate` and `explain` can refuse with one clear message instead of failing mid-tick.
"""

from __future__ import annotations

import attrs

from .. import ast

#: The records a flow reads when it runs, and the store's table of each.
TABLES = {"order": "orders", "customer": "customers", "review": "reviews", "cart": "carts"}


@attrs.frozen
class MissingField:
    flow: str
    record: str
    field: str
    table: str
    where: str  # file:line:column of the first place the flow reads it


def missing_fields(plans, con) -> list[MissingField]:
    """Fields the plans read that the store's tables (or views) do not have, in flow order."""
    columns: dict[str, set[str] | None] = {}
    found: list[MissingField] = []
    for plan in plans:
        seen: set[tuple[str, str]] = set()
        for path in ast.nodes(plan.flow, ast.Path):
            if len(path.parts) != 2 or path.parts[0].value not in TABLES:
                continue
            record, field = path.parts[0].value, path.parts[1].value
            table = TABLES[record]
            if table not in columns:
                columns[table] = _columns(con, table)
            if columns[table] is None or field in columns[table] or (record, field) in seen:
                continue
            seen.add((record, field))
            found.append(MissingField(plan.name, record, field, table, _place(path)))
    return found


def describe(missing: list[MissingField], db: str) -> str:
    """One line (the command line's usage errors are one line, SPEC §4.4) naming every missing field."""
    reads = "; ".join(f"flow `{m.flow}` reads `{m.record}.{m.field}` ({m.where}), but the table `{m.table}` "
                      f"has no column `{m.field}`" for m in missing)
    first = missing[0]
    return (f"{db}: {reads}; add the column to its table (`ALTER TABLE {first.table} ADD COLUMN "
            f"\"{first.field}\" …` in DuckDB, with the field's type) and fill it, or stop reading the field")


def _columns(con, table: str) -> set[str] | None:
    """The table's columns; None when the store has no such table (the tick then reads nothing from it)."""
    import duckdb

    try:
        # `table` comes from the fixed TABLES mapping, never from a flow.
        return {d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description}
    except duckdb.CatalogException:
        return None


def _place(path: ast.Path) -> str:
    span = path.span
    return f"{span.file}:{span.start_line}:{span.start_column}"
