"""One tick's decisions: the due set, the recipients' gate inputs, and the gates, in order.

Simulation and `linkstar run` both decide through `decide_tick`, so what a simulation shows is
what the runner does.  Sends decided earlier in the same tick count straight away for the
cooldowns, caps and once-per rules of later steps.
"""

from __future__ import annotations

from datetime import datetime

from ..gate_inputs import fetch
from ..gates import Decision, decide
from .due_set import DueSet
from .pauses import Paused


def decide_tick(con, due_set: DueSet, since: datetime, now: datetime,
                paused: Paused | None = None) -> list[tuple[object, object, dict, Decision]]:
    """(plan, step, row, decision) for every occurrence due in (since, now], in plan and step order."""
    due = due_set.rows(con, since, now)
    if not due:
        return []
    recipients = fetch(con, {row["customer_id"] for _, _, row in due}, now)
    paused = paused or Paused()
    made = []
    for plan, step, row in due:
        filled = recipients.fill(row, plan, now)
        if paused.flows or paused.channels:
            filled["paused_flow"] = paused.flows.get(plan.name)
            filled["paused_channels"] = paused.channels
        decision = decide(plan, step, filled, now)
        if decision.decision == "send":
            recipients.sent(decision.customer_id, plan, decision.order_id, decision.send_at)
        made.append((plan, step, filled, decision))
    return made
