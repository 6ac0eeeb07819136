"""The `linkstar report` command: read the store, build the report, print it.

Only click is imported at start-up; DuckDB and rich load when the command runs.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta

import click

_WINDOW = re.compile(r"^(\d+)([hdw])$")


def parse_window(text: str) -> timedelta:
    match = _WINDOW.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter(f"`{text}` is not a window such as 48h, 7d or 2w", param_hint="--window")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount * (7 if unit == "w" else 1))


@click.command("report")
@click.option("--db", "db", required=True, help="The DuckDB store to read (never written).")
@click.option("--flow", "flow", help="Only this flow.")
@click.option("--since", "since", help="Only messages sent (or due, for holdout members) at or after this time.")
@click.option("--until", "until", help="Only messages before this time.")
@click.option("--window", "window", default="7d", show_default=True,
              help="Attribution window: events, opt-outs and orders this long after a message count for it.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Rich tables and colour; auto: only on a terminal and when NO_COLOR is unset.")
def report_command(db, flow, since, until, window, fmt, color) -> None:
    """Per flow, step and A/B variant: sent, delivered, failed, engagement, opt-outs and conversions,
    with the holdout's lift and the unsubscribe-rate alert."""
    import duckdb

    from ..simulate_cli import parse_instant
    from .build import as_json, build
    from .queries import Filters, ReportError, counts, flows, open_read_only, sources
    from .table import render_plain, render_rich
    from .terminal import console, wants_rich

    filters = Filters(flow=flow, since=parse_instant(since) if since else None,
                      until=parse_instant(until) if until else None, window=parse_window(window))
    if filters.since and filters.until and filters.until <= filters.since:
        raise click.UsageError("--until must be after --since")
    try:
        con = open_read_only(db)
    except ReportError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        src = sources(con)
        if flow is not None and flow not in flows(con):
            raise click.UsageError(_unknown_flow(flow, flows(con)))
        report = build(counts(con, src, filters), filters, src)
    except ReportError as exc:
        raise click.UsageError(f"{db}: {exc}") from None
    except duckdb.Error as exc:
        raise click.UsageError(f"{db}: cannot be read as a linkstar store ({str(exc).strip().splitlines()[0]})") from None
    finally:
        con.close()
    if fmt == "json":
        sys.stdout.write(json.dumps(as_json(report), ensure_ascii=False, indent=2) + "\n")
    elif wants_rich(color, sys.stdout):
        render_rich(report, console(sys.stdout))
    else:
        sys.stdout.write(render_plain(report))


def _unknown_flow(name: str, known: list[str]) -> str:
    from ..suggest import did_you_mean

    if not known:
        return f"no flow named {name} in the ledger (it is empty)"
    guess = did_you_mean(name, known)
    return f"no flow named {name} in the ledger" + (f"; did you mean {guess}?" if guess else "")
