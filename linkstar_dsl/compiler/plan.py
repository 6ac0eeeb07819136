"""A checked flow → a `FlowPlan`: everything the runtime needs, with no AST left to interpret.

The plan flattens the flow into steps (a flow without `step` has one), resolves each step's
channels (its own `via`, else the flow's) and message (a `send`, a `split`, or the default
template), and gathers the gates: guards, exits, expiry, holdout, once-per, cooldown, cap, the
flow's send window and the legal windows and runtime obligations its policies impose.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from .. import ast
from ..passes.compliance import Obligation, flow_compliance, reach
from ..policies import MARKET_COUNTRIES


@attrs.frozen
class Message:
    template: str
    params: tuple[tuple[str, object], ...] = ()
    percent: Decimal | None = None  # the arm's share in a split


@attrs.frozen
class StepPlan:
    index: int
    offset: int  # seconds after the trigger's anchor
    channels: tuple[str, ...]
    messages: tuple[Message, ...]


@attrs.frozen
class LegalWindow:
    """A window a policy imposes on some recipients: minutes of the local day, [start, end)."""

    countries: frozenset[str]
    channels: tuple[str, ...]
    start: int
    end: int
    source: str
    #: Only recipients whose shipping state is one of these (empty: every recipient).
    states: frozenset[str] = frozenset()


@attrs.frozen
class FlowPlan:
    name: str
    purpose: str
    event: str
    subject: str  # "order" or "customer"
    at_local: tuple[int, int] | None
    unless: object | None
    guards: tuple
    exits: tuple
    steps: tuple[StepPlan, ...]
    window: tuple[int, int] | None
    legal_windows: tuple[LegalWindow, ...]
    cooldown: int | None
    cap: tuple[int, int] | None  # (count, seconds)
    expire: int | None
    once_per: str | None
    holdout: Decimal | None
    obligations: tuple[Obligation, ...]
    flow: ast.Flow = attrs.field(eq=False, repr=False)


def _minutes(t: ast.TimeLit) -> int:
    return t.hour * 60 + t.minute


def _message(send: ast.Send, percent=None) -> Message:
    params = tuple((p.name.value, p.value) for p in send.params)
    return Message(send.template.value, params, percent)


def _messages(clauses, default: str) -> tuple[Message, ...]:
    for clause in clauses:
        if isinstance(clause, ast.Send):
            return (_message(clause),)
        if isinstance(clause, ast.Split):
            return tuple(_message(arm.send, arm.percent.value) for arm in clause.arms)
    return (Message(default),)


def plan_flow(flow: ast.Flow, env) -> FlowPlan:
    trigger = flow.trigger
    r = reach(flow, env.schema)
    _, obligations = flow_compliance(flow, env)
    flow_via = next((c for c in flow.clauses if isinstance(c, ast.Via)), None)
    flow_channels = tuple(n.value for n in flow_via.channels) if flow_via else ()
    default = flow.name.value if flow.name is not None else trigger.event.value
    base = trigger.offset.seconds if trigger.offset else 0
    if flow.steps:
        steps = []
        for i, step in enumerate(flow.steps):
            via = next((c for c in step.clauses if isinstance(c, ast.Via)), None)
            steps.append(StepPlan(i, base + (step.offset.seconds if step.offset else 0),
                                  tuple(n.value for n in via.channels) if via else flow_channels,
                                  _messages(step.clauses, default)))
    else:
        steps = [StepPlan(0, base, flow_channels, _messages(flow.clauses, default))]
    window = next(((_minutes(w.start), _minutes(w.end)) for w in flow.find(ast.Window)), None)
    cooldown = next((c.duration.seconds for c in flow.find(ast.Cooldown)), None)
    cap = next(((c.count.value, c.window.seconds) for c in flow.find(ast.Cap)), None)
    expire = next((e.after.seconds for e in flow.find(ast.Expire)), None)
    once = next((o.per.value for o in flow.find(ast.Once)), None)
    holdout = next((h.percent.value for h in flow.find(ast.Holdout)), None)
    subject = env.schema.events[trigger.event.value].subject.value
    return FlowPlan(
        name=flow.display_name, purpose=r.purpose, event=trigger.event.value, subject=subject,
        at_local=(trigger.at.time.hour, trigger.at.time.minute) if trigger.at else None,
        unless=trigger.unless, guards=tuple(w.expr for w in flow.find(ast.Where)),
        exits=tuple(e.when for e in flow.find(ast.Exit)), steps=tuple(steps), window=window,
        legal_windows=tuple(_legal_windows(r.purpose, env)), cooldown=cooldown, cap=cap, expire=expire,
        once_per=once, holdout=holdout, obligations=tuple(obligations), flow=flow)


def _legal_windows(purpose: str, env) -> list[LegalWindow]:
    found = []
    for policy in env.policies.policies:
        if policy.kind != "market":
            continue
        countries = frozenset(MARKET_COUNTRIES.get(policy.subject.value, (policy.subject.value,)))
        for rule in policy.rules:
            if isinstance(rule, ast.WindowRule):
                scope = rule.scope
                if scope.purpose is not None and scope.purpose.value not in (purpose, "any"):
                    continue
                found.append(LegalWindow(countries, tuple(c.value for c in scope.channels),
                                         _minutes(rule.start), _minutes(rule.end),
                                         f"{policy.title.value if policy.title else policy.subject.value}"
                                         + (f": {rule.cite.value}" if rule.cite else ""),
                                         frozenset(s.value for s in rule.states)))
    return found
