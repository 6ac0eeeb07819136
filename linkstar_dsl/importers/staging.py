"""Loading one file's records into the store: staged in bulk, then merged in set-based SQL.

Records are written as JSON Lines to a private temporary folder and loaded in batches with
DuckDB's `read_json` into temporary staging tables (one per table and role; the file name is a
parameter, the values travel in the file, never in SQL text).  `merge` then, in the caller's
transaction:

1. rejects records repeating a key of an earlier record of the file;
2. classifies each primary row as new, unchanged (`same`) or changed against the store, and
   applies `--on-conflict` (update: write it; skip: keep the stored row and drop the record's
   other rows; error: reject the record);
3. inserts and updates the primary rows, then merges the rows they imply (customers, events,
   consents: the last copy of a key in the file wins), applies consent revocations, and
   recomputes the order figures of every customer the file touched, in one statement.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import attrs
import duckdb

from ..store import DATA_TABLES
from . import sql
from .messages import Problem
from .records import FILL, MERGE, PRIMARY, Record
from .tables import Table, quote

BOOKKEEPING = {"_record": "BIGINT", "_line": "BIGINT"}
REVOCATION_COLUMNS = {"customer_id": "VARCHAR", "channel": "VARCHAR", "purpose": "VARCHAR",
                      "revoked_at": "TIMESTAMPTZ", **BOOKKEEPING}


@attrs.define
class Effects:
    """What a file did: per record (the summary's figures) and per table."""

    imported: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[tuple[int, Problem]] = attrs.field(factory=list)
    tables: dict[str, Counter] = attrs.field(factory=dict)

    def count(self, table: str, what: str, number: int) -> None:
        if number:
            self.tables.setdefault(table, Counter())[what] += number


@attrs.define
class _Stage:
    """One staging table and the JSON Lines file filling it."""

    name: str
    mode: str
    table: Table | None
    path: Path
    spec: str
    columns: dict = attrs.field(factory=dict)   # columns given by at least one row (ordered set)
    pending: int = 0
    handle: object = None

    def write(self, values: dict) -> None:
        if self.handle is None:
            self.handle = open(self.path, "w", encoding="utf-8")
        self.handle.write(json.dumps(values, default=_encode, ensure_ascii=False))
        self.handle.write("\n")
        self.pending += 1


class StagedFile:
    """The records of one input file on their way into the store."""

    def __init__(self, con: duckdb.DuckDBPyConnection, tables: dict[str, Table], primary: str,
                 on_conflict: str, workdir: Path) -> None:
        self.con = con
        self.tables = tables
        self.primary = tables[primary]
        self.on_conflict = on_conflict
        self.workdir = workdir
        self.stages: dict[tuple[str, str], _Stage] = {}
        self.records = 0

    # ----------------------------------------------------------------------------- staging

    def add(self, record: Record) -> None:
        """Stage the rows of an accepted record."""
        self.records += 1
        bookkeeping = {"_record": self.records, "_line": record.line}
        for row in record.rows:
            stage = self._stage(row.table, row.mode)
            stage.columns.update(dict.fromkeys(row.values))
            stage.write({**row.values, **bookkeeping})
        for revocation in record.revocations:
            self._stage("consents", "revocations").write({**attrs.asdict(revocation), **bookkeeping})

    def load_batch(self) -> None:
        """Load what is waiting in the staging files into the staging tables."""
        for stage in self.stages.values():
            if stage.pending:
                stage.handle.close()
                stage.handle = None
                self.con.execute(f"INSERT INTO {stage.name} BY NAME SELECT * FROM read_json(?, "
                                 f"format = 'newline_delimited', columns = {stage.spec})", [str(stage.path)])
                stage.pending = 0

    def _stage(self, table_name: str, mode: str) -> _Stage:
        stage = self.stages.get((table_name, mode))
        if stage is None:
            stage = self._create_stage(table_name, mode)
            self.stages[(table_name, mode)] = stage
        return stage

    def _create_stage(self, table_name: str, mode: str) -> _Stage:
        table = self.tables[table_name]
        if mode == "revocations":
            name = "import_revocations"
            columns = ", ".join(f"{quote(c)} {t}" for c, t in REVOCATION_COLUMNS.items())
            self.con.execute(f"CREATE TEMP TABLE {name} ({columns})")
            spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in REVOCATION_COLUMNS.items()) + "}"
            return _Stage(name, mode, None, self.workdir / f"{name}.jsonl", spec)
        name = f"import_{mode}_{table.name}"
        self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM main.{quote(table.name)} LIMIT 0")
        for column, sql_type in BOOKKEEPING.items():
            self.con.execute(f"ALTER TABLE {name} ADD COLUMN {column} {sql_type}")
        return _Stage(name, mode, table, self.workdir / f"{name}.jsonl", sql.column_spec(table, BOOKKEEPING))

    # ----------------------------------------------------------------------------- merging

    def merge(self) -> Effects:
        self.load_batch()
        effects = Effects()
        primary = self.stages.get((self.primary.name, PRIMARY))
        if primary is not None:
            self.con.execute("CREATE TEMP TABLE import_dropped (_record BIGINT)")
            self._reject_repeated_keys(primary, effects)
            self._drop_dropped()
            sql.classify(self.primary, primary.name, list(primary.columns)).run(self.con)
            self._apply_conflict_policy(primary, effects)
            self._drop_dropped()
            self._write_primary(primary, effects)
        for stage in self._secondary_stages():
            self._merge_secondary(stage, effects)
        if ("consents", "revocations") in self.stages:
            effects.count("consents", "revoked", sql.Statement(sql.REVOKE).run(self.con))
        self._refresh_customer_figures(effects)
        self._drop_stages()
        return effects

    def _reject_repeated_keys(self, stage: _Stage, effects: Effects) -> None:
        repeated = sql.duplicates(self.primary, stage.name)
        for _record, line, first_line, *key in self.con.execute(repeated).fetchall():
            effects.rejected.append((line, Problem("duplicate-in-file", None, {
                "key": _key_label(self.primary, key), "line": first_line})))
        self.con.execute(f"INSERT INTO import_dropped SELECT _record FROM ({repeated})")

    def _apply_conflict_policy(self, stage: _Stage, effects: Effects) -> None:
        fates = dict(self.con.execute("SELECT fate, count(*) FROM import_fate GROUP BY fate").fetchall())
        effects.imported = fates.get("new", 0)
        effects.skipped = fates.get("same", 0)
        changed = fates.get("changed", 0)
        if self.on_conflict == "update":
            effects.updated = changed
            return
        if self.on_conflict == "error" and changed:
            keys = ", ".join(f"s.{quote(k)}" for k in self.primary.key)
            for line, *key in self.con.execute(
                    f"SELECT f._line, {keys} FROM import_fate f JOIN {stage.name} s ON s._record = f._record "
                    "WHERE f.fate = 'changed' ORDER BY f._line").fetchall():
                problem = Problem("conflict", None, {"key": _key_label(self.primary, key)})
                effects.rejected.append((line, problem))
        else:
            effects.skipped += changed
        self.con.execute("INSERT INTO import_dropped SELECT _record FROM import_fate WHERE fate = 'changed'")

    def _drop_dropped(self) -> None:
        for stage in self.stages.values():
            self.con.execute(f"DELETE FROM {stage.name} WHERE _record IN (SELECT _record FROM import_dropped)")

    def _write_primary(self, stage: _Stage, effects: Effects) -> None:
        columns = list(stage.columns)
        fresh = "_record IN (SELECT _record FROM import_fate WHERE fate = 'new')"
        effects.count(self.primary.name, "inserted",
                      sql.insert_missing(self.primary, stage.name, columns, where=fresh).run(self.con))
        if self.on_conflict == "update":
            changed = (f"SELECT * FROM {stage.name} WHERE _record IN "
                       "(SELECT _record FROM import_fate WHERE fate = 'changed')")
            effects.count(self.primary.name, "updated",
                          sql.replace_values(self.primary, changed, columns).run(self.con))

    def _secondary_stages(self) -> list[_Stage]:
        found = [stage for stage in self.stages.values() if stage.mode in (MERGE, FILL)]
        return sorted(found, key=lambda stage: DATA_TABLES.index(stage.table.name))

    def _merge_secondary(self, stage: _Stage, effects: Effects) -> None:
        table = stage.table
        self.con.execute(sql.keep_last_per_key(table, stage.name))
        columns = list(stage.columns)
        if stage.mode == MERGE:
            effects.count(table.name, "updated", sql.fill_values(table, stage.name, columns).run(self.con))
        effects.count(table.name, "inserted", sql.insert_missing(table, stage.name, columns).run(self.con))

    def _refresh_customer_figures(self, effects: Effects) -> None:
        sources = []
        for (table_name, _), stage in self.stages.items():
            if table_name == "orders":
                sources.append(f"SELECT customer_id FROM {stage.name}")
            elif table_name == "customers":
                sources.append(f"SELECT id FROM {stage.name}")
        if not sources:
            return
        self.con.execute(f"CREATE TEMP TABLE import_touched AS SELECT DISTINCT customer_id FROM "
                         f"({' UNION ALL '.join(sources)}) AS touched(customer_id)")
        sql.Statement(sql.CUSTOMER_FIGURES).run(self.con)
        self.con.execute("DROP TABLE import_touched")

    def _drop_stages(self) -> None:
        for name in [stage.name for stage in self.stages.values()] + ["import_fate", "import_dropped"]:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def close(self) -> None:
        for stage in self.stages.values():
            if stage.handle is not None:
                stage.handle.close()


def _key_label(table: Table, key: list) -> str:
    if len(table.key) == 1:
        return f'{table.key[0]} "{key[0]}"'
    return "(" + ", ".join(f"{name} {value!s}" for name, value in zip(table.key, key, strict=True)) + ")"


def _encode(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot stage a {type(value).__name__}")
