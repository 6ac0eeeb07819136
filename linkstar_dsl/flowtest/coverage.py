"""Coverage of flow tests: which gates and branches of each flow the tests exercised.

Per flow: each gate it has (by its reason code, in gate order) that decided at least one message;
each `where` condition, `exit when` condition and `unless` seen both true and false (a missing
value counts as false, as at run time); each step reached; each channel of a step's `via` list
chosen for a send; each arm of a split sent.  The conditions' values are read, per decision, from
the same query `linkstar explain` runs, at the tick that made the decision.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import attrs

from ..compiler.due import build_explain, conjuncts


@attrs.define
class FlowCoverage:
    plan: object
    origin: str
    tests: int = 0
    reasons: set = attrs.field(factory=set)
    guards: dict = attrs.field(factory=dict)  # conjunct index → outcomes seen
    exits: dict = attrs.field(factory=dict)
    unless: set = attrs.field(factory=set)
    steps: set = attrs.field(factory=set)
    channels: set = attrs.field(factory=set)  # (step, channel) sent
    templates: set = attrs.field(factory=set)  # (step, template) sent

    def branches(self) -> list[tuple[str, str, str, bool]]:
        """(group, what, outcome, exercised) for everything this flow can do."""
        plan = self.plan
        found = [("gate", reason, "", reason in self.reasons) for reason in gate_reasons(plan)]
        if plan.unless is not None:
            text = f"`{plan.unless.span.text}`"
            found += [("unless", text, "held", False in self.unless),
                      ("unless", text, "did not hold", True in self.unless)]
        for group, parts, seen in (("where", [c for g in plan.guards for c in conjuncts(g)], self.guards),
                                   ("exit when", list(plan.exits), self.exits)):
            for i, part in enumerate(parts):
                outcomes = seen.get(i, set())
                found += [(group, f"`{part.span.text}`", "true", True in outcomes),
                          (group, f"`{part.span.text}`", "false", False in outcomes)]
        many = len(plan.steps) > 1
        for step in plan.steps:
            label = f"step {step.index + 1} " if many else ""
            if many:
                found.append(("step", f"{step.index + 1}", "", step.index in self.steps))
            for channel in step.channels:
                found.append(("channel", f"{label}{channel}", "", (step.index, channel) in self.channels))
            if len(step.messages) > 1:
                for message in step.messages:
                    found.append(("split arm", f'{label}"{message.template}"', "",
                                  (step.index, message.template) in self.templates))
        return found


def gate_reasons(plan) -> list[str]:
    """The reason codes this flow's gates can give, in gate order."""
    has = {"sent": True, "unless": plan.unless is not None, "guard": bool(plan.guards),
           "exited": bool(plan.exits),
           "expired": bool(plan.expire), "holdout": plan.holdout is not None, "suppressed": True,
           "no-channel": True, "once": plan.once_per is not None, "cooldown": bool(plan.cooldown),
           "cap": bool(plan.cap), "at-time": plan.at_local is not None,
           "window": plan.window is not None or bool(plan.legal_windows)}
    return [reason for reason, present in has.items() if present]


class Coverage:
    def __init__(self) -> None:
        self.flows: dict[str, FlowCoverage] = {}
        self._queries: dict = {}

    def _flow(self, suite, plan) -> FlowCoverage:
        if plan.name not in self.flows:
            origin = suite.program.origin(plan.name) if suite.program is not None else None
            self.flows[plan.name] = FlowCoverage(plan, str(origin) if origin else "?")
        return self.flows[plan.name]

    def __call__(self, con, suite, case, made) -> None:
        """Record what one test's decisions exercised (called while its store is open)."""
        for plan in case.plans:
            self._flow(suite, plan).tests += 1
        plans = {p.name: p for p in case.plans}
        for m in made:
            d = m.decision
            plan = plans[d.flow]
            cover = self._flow(suite, plan)
            cover.reasons.add(d.reason)
            cover.steps.add(d.step)
            if d.decision == "send":
                cover.channels.add((d.step, d.channel))
                cover.templates.add((d.step, d.template))
            self._conditions(con, suite, plan, d, m.now, cover)

    def _conditions(self, con, suite, plan, d, now, cover: FlowCoverage) -> None:
        if not (plan.guards or plan.exits or plan.unless is not None):
            return
        step = plan.steps[d.step]
        key = (plan.name, step.index)
        if key not in self._queries:
            self._queries[key] = build_explain(plan, step, suite.program.schema)
        query = self._queries[key]
        cursor = con.execute(query.sql, query.bind(now=now, since=now - timedelta(days=366), flow=plan.name,
                                                   step=step.index, subject=d.order_id or d.customer_id))
        names = [c[0] for c in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            if row["key"] != d.key:
                continue
            cover.unless.add(bool(row["unless_ok"]))
            for name, value in row.items():
                if name.startswith("guard_") and name[6:].isdigit():
                    cover.guards.setdefault(int(name[6:]), set()).add(value is True)
                elif name.startswith("exit_") and name[5:].isdigit():
                    cover.exits.setdefault(int(name[5:]), set()).add(value is True)

    def render(self, untested: list[tuple[str, str]] = ()) -> str:
        lines: list[str] = ["coverage of the flows under test", ""]
        total = done = 0
        for name in sorted(self.flows):
            cover = self.flows[name]
            branches = cover.branches()
            hit = sum(1 for *_, ok in branches if ok)
            total, done = total + len(branches), done + hit
            lines.append(f"{name}  ({_short(cover.origin)}; {_count(cover.tests, 'test')})  "
                         f"{hit} of {len(branches)} exercised")
            rows: dict[tuple[str, str], list[str]] = {}
            for group, what, outcome, ok in branches:
                # Conditions get a line each; gates, steps, channels and arms share one per group.
                key = (group, what) if outcome in ("true", "false", "held", "did not hold") else (group, "")
                rows.setdefault(key, []).append(f"{'✓' if ok else '·'} {outcome or what}")
            heads = {key: f"{key[0]} {key[1]}" if key[1] else key[0] + "s" for key in rows}
            width = max(len(h) for h in heads.values())
            for key, marks in rows.items():
                lines.append(f"  {heads[key]:<{width}}  " + "  ".join(marks))
            missing = [" ".join(p for p in (group, what, outcome) if p)
                       for group, what, outcome, ok in branches if not ok]
            if missing:
                lines.append("  never exercised: " + "; ".join(missing))
            lines.append("")
        for name, origin in untested:
            lines.append(f"{name}  ({_short(origin)})  no tests")
        if untested:
            lines.append("")
        percent = f" ({100 * done / total:.0f}%)" if total else ""
        lines.append(f"branches exercised: {done} of {total}{percent}"
                     + (f"; {_count(len(untested), 'flow')} without tests" if untested else ""))
        return "\n".join(lines) + "\n"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _short(origin: str) -> str:
    try:
        return str(Path(origin).resolve().relative_to(Path.cwd()))
    except ValueError:
        return origin
