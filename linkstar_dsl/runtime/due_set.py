"""What is due in one tick: every flow step's due query run over (since, now].

`DueSet` holds the compiled query of each step; `rows(con, since, now)` returns the due
occurrences in plan and step order, each with what the query computed (keys, guards, the
recipient's columns).  Simulation and `linkstar run` both call it, so they see the same due set.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..compiler.due import build
from ..compiler.plan import FlowPlan, StepPlan


class DueSet:
    def __init__(self, plans: Iterable[FlowPlan], schema) -> None:
        self.plans = list(plans)
        self.queries = {(p.name, s.index): build(p, s, schema) for p in self.plans for s in p.steps}

    def rows(self, con, since: datetime, now: datetime) -> list[tuple[FlowPlan, StepPlan, dict]]:
        due = []
        for plan in self.plans:
            for step in plan.steps:
                query = self.queries[(plan.name, step.index)]
                binding = dict(now=now, since=since, flow=plan.name, step=step.index)
                if query.probe_sql and not con.execute(query.probe_sql,
                                                       query.bind(**binding, probe=True)).fetchone()[0]:
                    continue  # nothing due: skip the query that evaluates the guards
                cursor = con.execute(query.sql, query.bind(**binding))
                names = [d[0] for d in cursor.description]
                due += [(plan, step, dict(zip(names, values))) for values in cursor.fetchall()]
        return due
