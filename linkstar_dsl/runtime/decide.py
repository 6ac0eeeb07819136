"""One tick's decisions: the due set, the recipients' gate inputs, and the gates, in order.

Simulation and `linkstar run` both decide through `decide_tick`, so what a simulation shows is
what the runner does.  Sends decided earlier in the same tick count straight away for the
cooldowns, caps and once-per rules of later steps.  A row that the gates reading the due row
alone skip (`gates.settled_by_row`: its `where` is false, say) is decided without gate inputs,
and none are fetched for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..gate_inputs import fetch
from ..gates import Decision, decide, reads_consents, reads_sends, settled_by_row
from ..store import key_lookups
from .due_set import DueSet
from .pauses import Paused
from .sqlvalues import ID_LIST, id_list


def decide_tick(con, due_set: DueSet, since: datetime, now: datetime,
                paused: Paused | None = None) -> list[tuple[object, object, dict, Decision]]:
    """(plan, step, row, decision) for every occurrence due in (since, now], in plan and step order.

    Each row carries the gate inputs it was decided on, unless the row alone settled it.
    """
    due = due_set.rows(con, since, now)
    if not due:
        return []
    settled = [settled_by_row(plan, row, now) for plan, _, row in due]
    gated = [entry for entry, done in zip(due, settled) if not done]
    with key_lookups(con):  # each of these reads its table through an index, by a few thousand keys
        recipients = fetch(con, {row["customer_id"] for _, _, row in gated}, now,
                           {row["customer_id"] for plan, _, row in gated if reads_consents(plan, row)},
                           {row["customer_id"] for plan, _, row in gated if reads_sends(plan)})
        previous = _previous_steps(con, gated)
        exclusions = _exclusions(con, gated, now)
    paused = paused or Paused()
    made = []
    for (plan, step, row), done in zip(due, settled):
        if not done:
            row = recipients.fill(row, plan, now)
            if step.index > 0:
                row["previous_step"] = previous.get(_previous_key(plan, step, row)) or _undecided(plan, step, row, since)
            held = exclusions.get((plan.name, row.get("order_id")))
            if held:
                row["exclusions"] = held
            if paused.flows or paused.channels:
                row["paused_flow"] = paused.flows.get(plan.name)
                row["paused_channels"] = paused.channels
        decision = decide(plan, step, row, now)
        if decision.decision == "send":
            recipients.sent(decision.customer_id, plan, decision.order_id, decision.send_at, decision.occurrence)
        previous[decision.key] = (decision.decision, decision.reason, decision.send_at)
        made.append((plan, step, row, decision))
    return made


def _exclusions(con, due, now: datetime) -> dict[tuple[str, str], list[tuple[tuple[str, ...], str]]]:
    """(flow, order) → the policy exclusions that hold for that order: (channels, the policy's reason).

    Only exclusions the checker could not prove the flow's own guards make (`excluded-at-send`)
    are here, and only for orders on the policy's platform.
    """
    plans = {plan.name: plan for plan, _, _ in due}
    excluding = {name: plan for name, plan in plans.items()
                 if any(ob.requirement == "excludes" for ob in plan.obligations)}
    if not excluding:
        return {}
    platforms = {name: {ob.platform for ob in plan.obligations if ob.requirement == "excludes"}
                 for name, plan in excluding.items()}
    wanted = [(plan, row) for plan, _, row in due if plan.name in excluding and row.get("order_id")
              and (None in platforms[plan.name] or row.get("marketplace") in platforms[plan.name])]
    if not wanted:
        return {}
    orders = sorted({row["order_id"] for _, row in wanted})
    tests = [test for plan in excluding.values() for ob in plan.obligations if ob.requirement == "excludes"
             for test in ob.args]
    fields = sorted({test.split("=", 1)[0].split(".", 1)[1] for test in tests if test.startswith("order.")})
    events = sorted({test.split(":", 1)[1] for test in tests if test.startswith("event:")})
    values: dict[str, dict] = {}
    if fields:
        # The field names come from the checked schema, never from data; quoted all the same.
        columns = ", ".join('"' + f.replace('"', '""') + '"' for f in fields)
        for row in con.execute(f"SELECT id, {columns} FROM orders WHERE id IN {ID_LIST}", [id_list(orders)]).fetchall():
            values[row[0]] = dict(zip(fields, (str(v) if v is not None else None for v in row[1:])))
    happened: dict[str, set] = {}
    if events:
        for order_id, event in con.execute(
                f"SELECT DISTINCT order_id, event FROM order_events WHERE order_id IN {ID_LIST} "
                f"AND event IN {ID_LIST} AND occurred_at <= ?", [id_list(orders), id_list(events), now]).fetchall():
            happened.setdefault(order_id, set()).add(event)
    found: dict[tuple[str, str], list] = {}
    for plan, row in wanted:
        order_id = row["order_id"]
        for ob in plan.obligations:
            if ob.requirement != "excludes" or (ob.platform is not None and row.get("marketplace") != ob.platform):
                continue
            for test in ob.args:
                if test.startswith("event:"):
                    hit = test[6:] in happened.get(order_id, ())
                else:
                    field, _, value = test.partition("=")
                    hit = values.get(order_id, {}).get(field.split(".", 1)[1]) == value
                if hit:
                    what = test[6:] if test.startswith("event:") else test.replace("=", " == ")
                    found.setdefault((plan.name, order_id), []).append(
                        (ob.channels, f"{what}: {ob.cite or ob.policy}"))
                    break
    return found


def _undecided(plan, step, row, since: datetime) -> tuple:
    """The previous step of a sequence has no ledger row: not yet, or never (due before this runner looked)."""
    earlier = plan.steps[step.index - 1]
    due = row["due_at"] - timedelta(seconds=step.offset - earlier.offset)
    if due <= since:
        return ("skip", "never decided: due before the runner started", None)
    return ("none", "not decided yet", None)


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
