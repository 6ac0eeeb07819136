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
from .sqlvalues import ID_LIST, id_list


def decide_tick(con, due_set: DueSet, since: datetime, now: datetime,
                paused: Paused | None = None) -> list[tuple[object, object, dict, Decision]]:
    """(plan, step, row, decision) for every occurrence due in (since, now], in plan and step order."""
    due = due_set.rows(con, since, now)
    if not due:
        return []
    recipients = fetch(con, {row["customer_id"] for _, _, row in due}, now)
    paused = paused or Paused()
    previous = _previous_steps(con, due)
    made = []
    for plan, step, row in due:
        filled = recipients.fill(row, plan, now)
        if step.index > 0:
            filled["previous_step"] = previous.get(_previous_key(plan, step, row), ("none", "not decided yet", None))
        if paused.flows or paused.channels:
            filled["paused_flow"] = paused.flows.get(plan.name)
            filled["paused_channels"] = paused.channels
        decision = decide(plan, step, filled, now)
        if decision.decision == "send":
            recipients.sent(decision.customer_id, plan, decision.order_id, decision.send_at, decision.occurrence)
        previous[decision.key] = (decision.decision, decision.reason, decision.send_at)
        made.append((plan, step, filled, decision))
    return made


def _previous_key(plan, step, row) -> str:
    return f"{plan.name}:{step.index - 1}:{row['occurrence']}"


def _previous_steps(con, due) -> dict[str, tuple]:
    """key → (decision, reason, send_at) of the step before each later step due now, from the ledger."""
    keys = [_previous_key(plan, step, row) for plan, step, row in due if step.index > 0]
    if not keys:
        return {}
    rows = con.execute(f"SELECT key, decision, reason, send_at FROM ledger WHERE key IN {ID_LIST}",
                       [id_list(keys)]).fetchall()
    return {key: (decision, reason, send_at) for key, decision, reason, send_at in rows}
