"""What is due in one tick: every step of every flow, over (since, now].

`DueSet` compiles the tick once (`compiler.due.build_tick`: a few statements over temporary
tables); `rows(con, since, now)` runs it and returns the due occurrences in plan and step order,
each with what it computed (keys, guards, the recipient's columns).  Simulation and `linkstar run`
both call it, so they see the same due set.  The statements take their values from one SQL
variable, set with a single parameter per tick; a statement whose input found no rows is skipped
(`TickQuery.needs`: no deferral due, nothing due); `timings` holds how long each took, last time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from ..compiler.due import VARIABLE, build_tick, by_variable, document, list_documents
from ..compiler.plan import FlowPlan, StepPlan
from ..store import key_lookups


class DueSet:
    def __init__(self, plans: Iterable[FlowPlan], schema) -> None:
        self.plans = list(plans)
        tick = build_tick(self.plans, schema)
        self.steps = tick.steps
        names = [name for name, _ in tick.statements]
        texts, self.slots = by_variable([sql for _, sql in tick.statements] + list(tick.due.values()))
        #: (name, SQL) of each statement, in order.
        self.statements = list(zip(names, texts))
        #: The `due` statement for each set of pending tables that found rows.
        self.due = dict(zip(tick.due, texts[len(names):]))
        self.pending = sorted(set().union(*tick.due))
        #: A statement → the one that must find rows for it to run (`TickQuery.needs`).
        self.needs = tick.needs
        #: (flow, step index) → the step's number in the statements' `s` column.
        self.queries = {(plan.name, step.index): i for i, (plan, step) in enumerate(self.steps)}
        #: (what the statement computes, seconds) of the last `rows`; 0 for a statement skipped.
        self.timings: list[tuple[str, float]] = []

    def rows(self, con, since: datetime, now: datetime) -> list[tuple[FlowPlan, StepPlan, dict]]:
        if not self.steps:
            return []
        con.execute(f"SET VARIABLE {VARIABLE} = ?", [document(self.slots, now=now, since=since)])
        for variable, values in list_documents(self.slots, now=now, since=since):
            con.execute(f"SET VARIABLE {variable} = ?", [values])
        names, rows = self._run(con)
        due = []
        for values in rows:
            row = dict(zip(names, values))
            plan, step = self.steps[row.pop("s")]
            due.append((plan, step, row))
        return due

    def _run(self, con) -> tuple[list[str], list[tuple]]:
        """Run the statements in order, skipping those whose input found no rows; the columns and
        rows of the last (none when it was skipped)."""
        timings = []
        found: dict[str, int] = {}  # rows each statement found
        names, rows = [], []
        with key_lookups(con):
            for name, statement in self.statements:
                if name in self.needs and not found[self.needs[name]]:
                    found[name] = 0
                    timings.append((name, 0.0))
                    continue
                if name == "due":
                    statement = self.due[frozenset(table for table in self.pending if found[table])]
                started = time.perf_counter()
                cursor = con.execute(statement)
                if name == "result":
                    names, rows = [d[0] for d in cursor.description], cursor.fetchall()
                else:
                    found[name] = cursor.fetchone()[0]
                timings.append((name, time.perf_counter() - started))
        self.timings = timings
        return names, rows
