"""`linkstar simulate`: the command-line face of `simulate.py`.

Checks the flows first (a flow with errors is never simulated), opens the store read-only,
replays the clock and prints a timeline per day and flow, or one JSON record per decision.  On a
terminal the timeline is a rich table and a long replay shows a progress bar on standard error;
in a pipe or a file, or with `NO_COLOR` set, it is plain aligned text.  `--plot FILE.html` also
writes the charts of `plot.py`.  Only click is imported at start-up; the engine loads when the
command runs.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone

import click

_STEP = re.compile(r"^(\d+)([mhd])$")


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"`{text}` is not a date or date-time such as 2026-09-01 or 2026-09-01T09:00") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def parse_step(text: str) -> timedelta:
    match = _STEP.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter(f"`{text}` is not a step such as 15m, 1h or 1d")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(minutes=amount) if unit == "m" else timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


def load_plans(paths: tuple[str, ...]):
    """(plans, schema) for every flow in the files, or exit 1 after printing their errors."""
    from .runtime.program import CompileError, compile_paths

    try:
        program = compile_paths(paths)
    except CompileError as exc:
        if not exc.reports:
            raise click.UsageError(str(exc)) from None
        if not any(r.errors for r in exc.reports):
            raise click.UsageError(str(exc)) from None
        sys.stderr.write(str(exc) + "\n")
        raise SystemExit(1) from None
    if not program.plans:
        raise click.UsageError("no flows to simulate in " + ", ".join(paths))
    return list(program.plans), program.schema


def _timeline_rows(decisions) -> list[tuple[str, str, int, int, int, str]]:
    """(day, flow, sends, defers, skips, held back by) per day and flow."""
    from .simulate import timeline

    rows = []
    for day, flow, counts in timeline(decisions):
        sends = counts.get("send", 0)
        defers = sum(v for k, v in counts.items() if k.startswith("defer"))
        skips = sum(v for k, v in counts.items() if k.startswith("skip"))
        why = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(counts.items()) if ":" in k)
        rows.append((day, flow, sends, defers, skips, why))
    return rows


def _totals(decisions) -> tuple[dict[str, int], dict[str, int]]:
    """(decisions by outcome and reason, sends by channel), each sorted by name."""
    totals: dict[str, int] = {}
    channels: dict[str, int] = {}
    for d in decisions:
        key = d.decision if d.decision == "send" else f"{d.decision}:{d.reason}"
        totals[key] = totals.get(key, 0) + 1
        if d.decision == "send":
            channels[d.channel] = channels.get(d.channel, 0) + 1
    return dict(sorted(totals.items())), dict(sorted(channels.items()))


def format_timeline(decisions) -> str:
    rows = _timeline_rows(decisions)
    if not rows:
        return "no message came due in this period\n"
    flow_width = max(len(flow) for _, flow, *_ in rows)
    lines = [f"{'day':<10}  {'flow':<{flow_width}}  {'send':>5}  {'defer':>5}  {'skip':>5}  held back by"]
    for day, flow, sends, defers, skips, why in rows:
        lines.append(f"{day:<10}  {flow:<{flow_width}}  {sends:>5}  {defers:>5}  {skips:>5}  {why}")
    totals, channels = _totals(decisions)
    lines.append("")
    lines.append("decisions: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    lines.append("sends by channel: " + (", ".join(f"{k} {v}" for k, v in channels.items()) or "none"))
    return "\n".join(lines) + "\n"


def print_timeline(decisions, console) -> None:
    """The timeline as rich tables: per day and flow, then the totals per flow and per channel."""
    from rich.table import Table
    from rich.text import Text

    rows = _timeline_rows(decisions)
    if not rows:
        console.print("no message came due in this period")
        return
    table = Table(title=Text("what would happen, per day and flow", style="italic"), title_justify="left",
                  header_style="bold", show_footer=True)
    sums = [sum(r[i] for r in rows) for i in (2, 3, 4)]
    table.add_column("day", "total", no_wrap=True)
    table.add_column("flow", no_wrap=True)
    for name, total, style in zip(("send", "defer", "skip"), sums, ("green", "yellow", "red")):
        table.add_column(name, f"{total:,}", justify="right", style=style)
    table.add_column("held back by", style="dim")
    previous = None
    for day, flow, sends, defers, skips, why in rows:
        if previous is not None and day != previous:
            table.add_section()
        table.add_row(Text(day if day != previous else ""), Text(flow), f"{sends:,}", f"{defers:,}", f"{skips:,}",
                      Text(why))
        previous = day
    console.print(table)
    totals, channels = _totals(decisions)
    summary = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    summary.add_column("decisions")
    summary.add_column("", justify="right")
    summary.add_column("sends by channel")
    summary.add_column("", justify="right")
    left, right = list(totals.items()), list(channels.items()) or [("none", "")]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ("", "")
        b = right[i] if i < len(right) else ("", "")
        summary.add_row(Text(a[0]), f"{a[1]:,}" if a[1] != "" else "", Text(b[0]), f"{b[1]:,}" if b[1] != "" else "")
    console.print(summary)


@click.command("simulate")
@click.argument("flows", nargs=-1, required=True)
@click.option("--db", "db", required=True, help="The DuckDB store to read (never written).")
@click.option("--from", "start", required=True, help="Start of the period (ISO date or date-time; UTC unless an offset is given).")
@click.option("--to", "end", required=True, help="End of the period.")
@click.option("--step", "step", default="1h", show_default=True, help="Clock step: 15m, 1h, 1d…")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.option("--plot", "plot", metavar="FILE",
              help="Also write charts of the sends per day by flow and channel, and what was held back: "
                   "FILE.html (self-contained), or FILE.png when matplotlib is installed.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Rich tables and colour; auto: only on a terminal and when NO_COLOR is unset.")
def simulate_command(flows, db, start, end, step, fmt, plot, color) -> None:
    """Replay the clock over a period with every gate, and show what would be sent, deferred or skipped."""
    from pathlib import Path

    start_at, end_at, tick = parse_instant(start), parse_instant(end), parse_step(step)
    if end_at <= start_at:
        raise click.UsageError("--to must be after --from")
    if not Path(db).is_file():
        raise click.UsageError(f"{db}: no such database (create one with `linkstar generate --db {db}` "
                               "or `linkstar import`)")
    if plot is not None:
        from .plot import PlotError, check_target

        try:
            check_target(plot)
        except PlotError as exc:
            raise click.UsageError(str(exc)) from None
    plans, schema = load_plans(flows)
    import duckdb

    from .simulate import Simulation, scratch

    try:
        con = scratch(db)
    except duckdb.Error as exc:
        raise click.UsageError(f"{db}: cannot be read as a linkstar store ({str(exc).splitlines()[0]})") from None
    _require_fields(plans, con, db)
    decisions = _run(Simulation(con, plans, schema), start_at, end_at, tick)
    if fmt == "jsonl":
        for d in decisions:
            sys.stdout.write(json.dumps(d.record(), ensure_ascii=False) + "\n")
    else:
        from .report.terminal import console, wants_rich

        if wants_rich(color, sys.stdout):
            print_timeline(decisions, console(sys.stdout))
        else:
            sys.stdout.write(format_timeline(decisions))
    if plot is not None:
        from .plot import PlotError, write

        try:
            write(plot, decisions, start_at, end_at)
        except PlotError as exc:
            raise click.ClickException(str(exc)) from None
        sys.stderr.write(f"wrote {plot}\n")


def _require_fields(plans, con, db: str) -> None:
    """Refuse, in one message, flows that read fields the store's tables do not hold."""
    from .runtime.store_fields import describe, missing_fields

    missing = missing_fields(plans, con)
    if missing:
        raise click.ClickException(describe(missing, db))


