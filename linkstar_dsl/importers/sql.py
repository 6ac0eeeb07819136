"""The SQL the importer runs, built from store identifiers only; every value is a `?` parameter.

`Statement` pairs a SQL text with its parameters, so column defaults (the only values the
builders need) travel as parameters like everything else.
"""

from __future__ import annotations

import attrs

from .tables import Table, quote


@attrs.define
class Statement:
    sql: str = ""
    params: list = attrs.field(factory=list)

    def run(self, con) -> int:
        """Execute; the number of rows an INSERT or UPDATE touched (0 for other statements)."""
        result = con.execute(self.sql, self.params).fetchone()
        return int(result[0]) if result and isinstance(result[0], int) else 0


def key_match(table: Table, left: str, right: str) -> str:
    """`left.k = right.k AND …` over the table's key (null-safe for nullable key columns)."""
    parts = []
    for name in table.key:
        operator = "IS NOT DISTINCT FROM" if table.columns[name].nullable else "="
        parts.append(f"{left}.{quote(name)} {operator} {right}.{quote(name)}")
    return " AND ".join(parts)


def staged_value(table: Table, name: str, alias: str, params: list) -> str:
    """The staged value of a column; a missing one takes the column's default (as a parameter)."""
    column = table.columns[name]
    if column.has_default:
        params.append(column.default)
        return f"coalesce({alias}.{quote(name)}, ?::{column.sql_type})"
    return f"{alias}.{quote(name)}"


def column_spec(table: Table, extra: dict[str, str]) -> str:
    """A `read_json` columns struct: the table's columns and `extra`, with their SQL types."""
    entries = [(name, column.sql_type) for name, column in table.columns.items()] + list(extra.items())
    return "{" + ", ".join(f"{_literal(name)}: {_literal(sql_type)}" for name, sql_type in entries) + "}"


def _literal(text: str) -> str:
    """A schema name or type as a SQL string literal (they never contain quotes; checked)."""
    if "'" in text or "\\" in text:
        raise ValueError(f"unexpected character in schema text {text!r}")
    return f"'{text}'"


def insert_missing(table: Table, stage: str, columns: list[str], where: str = "") -> Statement:
    """Insert the staged rows whose key is not in the table yet."""
    statement = Statement()
    values = ", ".join(staged_value(table, name, "s", statement.params) for name in columns)
    names = ", ".join(quote(name) for name in columns)
    condition = f"NOT EXISTS (SELECT 1 FROM main.{quote(table.name)} t WHERE {key_match(table, 't', 's')})"
    statement.sql = (f"INSERT INTO main.{quote(table.name)} ({names}) SELECT {values} FROM {stage} s "
                     f"WHERE {condition}{' AND ' + where if where else ''}")
    return statement


def replace_values(table: Table, source: str, columns: list[str]) -> Statement:
    """Set the given non-key columns of matching rows to the values of `source` (a subquery)."""
    statement = Statement()
    settable = [name for name in columns if name not in table.key]
    if not settable:
        return statement
    assignments = ", ".join(f"{quote(name)} = {staged_value(table, name, 's', statement.params)}"
                            for name in settable)
    statement.sql = (f"UPDATE main.{quote(table.name)} AS t SET {assignments} FROM ({source}) AS s "
                     f"WHERE {key_match(table, 't', 's')}")
    return statement


def fill_values(table: Table, stage: str, columns: list[str]) -> Statement:
    """Set the given non-key columns of matching rows where the staged value is not empty and differs."""
    statement = Statement()
    settable = [name for name in columns if name not in table.key]
    if not settable:
        return statement
    assignments = ", ".join(f"{quote(n)} = coalesce(s.{quote(n)}, t.{quote(n)})" for n in settable)
    differs = " OR ".join(f"(s.{quote(n)} IS NOT NULL AND s.{quote(n)} IS DISTINCT FROM t.{quote(n)})"
                          for n in settable)
    statement.sql = (f"UPDATE main.{quote(table.name)} AS t SET {assignments} FROM {stage} AS s "
                     f"WHERE {key_match(table, 't', 's')} AND ({differs})")
    return statement


