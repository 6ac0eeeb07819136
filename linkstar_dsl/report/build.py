"""From the counts of `queries` to the report: rows with rates, holdout lift, and alerts.

One row per flow, step and variant (the template a split arm sends; one variant when the step
does not split).  The holdout members of a step are the control group of every variant of that
step.  The alert uses the runtime's auto-pause policy (SPEC 7.9): more than 0.5% of a step's
messages followed by an opt-out or a complaint, over at least 200 sends.
"""

from __future__ import annotations

from collections import defaultdict

import attrs

from ..runtime.pauses import AutoPausePolicy
from .queries import Filters, Sources
from .stats import CONFIDENCE, Lift, lift, rate

FORMAT_VERSION = 1
#: The runtime's auto-pause figures (SPEC 7.9), which the alert shares.
POLICY = AutoPausePolicy()
#: The counts of a row, in the order the table and the JSON show them.
METRICS = ("sent", "delivered", "failed", "opened", "clicked", "replied", "unsubscribed", "complained", "converted")


@attrs.define
class Row:
    flow: str
    step: int  # 1-based, as in `simulate --format jsonl`
    variant: str | None
    counts: dict[str, int]
    stopped: int = 0  # messages followed by an opt-out or a complaint (either, counted once)
    send_failed: int = 0
    holdout: int = 0
    holdout_converted: int = 0
    lift: Lift | None = None

    def rates(self) -> dict[str, float | None]:
        sent = self.counts["sent"]
        out = {m: rate(self.counts[m], sent) for m in METRICS if m not in ("sent", "failed")}
        out["failed"] = rate(self.counts["failed"], sent + self.send_failed)
        return {m: out[m] for m in METRICS if m != "sent"}


@attrs.define
class Alert:
    flow: str
    step: int
    sent: int
    stopped: int

    @property
    def rate(self) -> float:
        return self.stopped / self.sent


@attrs.define
class Report:
    filters: Filters
    sources: Sources
    rows: list[Row]
    alerts: list[Alert]
    policy: AutoPausePolicy


def build(counts: list[dict], filters: Filters, sources: Sources,
          policy: AutoPausePolicy = POLICY) -> Report:
    rows: dict[tuple[str, int, str | None], Row] = {}
    control: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for c in counts:
        flow, step = c["flow"], int(c["step"]) + 1
        if c["kind"] == "holdout":
            control[(flow, step)][0] += c["messages"]
            control[(flow, step)][1] += c["converted"]
            continue
        row = rows.setdefault((flow, step, c["variant"]),
                              Row(flow, step, c["variant"], dict.fromkeys(METRICS, 0)))
        if c["kind"] == "sent":
            for metric in METRICS:
                if metric not in ("sent", "failed"):
                    row.counts[metric] += c[metric]
            row.counts["sent"] += c["messages"]
            row.counts["failed"] += c["bounced"]
            row.stopped += c["stopped"]
        else:  # failed: no channel took it
            row.counts["failed"] += c["messages"]
            row.send_failed += c["messages"]
    for flow, step in control:
        if not any(key[:2] == (flow, step) for key in rows):
            rows[(flow, step, None)] = Row(flow, step, None, dict.fromkeys(METRICS, 0))
    for row in rows.values():
        members, converted = control.get((row.flow, row.step), (0, 0))
        row.holdout, row.holdout_converted = members, converted
        row.lift = lift(row.counts["converted"], row.counts["sent"], converted, members)
    ordered = sorted(rows.values(), key=lambda r: (r.flow, r.step, r.variant or ""))
    return Report(filters, sources, ordered, _alerts(ordered, policy), policy)


def _alerts(rows: list[Row], policy: AutoPausePolicy) -> list[Alert]:
    steps: dict[tuple[str, int], Alert] = {}
    for row in rows:
        alert = steps.setdefault((row.flow, row.step), Alert(row.flow, row.step, 0, 0))
        alert.sent += row.counts["sent"]
        alert.stopped += row.stopped
    return [a for a in steps.values() if a.sent >= policy.min_sends and a.stopped / a.sent > policy.threshold]


def as_json(report: Report) -> dict:
    """The report as plain data; the keys are documented in SPEC.md ("Reports") and kept stable."""
    from ..gates import iso

    f = report.filters
    return {
        "format_version": FORMAT_VERSION,
        "flow": f.flow,
        "since": iso(f.since),
        "until": iso(f.until),
        "window_days": f.window.total_seconds() / 86400,
        "confidence": CONFIDENCE,
        "missing_sources": report.sources.missing(),
        "rows": [_row_json(r) for r in report.rows],
        "alerts": [{"flow": a.flow, "step": a.step, "sent": a.sent, "stopped": a.stopped, "rate": a.rate,
                    "threshold": report.policy.threshold, "min_sends": report.policy.min_sends}
                   for a in report.alerts],
    }


def _row_json(row: Row) -> dict:
    lifted = None
    if row.lift is not None:
        lifted = {"sent_rate": row.lift.treated_rate, "holdout_rate": row.lift.control_rate,
                  "difference": row.lift.difference, "low": row.lift.low, "high": row.lift.high,
                  "significant": row.lift.significant}
    return {"flow": row.flow, "step": row.step, "variant": row.variant, **row.counts,
            "rates": row.rates(),
            "holdout": {"members": row.holdout, "converted": row.holdout_converted,
                        "rate": rate(row.holdout_converted, row.holdout)},
            "lift": lifted}
