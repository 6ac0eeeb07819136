"""Well-formedness: what the grammar accepts but no flow could mean.

Duplicate single-valued clauses, impossible times and percentages, splits that do not add up,
steps out of order, a flow-level `send` in a flow with steps, zero durations, an empty send
window, `per` and `across` words no clause knows, and the warning that a flow without `purpose`
is held to the rules for marketing.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from .. import ast
from ..diagnostics import Diagnostic, Fix, Label, make
from ..suggest import did_you_mean

#: Flow-level clauses that may be given at most once per flow.
SINGLE = {
    ast.Trigger: "on", ast.Purpose: "purpose", ast.Market: "market", ast.Window: "between",
    ast.Cooldown: "cooldown", ast.Expire: "expire", ast.Holdout: "holdout", ast.Once: "once",
    ast.Via: "via", ast.Send: "send", ast.Split: "split", ast.Exit: "exit",
}

PER_WORDS = ("customer", "order")
ACROSS_WORDS = ("flows", "purpose", "channel")

#: Clauses and rules that take `per WORD`, and those that also take `across WORD`.
WITH_PER = (ast.Cooldown, ast.Cap, ast.Once, ast.CapRule, ast.OnceRule)
WITH_ACROSS = (ast.Cooldown, ast.Cap, ast.CapRule)


def duplicate_clauses(module: ast.Module) -> Iterator[Diagnostic]:
    for flow in module.flows:
        yield from _duplicates(flow.clauses, "flow")
        for step in flow.steps:
            yield from _duplicates(step.clauses, "step")


def _duplicates(clauses, where: str) -> Iterator[Diagnostic]:
    first: dict[type, ast.Node] = {}
    for clause in clauses:
        kind = type(clause)
        if kind not in SINGLE:
            continue
        if kind in (ast.Send, ast.Split) and (ast.Send in first or ast.Split in first):
            earlier = first.get(ast.Send) or first.get(ast.Split)
            yield make("duplicate-clause", clause.span, clause=SINGLE[kind], where=where,
                       labels=(Label(earlier.span, "the message is already chosen here"),),
                       help=("give one `send`, or one `split` between several sends",))
            continue
        if kind in first:
            yield make("duplicate-clause", clause.span, clause=SINGLE[kind], where=where,
                       label="given again here",
                       labels=(Label(first[kind].span, "first given here"),),
                       help=(_keep_one(kind),))
        else:
            first[kind] = clause


def _keep_one(kind: type) -> str:
    if kind in (ast.Via, ast.Market):
        return f"keep one `{SINGLE[kind]}`; to list several values, separate them with commas"
    return f"keep one `{SINGLE[kind]}`"


def literal_ranges(module: ast.Module) -> Iterator[Diagnostic]:
    for node in ast.nodes(module, ast.TimeLit, ast.PercentLit):
        if isinstance(node, ast.TimeLit) and not (node.hour < 24 and node.minute < 60):
            yield make("invalid-time", node.span, text=node.span.text,
                       help=("times of day run from `00:00` to `23:59`",))
        elif isinstance(node, ast.PercentLit) and not (Decimal(0) <= node.value <= Decimal(100)):
            yield make("invalid-percent", node.span, text=node.span.text,
                       help=("a share of buyers runs from `0%` to `100%`; `holdout 10%` keeps one buyer "
                             "in ten out of the flow",))


def splits_total(module: ast.Module) -> Iterator[Diagnostic]:
    for node in ast.nodes(module, ast.Split):
        if isinstance(node, ast.Split):
            total = sum((arm.percent.value for arm in node.arms), Decimal(0))
            if total != 100:
                yield make("split-total", node.span, total=_num(total),
                           help=("make the arms add up to 100%; to leave some customers out, "
                                 "use `holdout` instead",))


def steps_in_order(module: ast.Module) -> Iterator[Diagnostic]:
    for flow in module.flows:
        previous: ast.Step | None = None
        for step in flow.steps:
            seconds = step.offset.seconds if step.offset else 0
            before = (previous.offset.seconds if previous and previous.offset else 0)
            if previous is not None and seconds < before:
                yield make("step-order", step.span, this=_offset_text(step), previous=_offset_text(previous),
                           labels=(Label(previous.span, "the step above"),),
                           help=("step offsets count from the trigger, so each step's offset must be "
                                 "at least the one above it",))
            previous = step


def steps_own_sends(module: ast.Module) -> Iterator[Diagnostic]:
    for flow in module.flows:
        if not flow.steps:
            continue
        for clause in flow.clauses:
            if isinstance(clause, (ast.Send, ast.Split)):
                name = "send" if isinstance(clause, ast.Send) else "split"
                yield make("send-outside-step", clause.span, clause=name,
                           help=("move it after the `step` it belongs to; a flow-level `via` is "
                                 "allowed and is the default for steps without their own",))


def positive_durations(module: ast.Module) -> Iterator[Diagnostic]:
    for node in ast.nodes(module, ast.Cooldown, ast.Cap, ast.Expire):
        checks = ()
        if isinstance(node, ast.Cooldown):
            checks = ((node.duration, "a cooldown"),)
        elif isinstance(node, ast.Cap):
            checks = ((node.window, "a cap's window"),)
        elif isinstance(node, ast.Expire):
            checks = ((node.after, "`expire after`"),)
        for duration, what in checks:
            if duration.amount == 0:
                yield make("zero-duration", duration.span, text=duration.span.text, what=what,
                           help=("give a positive duration, such as `30d`, or remove the clause",))


def windows_open(module: ast.Module) -> Iterator[Diagnostic]:
    for node in ast.nodes(module, ast.Window, ast.WindowRule):
        if isinstance(node, (ast.Window, ast.WindowRule)):
            if (node.start.hour, node.start.minute) == (node.end.hour, node.end.minute):
                yield make("empty-window", node.span, time=node.start.span.text,
                           help=("a window from later to earlier wraps past midnight, for example "
                                 "`between 20:00 and 08:00`",))


def option_words(module: ast.Module) -> Iterator[Diagnostic]:
    for node in ast.nodes(module, *WITH_PER):
        per = node.per if isinstance(node, WITH_PER) else None
        across = node.across if isinstance(node, WITH_ACROSS) else None
        if per is not None and per.value not in PER_WORDS:
            yield _option(per, PER_WORDS)
        if across is not None and across.value not in ACROSS_WORDS:
            yield _option(across, ACROSS_WORDS)


def _option(name: ast.Name, choices: tuple[str, ...]) -> Diagnostic:
    guess = did_you_mean(name.value, choices)
    if guess is None:
        return make("unknown-option", name.span, word=name.value, choices=_either(choices),
                    label="not an option here")
    return make("unknown-option", name.span, word=name.value, choices=_either(choices),
                label=f"did you mean `{guess}`?", help=(f"did you mean `{guess}`?",),
                fix=Fix(name.span, guess, f"replace with `{guess}`"))


def _either(choices: tuple[str, ...]) -> str:
    quoted = [f"`{c}`" for c in choices]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def declared_purpose(module: ast.Module) -> Iterator[Diagnostic]:
    for flow in module.flows:
        if not flow.find(ast.Purpose):
            anchor = flow.name.span if flow.name is not None else flow.trigger.span
            yield make("missing-purpose", anchor, label="no `purpose` clause",
                       help=("declare it, for example `purpose service` for a post-delivery survey; "
                             "purposes: transactional, service, review, marketing",))


def _offset_text(step: ast.Step) -> str:
    return f"{step.offset.sign}{step.offset.duration.span.text}" if step.offset else "+0m"


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


PASSES = (
    duplicate_clauses,
    literal_ranges,
    splits_total,
    steps_in_order,
    steps_own_sends,
    positive_durations,
    windows_open,
    option_words,
    declared_purpose,
)