#: Replays with at least this many clock steps show a progress bar (on a terminal).
PROGRESS_FROM = 48


def _run(simulation, start: datetime, end: datetime, tick: timedelta):
    """Run the simulation, with a progress bar on standard error when it is a terminal."""
    from .report.terminal import is_terminal

    steps = -(-(end - start) // tick)
    if steps < PROGRESS_FROM or not is_terminal(sys.stderr):
        return simulation.run(start, end, tick)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("simulating {task.fields[at]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("simulate", total=steps, at=f"{start:%Y-%m-%d %H:%M}")
        return simulation.run(start, end, tick,
                              progress=lambda now: bar.update(task, advance=1, at=f"{now:%Y-%m-%d %H:%M}"))


@click.command("explain")
@click.argument("flows", nargs=-1, required=True)
@click.option("--db", "db", required=True, help="The DuckDB store to read (never written).")
@click.option("--order", "order_id", help="The order to explain.")
@click.option("--customer", "customer_id", help="The customer to explain (customer-event flows).")
@click.option("--flow", "flow_name", help="Only this flow.")
@click.option("--at", "at", help="The time to evaluate at (default: now).")
def explain_command(flows, db, order_id, customer_id, flow_name, at) -> None:
    """Why did (or didn't) this order get this message? Every gate, with the values behind it."""
    from pathlib import Path

    if bool(order_id) == bool(customer_id):
        raise click.UsageError("give exactly one of --order ID or --customer ID")
    when = parse_instant(at) if at else datetime.now(timezone.utc)
    if not Path(db).is_file():
        raise click.UsageError(f"{db}: no such database")
    plans, schema = load_plans(flows)
    if flow_name is not None and flow_name not in {p.name for p in plans}:
        from .suggest import did_you_mean

        guess = did_you_mean(flow_name, [p.name for p in plans])
        raise click.UsageError(f"no flow named {flow_name}" + (f"; did you mean {guess}?" if guess else ""))
    from .explain import explain, render
    from .simulate import scratch

    con = scratch(db)
    _require_fields(plans, con, db)
    subject = order_id or customer_id
    traces = explain(con, plans, schema, subject, when, flow_name)
    label = f"order {order_id}" if order_id else f"customer {customer_id}"
    sys.stdout.write(render(traces, label, when))
