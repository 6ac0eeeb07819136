"""The store's tables as the importer sees them: columns, types, defaults, keys, allowed values.

Everything here is read from the open database (`information_schema`, `duckdb_constraints()`) and
from the standard schema (`stdlib/schema.flow`, for the closed sets of values such as order
statuses), so table and column names in the SQL the importer writes come only from the store.
"""

from __future__ import annotations

import re

import attrs
import duckdb

from ..schema import CHANNELS, PURPOSES, standard_schema
from ..store import DATA_TABLES

#: The entity of the language each table holds (for the closed sets of values of its fields).
ENTITY_OF_TABLE = {"orders": "order", "customers": "customer", "reviews": "review", "carts": "cart"}

#: Columns whose values come from vocabularies of the engine rather than schema enums.
EXTRA_CHOICES = {
    ("consents", "channel"): CHANNELS,
    ("consents", "purpose"): PURPOSES,
    ("consents", "level"): "consent_level",
    ("suppressions", "channel"): CHANNELS,
}

#: Tables without a primary key are matched on these columns when re-importing.
NATURAL_KEYS = {
    "consents": ("customer_id", "channel", "purpose", "granted_at"),
    "suppressions": ("customer_id", "channel", "reason", "occurred_at"),
}

KINDS = {"VARCHAR": "text", "BIGINT": "int", "INTEGER": "int", "BOOLEAN": "bool",
         "TIMESTAMP WITH TIME ZONE": "timestamp", "DATE": "date", "VARCHAR[]": "list", "JSON": "json"}

NO_DEFAULT = object()
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")


@attrs.frozen
class Column:
    name: str
    sql_type: str
    kind: str
    nullable: bool
    default: object = NO_DEFAULT
    choices: tuple[str, ...] | None = None

    @property
    def required(self) -> bool:
        """A value must be given: NOT NULL and no default."""
        return not self.nullable and self.default is NO_DEFAULT

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


@attrs.frozen
class Table:
    name: str
    columns: dict[str, Column]
    key: tuple[str, ...]
    required: tuple[str, ...] = attrs.field(init=False)

    @required.default
    def _required(self) -> tuple[str, ...]:
        return tuple(name for name, column in self.columns.items() if column.required)

    @property
    def names(self) -> list[str]:
        return list(self.columns)


def quote(name: str) -> str:
    """A schema identifier, double-quoted; anything that is not a plain identifier is refused."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a schema identifier: {name!r}")
    return f'"{name}"'


def store_tables(con: duckdb.DuckDBPyConnection) -> dict[str, Table]:
    """The data tables of the store behind `con`, in bulk-load order."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'main' AND table_name IN "
        f"({', '.join('?' for _ in DATA_TABLES)}) ORDER BY ordinal_position", list(DATA_TABLES)).fetchall()
    keys = dict(con.execute("SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                            "WHERE constraint_type = 'PRIMARY KEY'").fetchall())
    columns: dict[str, dict[str, Column]] = {name: {} for name in DATA_TABLES}
    for table, name, sql_type, nullable, default in rows:
        columns[table][name] = Column(
            name=name, sql_type=sql_type, kind=_kind(sql_type), nullable=nullable == "YES",
            default=_evaluate_default(con, default), choices=_choices(table, name))
    return {name: Table(name, cols, tuple(keys.get(name) or NATURAL_KEYS[name]))
            for name, cols in columns.items() if cols}


def _kind(sql_type: str) -> str:
    if sql_type.startswith("DECIMAL"):
        return "decimal"
    return KINDS.get(sql_type, "text")


def _evaluate_default(con: duckdb.DuckDBPyConnection, expression: str | None) -> object:
    """The value of a column default.  The expression is the store's own (from its migrations)."""
    if expression is None:
        return NO_DEFAULT
    return con.execute(f"SELECT {expression}").fetchone()[0]


def _choices(table: str, column: str) -> tuple[str, ...] | None:
    schema = standard_schema()
    extra = EXTRA_CHOICES.get((table, column))
    if isinstance(extra, tuple):
        return extra
    enum_name = extra
    if enum_name is None and table in ENTITY_OF_TABLE:
        field = schema.field(ENTITY_OF_TABLE[table], column)
        enum_name = field.type.name.value if field is not None else None
    enum = schema.enums.get(enum_name) if enum_name else None
    return tuple(v.value for v in enum.values) if enum is not None else None


def events_of(subject: str) -> tuple[str, ...]:
    """The standard events that happen to an `order` or a `customer`."""
    return tuple(name for name, decl in standard_schema().events.items() if decl.subject.value == subject)
