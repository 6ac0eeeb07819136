"""Compliance: every policy that applies to a flow, and what it demands of it.

For each flow the pass works out what the flow can reach (its purpose, the channels in its `via`
lists, the markets and marketplaces its guards allow; see `narrowing.py`), collects every policy
about those, and applies each rule:

* what the text can prove is proved here: send windows inside the legal window, the review window
  after delivery, `once per order`, guards that exclude refunded or FBA orders, a cooldown or a
  cap, purposes a channel or platform forbids;
* what needs per-recipient data (consent, LINE friendship, approved templates, footers) becomes an
  `Obligation`, a gate the runtime enforces right before each send.

A forbidden purpose is an error when the flow surely reaches the forbidding channel, market or
platform, and a warning (the runtime skips those buyers) when it merely may.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from .. import ast
from ..diagnostics import Diagnostic, Label, make
from ..policies import CONSENT_LEVELS, REQUIREMENTS, markets_of_countries
from ..suggest import did_you_mean
from .narrowing import OTHER, guards, reachable_countries, reachable_values


@attrs.frozen
class Obligation:
    """A gate the runtime must pass before sending: `consent(written)` for US SMS, and so on."""

    requirement: str
    args: tuple[str, ...]
    channels: tuple[str, ...]
    policy: str
    cite: str
    #: The market whose policy imposes it (only its buyers are bound), or None for every buyer.
    market: str | None = None
    #: The platform whose policy imposes it (only its orders are bound), or None.
    platform: str | None = None


@attrs.frozen
class Reach:
    purpose: str
    purpose_node: ast.Node
    channels: dict[str, ast.Name]
    countries: frozenset[str]
    markets: frozenset[str]
    marketplaces: frozenset[str]


def reach(flow: ast.Flow, schema) -> Reach:
    declared = flow.find(ast.Purpose)
    purpose = declared[0].name.value if declared else "marketing"
    anchor = declared[0] if declared else (flow.name or flow.trigger)
    channels: dict[str, ast.Name] = {}
    for clause in flow.clauses:
        vias = [clause] if isinstance(clause, ast.Via) else [
            c for c in getattr(clause, "clauses", ()) if isinstance(c, ast.Via)]
        for via in vias:
            for name in via.channels:
                channels.setdefault(name.value, name)
    countries = reachable_countries(flow, schema)
    marketplaces = reachable_values(flow, schema, ("order.marketplace", "customer.source"), "marketplace")
    if channels and set(channels) == {"amazon"}:
        marketplaces = marketplaces & {"amazon"}
    return Reach(purpose, anchor, channels, countries, markets_of_countries(countries), marketplaces)


def _subject(policy: ast.Policy) -> str:
    if policy.title is not None:
        return policy.title.value
    return f"policy {policy.kind} {policy.subject.value}"


def _because(policy: ast.Policy, rule) -> Label:
    cite = f": {rule.cite.value}" if rule.cite is not None else ""
    return Label(rule.span, f"required by {_subject(policy)}{cite}")


def applicable(flow: ast.Flow, r: Reach, policies) -> Iterator[tuple[ast.Policy, bool]]:
    """The policies about what the flow reaches, each with whether the flow surely reaches it."""
    for market in sorted(r.markets):
        sure = OTHER not in r.countries and r.markets == {market} or (
            market == "EU" and r.markets <= {"EU", "DE", "FR", "IT", "ES", "NL"})
        for policy in policies.about("market", market):
            yield policy, sure
    for channel in r.channels:
        for policy in policies.about("channel", channel):
            yield policy, True
    for marketplace in sorted(r.marketplaces):
        for policy in policies.about("platform", marketplace):
            yield policy, r.marketplaces == {marketplace} or "amazon" in r.channels
    for policy in policies.general():
        yield policy, True


def _scope_channels(scope: ast.Scope, r: Reach) -> list[ast.Name] | None:
    """The flow's channels a rule's scope is about; None when the scope does not match the flow."""
    if scope.purpose is not None and scope.purpose.value not in (r.purpose, "any"):
        return None
    if not scope.channels:
        return []
    matched = [r.channels[c.value] for c in scope.channels if c.value in r.channels]
    return matched or None


class _FlowCheck:
    def __init__(self, flow: ast.Flow, env) -> None:
        self.flow = flow
        self.env = env
        self.reach = reach(flow, env.schema)
        self.diagnostics: list[Diagnostic] = []
        self.obligations: list[Obligation] = []
        self.forbidden: set[tuple[str, str]] = set()

    def run(self) -> None:
        for policy, sure in applicable(self.flow, self.reach, self.env.policies):
            for rule in policy.rules:
                method = getattr(self, "_" + type(rule).__name__, None)
                if method is not None:
                    method(policy, rule, sure)

    def report(self, code: str, span, policy, rule, **args) -> None:
        self.diagnostics.append(make(code, span, labels=(_because(policy, rule),), **args))

    # ------------------------------------------------------------------ rules

    def _RequiresRule(self, policy, rule: ast.RequiresRule, sure: bool) -> None:
        matched = _scope_channels(rule.scope, self.reach)
        if matched is None:
            return
        for req in rule.requirements:
            name = req.name.value
            args = tuple(a.value for a in req.args)
            if name == "excludes":
                self._excludes(policy, rule, [a.value for a in req.args], sure)
            elif name == "cooldown_or_cap":
                self._cooldown_or_cap(policy, rule)
            elif name in REQUIREMENTS:
                self.obligations.append(Obligation(name, args, tuple(c.value for c in matched),
                                                   _subject(policy), rule.cite.value if rule.cite else "",
                                                   _market(policy)))

    def _excludes(self, policy, rule, names: list[str], sure: bool) -> None:
        """The flow's guards must rule out each name (an event, or an enum value such as FBA).

        When the policy only may apply (its platform is reachable but not certain), the runtime
        skips those orders and the checker says so with a note instead of an error.
        """
        schema = self.env.schema
        missing: list[tuple[str, str]] = []  # (what, the guard that would exclude it)
        tests: list[str] = []  # what the runtime checks: `event:NAME` or `FIELD=VALUE`
        for what in names:
            if what in schema.events:
                if not _excludes_event(self.flow, what):
                    missing.append((f"`{what}`", f"not {what}"))
                    tests.append(f"event:{what}")
                continue
            for enum in schema.enum_of_value(what):
                field = _field_of_enum(schema, enum.name.value)
                if field is not None and what in reachable_values(self.flow, schema, field, enum.name.value):
                    missing.append((f"`{field} == {what}`", f"{field} != {what}"))
                    tests.append(f"{field}={what}")
                    break
        if not missing:
            return
        described = "orders with " + " or ".join(w for w, _ in missing)
        fix = "where " + " and ".join(g for _, g in missing)
        if sure:
            self.report("missing-exclusion", self.reach.purpose_node.span, policy, rule,
                        purpose=self.reach.purpose, what=described,
                        help=(f"add `{fix}` (re-checked right before every send)",))
        else:
            matched = _scope_channels(rule.scope, self.reach) or ()
            self.obligations.append(Obligation("excludes", tuple(tests), tuple(c.value for c in matched),
                                               _subject(policy), rule.cite.value if rule.cite else "",
                                               _market(policy),
                                               policy.subject.value if policy.kind == "platform" else None))
            self.report("excluded-at-send", self.reach.purpose_node.span, policy, rule,
                        purpose=self.reach.purpose, what=described[0].upper() + described[1:],
                        subject=_subject(policy), help=(f"to say so in the flow, add `{fix}`",))

    def _cooldown_or_cap(self, policy, rule) -> None:
        if self.flow.find(ast.Cooldown) or self.flow.find(ast.Once) or self.flow.find(ast.Cap):
            return
        for purpose, channels in self.env.policies.caps():
            if purpose in (self.reach.purpose, "any") and (not channels or set(channels) >= set(self.reach.channels)):
                return
        self.report("missing-cooldown", self.reach.purpose_node.span, policy, rule,
                    purpose=self.reach.purpose,
                    help=("add for example `cooldown 7d per customer` or `once per order`, or a "
                          f"house policy `cap {self.reach.purpose} 4 per 30d per customer across flows`",))

    def _WindowRule(self, policy, rule: ast.WindowRule, sure: bool) -> None:
        matched = _scope_channels(rule.scope, self.reach)
        if matched is None or rule.states:
            return  # a state's window binds some recipients only: the runtime narrows the window
        legal = f"{_hhmm(rule.start)} and {_hhmm(rule.end)}"
        what = _describe_scope(rule.scope, policy)
        windows = self.flow.find(ast.Window)
        anchor = matched[0].span if matched else self.reach.purpose_node.span
        if not windows:
            self.report("missing-send-window", anchor, policy, rule, what=what, window=legal,
                        help=(f"add `between {legal} local` (or a narrower window)",))
            return
        window = windows[0]
        if not _within(window, rule):
            self.report("outside-legal-window", window.span, policy, rule, what=what, window=legal,
                        found=f"{_hhmm(window.start)}–{_hhmm(window.end)}",
                        help=(f"narrow it to `between {legal} local` or less",))

    def _ReviewWindowRule(self, policy, rule: ast.ReviewWindowRule, sure: bool) -> None:
        if _scope_channels(rule.scope, self.reach) is None:
            return
        trigger = self.flow.trigger
        window = f"{rule.earliest.span.text} to {rule.latest.span.text} after `{rule.event.value}`"
        if trigger.event.value != rule.event.value:
            self.report("review-window", trigger.event.span, policy, rule, subject=_subject(policy),
                        window=window, found=f"this flow starts on `{trigger.event.value}`",
                        help=(f"trigger on `{rule.event.value}`, for example "
                              f"`on {rule.event.value} + {rule.earliest.span.text}`",))
            return
        base = trigger.offset.seconds if trigger.offset else 0
        offsets = [(base, trigger)] + [
            (base + (s.offset.seconds if s.offset else 0), s) for s in self.flow.steps]
        if self.flow.steps:
            offsets = offsets[1:]
        for seconds, node in offsets:
            if not rule.earliest.seconds <= seconds <= rule.latest.seconds:
                found = f"this sends {_human(seconds)} after it"
                self.report("review-window", node.span, policy, rule, subject=_subject(policy),
                            window=window, found=found,
                            help=(f"send between `+ {rule.earliest.span.text}` and "
                                  f"`+ {rule.latest.span.text}`",))

    def _OnceRule(self, policy, rule: ast.OnceRule, sure: bool) -> None:
        if _scope_channels(rule.scope, self.reach) is None:
            return
        if any(o.per.value == rule.per.value for o in self.flow.find(ast.Once)):
            return
        self.report("missing-once", self.reach.purpose_node.span, policy, rule, subject=_subject(policy),
                    per=rule.per.value, purpose=self.reach.purpose,
                    help=(f"add `once per {rule.per.value}`",))

    def _TemplateRule(self, policy, rule: ast.TemplateRule, sure: bool) -> None:
        matched = _scope_channels(rule.scope, self.reach)
        if matched is None:
            return
        self.obligations.append(Obligation("template_forbids", tuple(n.value for n in rule.forbidden),
                                           tuple(c.value for c in matched), _subject(policy),
                                           rule.cite.value if rule.cite else ""))

    def _ForbidRule(self, policy, rule: ast.ForbidRule, sure: bool) -> None:
        if rule.purpose.value != self.reach.purpose:
            return
        if rule.market is not None:
            if rule.market.value not in self.reach.markets:
                return
            sure = sure and self.reach.markets == {rule.market.value}
        where = f" in {rule.market.value}" if rule.market is not None else ""
        key = (rule.purpose.value, where)
        if key in self.forbidden:
            return  # one report per forbidden purpose: the channel's rule and the platform's agree
        self.forbidden.add(key)
        if sure:
            anchor = self.reach.purpose_node.span
            if policy.kind == "channel" and policy.subject.value in self.reach.channels:
                anchor = self.reach.channels[policy.subject.value].span
            self.report("forbidden-purpose", anchor, policy, rule, subject=_subject(policy),
                        purpose=self.reach.purpose, where=where,
                        help=(_forbid_help(policy, rule),))
        else:
            self.report("skipped-at-send", self.reach.purpose_node.span, policy, rule,
                        subject=_subject(policy), purpose=self.reach.purpose, where=where,
                        help=(_forbid_help(policy, rule),))


def _market(policy: ast.Policy) -> str | None:
    return policy.subject.value if policy.kind == "market" else None


def _forbid_help(policy: ast.Policy, rule: ast.ForbidRule) -> str:
    if policy.kind == "platform":
        return f"say so with `where order.marketplace != {policy.subject.value}`"
    if rule.market is not None:
        return f"say so with `where customer.country != {rule.market.value}`, or use another channel"
    return f"use another channel than `{policy.subject.value}`, or another purpose if the message is not {rule.purpose.value}"


def _excludes_event(flow: ast.Flow, event: str) -> bool:
    for expr in guards(flow):
        for conjunct in _conjuncts(expr):
            if isinstance(conjunct, ast.Not) and _mentions(conjunct.operand, event, "or"):
                return True
    for exit_clause in flow.find(ast.Exit):
        if _mentions(exit_clause.when, event, "or"):
            return True
    return False


def _conjuncts(expr) -> list:
    if isinstance(expr, ast.BoolOp) and expr.op == "and":
        return [c for op in expr.operands for c in _conjuncts(op)]
    return [expr]


def _mentions(expr, event: str, op: str) -> bool:
    """True when `expr` is `event`, or an `op`-chain with `event` among its operands."""
    if isinstance(expr, ast.Path) and expr.dotted == event:
        return True
    if isinstance(expr, ast.Within):
        return False
    if isinstance(expr, ast.BoolOp) and expr.op == op:
        return any(_mentions(o, event, op) for o in expr.operands)
    return False


def _field_of_enum(schema, enum_name: str) -> str | None:
    for entity in ("order", "customer"):
        decl = schema.entities.get(entity)
        if decl is None:
            continue
        for field in decl.fields:
            if field.type.name.value == enum_name:
                return f"{entity}.{field.name.value}"
    return None


def _hhmm(t: ast.TimeLit) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def _minutes(t: ast.TimeLit) -> int:
    return t.hour * 60 + t.minute


def _within(window: ast.Window, rule: ast.WindowRule) -> bool:
    ws, we, rs, re_ = _minutes(window.start), _minutes(window.end), _minutes(rule.start), _minutes(rule.end)
    if rs <= re_:
        return rs <= ws < we <= re_
    # The legal window wraps midnight: the flow's window must sit inside one of its two parts.
    if ws < we:
        return ws >= rs or we <= re_
    return ws >= rs and we <= re_


def _describe_scope(scope: ast.Scope, policy: ast.Policy) -> str:
    purpose = scope.purpose.value if scope.purpose is not None and scope.purpose.value != "any" else ""
    channels = "/".join(c.value for c in scope.channels)
    where = f" to {policy.subject.value} buyers" if policy.kind == "market" else ""
    words = " ".join(w for w in (purpose, channels or "messages") if w)
    if channels:
        words += " messages"
    return f"{words}{where}"


def _human(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def flow_compliance(flow: ast.Flow, env) -> tuple[list[Diagnostic], list[Obligation]]:
    check = _FlowCheck(flow, env)
    check.run()
    return check.diagnostics, check.obligations


def flows(module: ast.Module, env) -> Iterator[Diagnostic]:
    for flow in module.flows:
        diagnostics, _ = flow_compliance(flow, env)
        yield from diagnostics


def policy_rules(module: ast.Module, env) -> Iterator[Diagnostic]:
    """The rules in the file's own policies use only known requirements and consent levels."""
    from .template_checks import FORBIDDEN_CONTENT

    for policy in module.policies:
        for rule in policy.rules:
            if isinstance(rule, ast.TemplateRule):
                for name in rule.forbidden:
                    if name.value not in FORBIDDEN_CONTENT:
                        guess = did_you_mean(name.value, FORBIDDEN_CONTENT)
                        yield make("unknown-content-rule", name.span, name=name.value,
                                   help=(f"did you mean `{guess}`?",) if guess else
                                   ("categories: " + ", ".join(f"`{c}`" for c in FORBIDDEN_CONTENT),))
            if not isinstance(rule, ast.RequiresRule):
                continue
            for req in rule.requirements:
                name = req.name.value
                if name not in REQUIREMENTS:
                    guess = did_you_mean(name, REQUIREMENTS)
                    yield make("unknown-requirement", req.name.span, name=name,
                               help=(f"did you mean `{guess}`?",) if guess else
                               ("requirements: " + ", ".join(f"`{r}`" for r in REQUIREMENTS),))
                elif name == "consent":
                    for arg in req.args:
                        if arg.value not in CONSENT_LEVELS:
                            yield make("unknown-requirement", arg.span, name=f"consent({arg.value})",
                                       help=("consent levels: " + ", ".join(CONSENT_LEVELS),))


PASSES = (flows, policy_rules)
