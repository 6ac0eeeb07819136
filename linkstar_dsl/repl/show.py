"""The REPL's answers as text: types, values, decision tables, lists of flows.

Plain text that reads the same on a terminal and in a pipe; only diagnostics carry colour (and
only when the session has it on), rendered exactly as `linkstar check` renders them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import attrs

from ..diagnostics import Diagnostic, Severity
from ..gates import Decision, iso
from ..types import Type


@attrs.frozen
class Reply:
    """What one input produced: text to print, whether it was an error, whether to stop."""

    text: str = ""
    error: bool = False
    quit: bool = False


def diagnostics(found: Iterable[Diagnostic], color: bool) -> str:
    from ..render import render

    return "\n\n".join(render(d, color=color) for d in found)


def has_errors(found: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in found)


# ------------------------------------------------------------------------------------ values


def type_text(t: Type | None, schema) -> str:
    if t is None or t.is_unknown:
        return "unknown"
    if t.kind == "enum":
        decl = schema.enums.get(t.name)
        values = [v.value for v in decl.values] if decl is not None else []
        shown = ", ".join(values[:8]) + (", …" if len(values) > 8 else "")
        text = f"{t.name} (one of {shown})"
    elif t.kind == "event":
        text = "event (as a condition: it happened by the clock)"
    else:
        text = str(t)
    return text + (", may be missing" if t.optional else "")


def value_text(value: object, t: Type | None, currency: str | None = None) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if currency is not None:
        return f"{value} {currency}"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, Decimal) and t is not None and t.kind == "percent":
        return f"{(value * 100).normalize()}%"
    if isinstance(value, str):
        return value if t is not None and t.kind == "enum" else f'"{value}"'
    if isinstance(value, (list, tuple)):
        element = t.element if t is not None else None
        return "[" + ", ".join(value_text(v, element) for v in value) + "]"
    return str(value)


def duration_text(value: timedelta) -> str:
    """A duration as the language writes it (`2d`, `36h`, `90m`); seconds when minutes do not divide it."""
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{sign}{seconds // size}{unit}"
    return f"{sign}{seconds}s"


def counts_text(counts, at: datetime) -> str:
    text = f"true for {counts.true:,} of {counts.total:,} orders placed by {iso(at)}"
    rest = [f"false {counts.false:,}"] + ([f"missing data {counts.unknown:,}"] if counts.unknown else [])
    return f"{text} ({', '.join(rest)})"


# ------------------------------------------------------------------------------------- flows


def decision_summary(decisions: Sequence[Decision]) -> str:
    counts = Counter(d.decision if d.decision == "send" else f"{d.decision}:{d.reason}" for d in decisions)
    if not counts:
        return "no decisions"
    total = f"{len(decisions):,} decision{'s' if len(decisions) != 1 else ''}"
    return f"{total}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))


def decision_table(decisions: Sequence[Decision], limit: int) -> str:
    """order, customer, decision, channel, reason, send_at: at most `limit` rows, then a count."""
    several_flows = len({d.flow for d in decisions}) > 1
    several_steps = any(d.step for d in decisions)
    head = (["flow"] if several_flows else []) + (["step"] if several_steps else []) + \
        ["order", "customer", "decision", "channel", "reason", "send_at"]
    rows = []
    for d in decisions[:limit]:
        rows.append(([d.flow] if several_flows else []) + ([str(d.step + 1)] if several_steps else []) + [
            d.order_id or "-", d.customer_id, d.decision, d.channel or "-", d.reason, iso(d.send_at) or "-"])
    lines = table(head, rows)
    if len(decisions) > limit:
        lines.append(f"… {len(decisions) - limit:,} more ({limit} of {len(decisions):,} shown; "
                     "`:rows N` shows more)")
    return "\n".join(lines)


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]


def flow_line(plan, origin: str) -> str:
    trigger = plan.flow.trigger.span.text
    channels = sorted({c for s in plan.steps for c in s.channels})
    return (f"{plan.name}: {trigger}; purpose {plan.purpose}; via {', '.join(channels) or '(none)'}"
            f"; {len(plan.steps)} step{'s' if len(plan.steps) != 1 else ''}; {origin}")
