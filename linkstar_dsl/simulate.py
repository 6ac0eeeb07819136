"""`linkstar simulate`: replay a clock over a period, with every gate, without sending anything.

The data file is attached read-only; the decisions go to a scratch ledger (seeded with the real
ledger's rows, so past sends still count for cooldowns and caps).  Each tick evaluates every
step's due query for (previous tick, now], fetches what the gates need to know about all the
customers due at once, and records one decision per due occurrence: send, defer (with the time)
or skip (with the reason).  The same inputs always give the same output.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import attrs
import duckdb

from .compiler.plan import FlowPlan
from .gates import Decision
from .runtime.decide import decide_tick
from .runtime.due_set import DueSet
from .runtime.pauses import in_force
from .store import DATA_TABLES, migrate


def scratch(db_path: str) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that reads the store at `db_path` and owns a scratch ledger.

    The scratch database gets the current schema; each data table (and the pauses and the buyers'
    preference choices, which the gates read) is then replaced by a view of the store's table, and the store's ledger rows are copied in by column
    name, so a store made by an older version reads just as well.
    """
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    # ATTACH takes no parameters: the path goes in as a quoted SQL string literal.
    con.execute(f"ATTACH {_sql_string(db_path)} AS src (READ_ONLY)")
    present = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'src'").fetchall()}
    for table in (*DATA_TABLES, "pauses", "preference_changes"):  # names from a fixed tuple
        if table in present:
            con.execute(f"DROP TABLE {table}")
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM src.{table}")
    if "ledger" in present:
        con.execute("INSERT INTO ledger BY NAME SELECT * FROM src.ledger")
    return con


def _sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@attrs.define
class Simulation:
    con: duckdb.DuckDBPyConnection
    plans: list[FlowPlan]
    schema: object
    decisions: list[Decision] = attrs.field(factory=list)
    queries: dict = attrs.field(factory=dict)
    due_set: DueSet | None = None

    def __attrs_post_init__(self) -> None:
        self.due_set = DueSet(self.plans, self.schema)
        self.queries = self.due_set.queries

    def tick(self, since: datetime, now: datetime) -> list[Decision]:
        made = [d for _, _, _, d in decide_tick(self.con, self.due_set, since, now, in_force(self.con, now))]
        for decision in made:
            self._record(decision)
        self.decisions.extend(made)
        return made

    def _record(self, d: Decision) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO ledger (key, flow, step, occurrence, order_id, customer_id, channel, template, "
            "purpose, decision, reason, due_at, send_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [d.key, d.flow, d.step, d.occurrence, d.order_id, d.customer_id, d.channel, d.template, d.purpose, d.decision,
             d.reason, d.due_at, d.send_at, "sent" if d.decision == "send" else "decided"])

    def run(self, start: datetime, end: datetime, step: timedelta,
            progress: Callable[[datetime], None] | None = None) -> list[Decision]:
        since = start
        while since < end:
            now = min(since + step, end)
            self.tick(since, now)
            if progress is not None:
                progress(now)
            since = now
        return self.decisions


def timeline(decisions: Iterable[Decision]) -> list[tuple[str, str, Counter]]:
    """(day, flow, counts) where counts has send, defer and skip:<reason> entries."""
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for d in decisions:
        when = d.send_at if d.decision == "send" and d.send_at else d.due_at
        day = when.strftime("%Y-%m-%d")
        key = d.decision if d.decision != "skip" else f"skip:{d.reason}"
        if d.decision == "defer":
            key = f"defer:{d.reason}"
        table[(day, d.flow)][key] += 1
    return [(day, flow, counts) for (day, flow), counts in sorted(table.items())]
