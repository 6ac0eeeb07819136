"""What is due in one tick: every step of every flow, over (since, now].

`DueSet` compiles the tick once (`compiler.due.build_tick`: a few statements over temporary
tables); `rows(con, since, now)` runs it and returns the due occurrences in plan and step order,
each with what it computed (keys, guards, the recipient's columns).  Simulation and `linkstar run`
both call it, so they see the same due set.  The statements take their values from one SQL
variable, set with a single parameter per tick; `timings` holds how long each took, last time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from ..compiler.due import TEMP, VARIABLE, build_tick, by_variable, document, list_documents
from ..compiler.plan import FlowPlan, StepPlan
from ..store import key_lookups


class DueSet:
    def __init__(self, plans: Iterable[FlowPlan], schema) -> None:
        self.plans = list(plans)
        tick = build_tick(self.plans, schema)
        self.steps = tick.steps
        self.statements, self.slots = by_variable(tick.statements)
        #: (flow, step index) → the step's number in the statements' `s` column.
        self.queries = {(plan.name, step.index): i for i, (plan, step) in enumerate(self.steps)}
        #: (what the statement computes, seconds) of the last `rows`.
        self.timings: list[tuple[str, float]] = []

    def rows(self, con, since: datetime, now: datetime) -> list[tuple[FlowPlan, StepPlan, dict]]:
        if not self.steps:
            return []
        con.execute(f"SET VARIABLE {VARIABLE} = ?", [document(self.slots, now=now, since=since)])
        for variable, values in list_documents(self.slots, now=now, since=since):
            con.execute(f"SET VARIABLE {variable} = ?", [values])
        timings = []
        with key_lookups(con):
            for statement in self.statements:
                started = time.perf_counter()
                cursor = con.execute(statement)
                timings.append((_name(statement), time.perf_counter() - started))
            started = time.perf_counter()
            names = [d[0] for d in cursor.description]
            found = cursor.fetchall()
            timings[-1] = (timings[-1][0], timings[-1][1] + time.perf_counter() - started)
        self.timings = timings
        due = []
        for values in found:
            row = dict(zip(names, values))
            plan, step = self.steps[row.pop("s")]
            due.append((plan, step, row))
        return due


def _name(statement: str) -> str:
    """`fresh`, `ord`, … for the statements that fill a temporary table; `rows` for the last."""
    head = statement.split(" AS\n", 1)[0]
    return head.rsplit(TEMP, 1)[1] if head.startswith("CREATE") else "result"