def classify(table: Table, stage: str, columns: list[str]) -> Statement:
    """Each staged record as `new` (key not stored), `same` (stored with these values) or `changed`."""
    statement = Statement()
    compared = [name for name in columns if name not in table.key]
    same = " AND ".join(
        f"t.{quote(name)} IS NOT DISTINCT FROM {staged_value(table, name, 's', statement.params)}"
        for name in compared) or "TRUE"
    stored = f"main.{quote(table.name)} t WHERE {key_match(table, 't', 's')}"
    statement.sql = (
        "CREATE TEMP TABLE import_fate AS SELECT s._record, s._line, CASE "
        f"WHEN NOT EXISTS (SELECT 1 FROM {stored}) THEN 'new' "
        f"WHEN EXISTS (SELECT 1 FROM {stored} AND {same}) THEN 'same' ELSE 'changed' END AS fate "
        f"FROM {stage} s")
    return statement


def duplicates(table: Table, stage: str) -> str:
    """Staged records repeating the key of an earlier record of the same file."""
    keys = ", ".join(quote(name) for name in table.key)
    return (f"SELECT _record, _line, first_line, {keys} FROM (SELECT *, min(_line) OVER (PARTITION BY {keys}) "
            f"AS first_line FROM {stage}) WHERE _line > first_line ORDER BY _line")


def keep_last_per_key(table: Table, stage: str) -> str:
    """Delete all but the last staged row of each key (a later order's copy of a customer wins)."""
    keys = ", ".join(quote(name) for name in table.key)
    return f"DELETE FROM {stage} WHERE rowid NOT IN (SELECT max(rowid) FROM {stage} GROUP BY {keys})"


REVOKE = (
    "UPDATE main.consents AS c SET revoked_at = r.revoked_at FROM ("
    " SELECT open.rowid AS row_id, min(x.revoked_at) AS revoked_at"
    " FROM main.consents open JOIN import_revocations x ON open.customer_id = x.customer_id"
    " AND open.channel = x.channel AND open.purpose = x.purpose AND x.revoked_at >= open.granted_at"
    " WHERE open.revoked_at IS NULL GROUP BY open.rowid) AS r WHERE c.rowid = r.row_id")

#: Customers' order figures from their orders: canceled orders do not count; lifetime value sums
#: the orders neither refunded nor returned in the customer's most used currency.  Customers
#: without any order in the store keep the figures they were imported with.
CUSTOMER_FIGURES = """
UPDATE main.customers AS c SET first_order_at = f.first_order_at, last_order_at = f.last_order_at,
    order_count = f.order_count, lifetime_value = f.lifetime_value,
    lifetime_value_currency = f.lifetime_value_currency
FROM (
    WITH counted AS (
        SELECT o.* FROM main.orders o JOIN import_touched t ON t.customer_id = o.customer_id
        WHERE o.status <> 'canceled'),
    main_currency AS (
        SELECT customer_id, total_currency FROM counted GROUP BY customer_id, total_currency
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY count(*) DESC, total_currency) = 1)
    SELECT t.customer_id, min(o.placed_at) AS first_order_at, max(o.placed_at) AS last_order_at,
        count(o.id) AS order_count,
        coalesce(sum(o.total) FILTER (WHERE o.total_currency = m.total_currency
                                      AND o.status NOT IN ('refunded', 'returned')), 0) AS lifetime_value,
        any_value(m.total_currency) AS lifetime_value_currency
    FROM import_touched t LEFT JOIN counted o ON o.customer_id = t.customer_id
    LEFT JOIN main_currency m ON m.customer_id = t.customer_id
    WHERE EXISTS (SELECT 1 FROM main.orders any_order WHERE any_order.customer_id = t.customer_id)
    GROUP BY t.customer_id
) AS f WHERE c.id = f.customer_id
"""
