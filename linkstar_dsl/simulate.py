"""`linkstar simulate`: replay a clock over a period, with every gate, without sending anything.

The data file is attached read-only; the decisions go to a scratch ledger (seeded with the real
ledger's rows, so past sends still count for cooldowns and caps).  Each tick evaluates every
step's due query for (previous tick, now], fetches what the gates need to know about all the
customers due at once, and records one decision per due occurrence: send, defer (with the time)
or skip (with the reason).  The same inputs always give the same output.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import attrs
import duckdb

from .compiler.plan import FlowPlan
from .gate_inputs import fetch
from .gates import Decision, decide
from .runtime.due_set import DueSet
from .store import DATA_TABLES, MIGRATIONS


def _ledger_ddl() -> str:
    text = (MIGRATIONS / "001_initial.sql").read_text(encoding="utf-8")
    return re.search(r"CREATE TABLE ledger \(.*?\n\);", text, re.S).group(0)


def scratch(db_path: str) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that reads the store at `db_path` and owns a scratch ledger."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # ATTACH takes no parameters: the path goes in as a quoted SQL string literal.
    con.execute(f"ATTACH {_sql_string(db_path)} AS src (READ_ONLY)")
    for table in DATA_TABLES:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM src.{table}")  # names from a fixed tuple
    con.execute(_ledger_ddl())
    con.execute("INSERT INTO ledger SELECT * FROM src.ledger")
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
        due = self.due_set.rows(self.con, since, now)
        recipients = fetch(self.con, {row["customer_id"] for _, _, row in due}, now)
        made = []
        for plan, step, row in due:
            decision = decide(plan, step, recipients.fill(row, plan, now), now)
            if decision.decision == "send":
                recipients.sent(decision.customer_id, plan, decision.order_id, decision.send_at)
            self._record(decision)
            made.append(decision)
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
