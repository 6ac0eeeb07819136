"""`linkstar explain`: why an order (or customer) did or did not get a flow's message.

For every flow whose trigger happened to the order, it evaluates each step's gates one by one at a
given time, with the values behind each verdict (`not refunded` is false, local time 22:14
Asia/Tokyo is outside 10:00–18:00, last service message 12 days ago, cooldown 30d), then states
the outcome the runtime would record, and what the ledger already holds for it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import attrs

from .compiler.due import build_explain, conjuncts
from .compiler.plan import FlowPlan, StepPlan
from .gates import (channel_problem, describe_opt_out, iso, bucket, decide, local_time_after, next_opening,
                    opt_out_on, recipient_zone, windows_for)


@attrs.frozen
class Check:
    gate: str
    ok: bool | None  # True passes, False stops, None: does not apply
    detail: str


@attrs.frozen
class Trace:
    flow: str
    step: int
    key: str
    order_id: str | None
    customer_id: str
    due_at: datetime
    checks: tuple[Check, ...]
    outcome: str
    recorded: str | None
    next: str = ""


def explain(con, plans: list[FlowPlan], schema, subject: str, at: datetime,
            flow_name: str | None = None) -> list[Trace]:
    from .runtime.pauses import in_force

    paused = in_force(con, at)
    traces = []
    for plan in plans:
        if flow_name is not None and plan.name != flow_name:
            continue
        for step in plan.steps:
            query = build_explain(plan, step, schema)
            cursor = con.execute(query.sql, query.bind(now=at, since=at - timedelta(days=366), flow=plan.name,
                                                      step=step.index, subject=subject))
            names = [d[0] for d in cursor.description]
            for values in cursor.fetchall():
                row = dict(zip(names, values))
                row["paused_flow"] = paused.flows.get(plan.name)
                row["paused_channels"] = paused.channels
                traces.append(_trace(con, plan, step, row, at))
    return traces


def _trace(con, plan: FlowPlan, step: StepPlan, row: dict, at: datetime) -> Trace:
    row["_now"] = at  # consent that lapses with time (CASL's implied consent) is judged at `at`
    checks: list[Check] = []
    due = row["due_at"]
    offset = timedelta(seconds=step.offset)
    checks.append(Check("trigger", True, f"{plan.event} at {iso(due - offset)}; due {iso(due)}"
                        + (" (not yet)" if due > at else "")))
    if plan.unless is not None:
        checks.append(Check("unless", bool(row["unless_ok"]),
                            f"`{plan.unless.span.text}` is {'false' if row['unless_ok'] else 'true'}"))
    for i, part in enumerate(c for g in plan.guards for c in conjuncts(g)):
        value = row.get(f"guard_{i}")
        checks.append(Check("where", value is True, f"`{part.span.text}` is {_word(value)}"))
    for i, part in enumerate(plan.exits):
        value = row.get(f"exit_{i}")
        checks.append(Check("exit when", value is not True, f"`{part.span.text}` is {_word(value)}"))
    if plan.expire:
        deadline = due + timedelta(seconds=plan.expire)
        checks.append(Check("expire", at <= deadline, f"expires {iso(deadline)}"))
    if step.index > 0:
        previous = con.execute("SELECT decision, reason, send_at FROM ledger WHERE key = ?",
                               [f"{plan.name}:{step.index - 1}:{row['occurrence']}"]).fetchone()
        row["previous_step"] = previous or ("none", "not decided yet", None)
        checks.append(Check("previous step", bool(previous) and previous[0] == "send",
                            f"step {step.index}: " + (f"{previous[0]} ({previous[1]})" if previous else "not decided yet")))
    if row.get("paused_flow"):
        checks.append(Check("pause", False, f"the flow is paused: {row['paused_flow']}"))
    if plan.holdout is not None:
        b = bucket("holdout", plan.name, row["customer_id"])
        held = b < float(plan.holdout) * 100
        checks.append(Check("holdout", not held, f"bucket {b / 100:.2f}% against {plan.holdout}%"))
    suppressed = set(row.get("suppressed") or ())
    checks.append(Check("suppression", "*" not in suppressed,
                        "suppressed on " + (", ".join(sorted(suppressed)) if suppressed else "nothing")))
    checks.append(_opt_out_check(plan, step, row))
    for channel in step.channels:
        problem = channel_problem(plan, channel, row, suppressed)
        if problem is None and channel in (row.get("paused_channels") or {}):
            problem = f"paused ({row['paused_channels'][channel]})"
        checks.append(Check(f"channel {channel}", problem is None, problem or "usable"))
    if plan.once_per:
        checks.append(Check("once", not row["once_used"], f"once per {plan.once_per}: "
                            + ("already sent" if row["once_used"] else "not sent yet")))
    if plan.cooldown:
        last = row["last_send"]
        ok = last is None or at >= last + timedelta(seconds=plan.cooldown)
        length = f"{plan.cooldown // 86400}d" if plan.cooldown % 86400 == 0 else f"{plan.cooldown // 3600}h"
        checks.append(Check("cooldown", ok, f"last {plan.purpose} message "
                            + (iso(last) if last else "never") + f", cooldown {length}"))
    if plan.cap:
        checks.append(Check("cap", row["cap_used"] < plan.cap[0],
                            f"{row['cap_used']} of {plan.cap[0]} {plan.purpose} messages in the window"))
    zone = recipient_zone(row)
    if plan.at_local is not None:
        when = local_time_after(due, plan.at_local, zone)
        checks.append(Check("at time", at >= when, f"at {plan.at_local[0]:02d}:{plan.at_local[1]:02d} {zone.key}: {iso(when)}"))
    channel = next((c for c in step.channels if channel_problem(plan, c, row, suppressed) is None), None)
    if channel is not None:
        windows = windows_for(plan, channel, row)
        if windows:
            opens = next_opening(plan, channel, row, at)
            spans = "; ".join(f"{s // 60:02d}:{s % 60:02d}–{e // 60:02d}:{e % 60:02d} ({why})" for s, e, why in windows)
            checks.append(Check("window", opens <= at, f"local time {at.astimezone(zone):%Y-%m-%d %H:%M} "
                                f"{zone.key}; open {spans}" + ("" if opens <= at else f"; opens {iso(opens)}")))
    d = None
    if due > at:
        outcome = f"not due yet: due {iso(due)}"
    else:
        d = decide(plan, step, row, at)
        outcome = {"send": f"SEND via {d.channel} at {iso(d.send_at)}",
                   "defer": f"DEFER ({d.reason}) until {iso(d.send_at)}: {d.detail}",
                   "skip": f"SKIP ({d.reason}): {d.detail}"}[d.decision]
    recorded = con.execute("SELECT decision, reason, send_at, status, channel, provider_id, detail FROM ledger "
                           "WHERE key = ?", [row["key"]]).fetchone()
    recorded_text = None
    if recorded:
        decision, reason, send_at, status, channel, provider_id, _ = recorded
        recorded_text = f"{decision} ({reason})" + (f" at {iso(send_at)}" if send_at else "")
        if status not in (None, "decided"):
            recorded_text += f", {status}" + (f" via {channel}" if channel else "") \
                + (f", provider id {provider_id}" if provider_id else "")
    return Trace(plan.name, step.index, row["key"], row.get("order_id"), row["customer_id"], due,
                 tuple(checks), outcome, recorded_text, _next(due, at, d, recorded))


def _opt_out_check(plan: FlowPlan, step: StepPlan, row: dict) -> Check:
    """The buyer's opt-outs of the flow's purpose: each with its channel, time and source."""
    opt_outs = row.get("opted_out") or []
    if not opt_outs:
        return Check("opt-out", True, f"no opt-out of {plan.purpose} messages")
    every_channel = all(opt_out_on(row, channel) for channel in step.channels)
    return Check("opt-out", not every_channel, "; ".join(describe_opt_out(o) for o in opt_outs))


def _next(due: datetime, at: datetime, d, recorded) -> str:
    """What happens to this message from `at` on, in one sentence."""
    if recorded is not None:
        decision, reason, send_at, status, channel, _, detail = recorded
        if status == "sent":
            return f"nothing more: sent via {channel}" + (f" at {iso(send_at)}" if send_at else "")
        if status == "claimed":
            return "a runner is sending it now (or will finish it when it restarts)"
        if status == "unknown":
            return (f"nothing more is sent: the {channel + ' ' if channel else ''}provider may have taken the "
                    "message, so it is left for a person to check in the provider's log" + _ledger_note(detail))
        if status == "failed":
            return f"nothing more: every channel failed ({reason})"
        if decision == "defer":
            return f"the gates are checked again at {iso(send_at)} ({reason})"
        return f"nothing more: the ledger holds a {decision} ({reason}), which is final"
    if d is None:
        return f"the gates are checked at the first tick after {iso(due)}"
    if d.decision == "send":
        return f"the next tick sends it via {d.channel}"
    if d.decision == "defer":
        return f"the next tick defers it to {iso(d.send_at)}, when the gates are checked again"
    return "the next tick records this skip; it is final"


def _ledger_note(detail: str | None) -> str:
    """The ledger's own account of a row (`detail`), as a clause; empty when it has none."""
    try:
        note = json.loads(detail or "").get("detail")
    except (ValueError, AttributeError):
        return ""
    return f" ({note})" if isinstance(note, str) and note else ""


def _word(value) -> str:
    return "true" if value is True else "false" if value is False else "unknown (missing data)"


def render(traces: list[Trace], subject: str, at: datetime) -> str:
    if not traces:
        return f"no flow was triggered for {subject} by {iso(at)}\n"
    lines = [f"{subject} at {iso(at)}", ""]
    for t in traces:
        lines.append(f"flow {t.flow}, step {t.step + 1} (order {t.order_id}, customer {t.customer_id}): {t.outcome}")
        for c in t.checks:
            mark = "✓" if c.ok else "✗" if c.ok is False else "·"
            lines.append(f"  {mark} {c.gate:<16} {c.detail}")
        if t.recorded:
            lines.append(f"  ledger: {t.recorded}")
        if t.next:
            lines.append(f"  next: {t.next}")
        lines.append("")
    return "\n".join(lines)
