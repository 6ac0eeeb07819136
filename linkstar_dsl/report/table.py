"""`linkstar report` for people: the messages table, the holdout lift and the alerts.

The same three parts in two dresses: rich tables on a terminal, aligned plain text elsewhere.
"""

from __future__ import annotations

from .build import METRICS, Report, Row
from .terminal import plain_table

HEADERS = ("flow", "step", "variant", "sent", "delivered", "failed", "opened", "clicked", "replied", "unsub",
           "complaint", "converted")
LIFT_HEADERS = ("flow", "step", "variant", "sent converted", "holdout converted", "lift", "95% CI", "")


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def points(value: float) -> str:
    """A difference of rates in percentage points, signed."""
    return f"{value * 100:+.1f} pp"


def _cells(row: Row, joiner: str) -> list[str]:
    rates = row.rates()
    cells = [row.flow, str(row.step), row.variant or "-", f"{row.counts['sent']:,}"]
    cells += [f"{row.counts[m]:,}{joiner}{percent(rates[m])}" for m in METRICS if m != "sent"]
    return cells


def _lift_cells(row: Row) -> list[str] | None:
    if not row.holdout:
        return None
    sent = f"{row.counts['converted']:,}/{row.counts['sent']:,} {percent(row.lift.treated_rate if row.lift else None)}"
    held = f"{row.holdout_converted:,}/{row.holdout:,} {percent(row.holdout_converted / row.holdout)}"
    if row.lift is None:
        return [row.flow, str(row.step), row.variant or "-", sent, held, "-", "-", "nothing sent"]
    lift = row.lift
    verdict = "significant" if lift.significant else "not significant"
    return [row.flow, str(row.step), row.variant or "-", sent, held, points(lift.difference),
            f"[{points(lift.low)}, {points(lift.high)}]", verdict]


def _heading(report: Report) -> str:
    f = report.filters
    parts = [f"attribution window {f.window.total_seconds() / 86400:g}d"]
    if f.flow:
        parts.insert(0, f"flow {f.flow}")
    if f.since:
        parts.append(f"since {f.since:%Y-%m-%d %H:%M}")
    if f.until:
        parts.append(f"until {f.until:%Y-%m-%d %H:%M}")
    return "messages per flow, step and variant (" + ", ".join(parts) + ")"


def _alert_lines(report: Report) -> list[str]:
    limit = f"{report.policy.threshold:.2%} over at least {report.policy.min_sends} sends"
    if not report.alerts:
        return [f"no unsubscribe-rate alert (limit: {limit})"]
    return [f"ALERT {a.flow} step {a.step}: {a.stopped:,} of {a.sent:,} messages ({a.rate:.2%}) were followed by an "
            f"opt-out or a complaint; limit {limit} (the runner pauses such a flow, SPEC 7.9)"
            for a in report.alerts]


def _notes(report: Report) -> list[str]:
    missing = report.sources.missing()
    return [f"not in this store, counted as none: {', '.join(missing)}"] if missing else []


def render_plain(report: Report) -> str:
    if not report.rows:
        return "no messages sent, failed or held out in this period\n"
    right = set(range(3, len(HEADERS)))
    lines = [_heading(report)]
    lines += plain_table(HEADERS, [_cells(r, " ") for r in report.rows], right | {1})
    lifts = [c for c in (_lift_cells(r) for r in report.rows) if c]
    lines.append("")
    if lifts:
        lines.append("holdout lift (conversion of sent minus holdout members)")
        lines += plain_table(LIFT_HEADERS, lifts, {1, 3, 4, 5})
    else:
        lines.append("no holdout members: add `holdout 10%` to a flow to measure its lift")
    lines.append("")
    lines += _alert_lines(report)
    lines += _notes(report)
    return "\n".join(lines) + "\n"


def render_rich(report: Report, console) -> None:
    from rich.table import Table
    from rich.text import Text

    if not report.rows:
        console.print("no messages sent, failed or held out in this period")
        return
    table = Table(title=Text(_heading(report), style="italic"), title_justify="left", header_style="bold")
    for i, name in enumerate(HEADERS):
        table.add_column(name, justify="right" if i == 1 or i >= 3 else "left", no_wrap=i < 3)
    for row in report.rows:
        cells = _cells(row, "\n")
        table.add_row(*(Text(c) for c in cells[:4]), *(_dim_second_line(c) for c in cells[4:]))
    console.print(table)
    lifts = [c for c in (_lift_cells(r) for r in report.rows) if c]
    if lifts:
        lift_table = Table(title="holdout lift (conversion of sent minus holdout members)", title_justify="left",
                           header_style="bold")
        for i, name in enumerate(LIFT_HEADERS):
            lift_table.add_column(name, justify="right" if i in (1, 3, 4, 5) else "left")
        for cells in lifts:
            style = "green" if cells[-1] == "significant" else "dim"
            lift_table.add_row(*(Text(c) for c in cells[:-1]), Text(cells[-1], style=style))
        console.print(lift_table)
    else:
        console.print("no holdout members: add `holdout 10%` to a flow to measure its lift", markup=False)
    for line in _alert_lines(report):
        console.print(line, style="bold red" if line.startswith("ALERT") else "green", markup=False)
    for line in _notes(report):
        console.print(line, style="yellow", markup=False)


def _dim_second_line(cell: str):
    from rich.text import Text

    count, _, share = cell.partition("\n")
    text = Text(count)
    text.append("\n" + share, style="dim")
    return text
