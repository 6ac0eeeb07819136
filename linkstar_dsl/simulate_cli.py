"""`linkstar simulate`: the command-line face of `simulate.py`.

Checks the flows first (a flow with errors is never simulated), opens the store read-only,
replays the clock and prints a timeline per day and flow, or one JSON record per decision.
Only click is imported at start-up; the engine loads when the command runs.
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


def format_timeline(decisions) -> str:
    from .simulate import timeline

    rows = timeline(decisions)
    if not rows:
        return "no message came due in this period\n"
    flow_width = max(len(flow) for _, flow, _ in rows)
    lines = [f"{'day':<10}  {'flow':<{flow_width}}  {'send':>5}  {'defer':>5}  {'skip':>5}  held back by"]
    for day, flow, counts in rows:
        sends = counts.get("send", 0)
        defers = sum(v for k, v in counts.items() if k.startswith("defer"))
        skips = sum(v for k, v in counts.items() if k.startswith("skip"))
        why = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(counts.items()) if ":" in k)
        lines.append(f"{day:<10}  {flow:<{flow_width}}  {sends:>5}  {defers:>5}  {skips:>5}  {why}")
    totals: dict[str, int] = {}
    for d in decisions:
        key = d.decision if d.decision == "send" else f"{d.decision}:{d.reason}"
        totals[key] = totals.get(key, 0) + 1
    channels: dict[str, int] = {}
    for d in decisions:
        if d.decision == "send":
            channels[d.channel] = channels.get(d.channel, 0) + 1
    lines.append("")
    lines.append("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    lines.append("sends by channel: " + (", ".join(f"{k} {v}" for k, v in sorted(channels.items())) or "none"))
    return "\n".join(lines) + "\n"


@click.command("simulate")
@click.argument("flows", nargs=-1, required=True)
@click.option("--db", "db", required=True, help="The DuckDB store to read (never written).")
@click.option("--from", "start", required=True, help="Start of the period (ISO date or date-time; UTC unless an offset is given).")
@click.option("--to", "end", required=True, help="End of the period.")
@click.option("--step", "step", default="1h", show_default=True, help="Clock step: 15m, 1h, 1d…")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def simulate_command(flows, db, start, end, step, fmt) -> None:
    """Replay the clock over a period with every gate, and show what would be sent, deferred or skipped."""
    from pathlib import Path

    start_at, end_at, tick = parse_instant(start), parse_instant(end), parse_step(step)
    if end_at <= start_at:
        raise click.UsageError("--to must be after --from")
    if not Path(db).is_file():
        raise click.UsageError(f"{db}: no such database (create one with `linkstar generate --db {db}` "
                               "or `linkstar import`)")
    plans, schema = load_plans(flows)
    import duckdb

    from .simulate import Simulation, scratch

    try:
        con = scratch(db)
    except duckdb.Error as exc:
        raise click.UsageError(f"{db}: cannot be read as a linkstar store ({str(exc).splitlines()[0]})") from None
    decisions = Simulation(con, plans, schema).run(start_at, end_at, tick)
    if fmt == "jsonl":
        for d in decisions:
            sys.stdout.write(json.dumps(d.record(), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_timeline(decisions))


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
    subject = order_id or customer_id
    traces = explain(con, plans, schema, subject, when, flow_name)
    label = f"order {order_id}" if order_id else f"customer {customer_id}"
    sys.stdout.write(render(traces, label, when))
