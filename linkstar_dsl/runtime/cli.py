"""`linkstar run`, `linkstar pause`, `linkstar resume` and `linkstar pauses`: the runner and its kill switch.

`run` checks the flows (a flow with errors never runs), opens the store, and ticks once
(`--once`) or every interval (`--every 1m`) until interrupted; each tick prints one line.  With
`--dry-run` it decides and renders against a scratch copy of the ledger and sends nothing.
Channels and rendering are configured in a TOML file (`--config`, default `linkstar.toml` when it
exists): `[channels]` as SPEC.md §11 describes, `[render]` for the sender and the links.
"""

from __future__ import annotations

import re
import sys
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

_EVERY = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_every(text: str) -> timedelta:
    match = _EVERY.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter(f"`{text}` is not an interval such as 30s, 1m or 1h")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _config(path: str | None) -> tuple[object | None, dict]:
    """(channels configuration or None, [render] table) from the configuration file."""
    if path is None:
        if not Path("linkstar.toml").is_file():
            return None, {}
        path = "linkstar.toml"
    file = Path(path)
    if not file.is_file():
        raise click.UsageError(f"{path}: no such configuration file")
    try:
        table = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"{path}: not valid TOML ({exc})") from None
    from ..adapters.engine import ChannelsConfig

    channels = ChannelsConfig.from_toml(file) if "channels" in table else None
    return channels, dict(table.get("render", {}))


def render_settings(table: dict, dry_run: bool):
    """`[render]` as settings; a dry run without one uses example values."""
    from .render_context import RenderSettings

    if not table:
        if dry_run:
            return RenderSettings.demo()
        raise click.UsageError("the configuration has no [render] table: messages need sender_name, "
                               "sender_address and shop_url (SPEC.md §7.10)")
    try:
        return RenderSettings.from_env(**table)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(f"[render]: {exc}") from None


def _program(flows):
    from .program import CompileError, compile_paths

    try:
        program = compile_paths(flows)
    except CompileError as exc:
        if exc.reports and any(r.errors for r in exc.reports):
            sys.stderr.write(str(exc) + "\n")
            raise SystemExit(1) from None
        raise click.UsageError(str(exc)) from None
    if not program.plans:
        raise click.UsageError("no flows to run in " + ", ".join(flows))
    return program


def tick_line(report) -> str:
    counts = report.counts()
    when = report.now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    if report.conflict:
        return f"{when}  another runner wrote these rows first; nothing claimed ({report.conflict})"
    decided = len(report.decisions)
    defers = sum(v for k, v in counts.items() if k.startswith("defer:"))
    skips = sum(v for k, v in counts.items() if k.startswith("skip:"))
    parts = [f"{decided} due", f"{counts.get('completed:sent', 0)} sent"]
    if counts.get("completed:retry"):
        parts.append(f"{counts['completed:retry']} to retry")
    if counts.get("completed:failed"):
        parts.append(f"{counts['completed:failed']} failed")
    if counts.get("completed:unknown"):
        parts.append(f"{counts['completed:unknown']} outcome unknown")
    parts.append(f"{defers} deferred")
    parts.append(f"{skips} skipped")
    why = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(counts.items())
                    if k.startswith(("defer:", "skip:")))
    line = f"{when}  " + ", ".join(parts) + (f" ({why})" if why else "")
    if report.recovered:
        line += f"; finished {report.recovered} sends left claimed by a stopped runner"
    if report.paused_flows:
        line += "; paused by policy: " + ", ".join(report.paused_flows)
    return line


@click.command("run")
@click.argument("flows", nargs=-1, required=True)
@click.option("--db", "db", required=True, help="The DuckDB store (its ledger is written).")
@click.option("--once", is_flag=True, help="Run one tick and exit (the default).")
@click.option("--every", "every", help="Tick at this interval until interrupted: 30s, 1m, 1h…")
@click.option("--dry-run", is_flag=True, help="Decide and render, but send nothing and write nothing.")
@click.option("--config", "config", help="Channels and rendering configuration (default: linkstar.toml if present).")
@click.option("--runner", "runner", default="default", show_default=True,
              help="The runner's name: it keeps its own place in time.")
@click.option("--at", "at", help="Run the tick as if the clock said this time (with --once).")
@click.option("--workers", "workers", type=int, default=1, show_default=True,
              help="Processes that render and send (2 or more starts that many dispatch workers).")
def run_command(flows, db, once, every, dry_run, config, runner, at, workers) -> None:
    """Evaluate the flows over the store and send what is due, through the configured channels."""
    import asyncio
    import signal

    from ..simulate_cli import parse_instant
    from ..store import StoreError
    from .engine import Engine, EngineSettings

    if once and every:
        raise click.UsageError("give --once or --every, not both")
    if at and every:
        raise click.UsageError("--at sets the clock of a single tick: use it with --once")
    if workers < 1:
        raise click.BadParameter(f"must be a whole number of at least 1, got {workers}", param_hint="--workers")
    interval = parse_every(every) if every else None
    when = parse_instant(at) if at else None
    if not Path(db).is_file():
        raise click.UsageError(f"{db}: no such database (create one with `linkstar generate --db {db}` "
                               "or `linkstar import`)")
    program = _program(flows)
    channels, render_table = _config(config)
    if channels is None and not dry_run:
        raise click.UsageError("no channels are configured: give --config FILE with a [channels] table "
                               "(SPEC.md §11), or use --dry-run")
    settings = render_settings(render_table, dry_run)
    engine = Engine(program, db, channels=channels, render_settings=settings, dry_run=dry_run,
                    settings=EngineSettings(runner=runner, workers=workers))

    async def main() -> None:
        from .dispatch_pool import PoolError

        try:
            await engine.start()
        except (StoreError, PoolError) as exc:
            raise click.ClickException(str(exc)) from None
        try:
            if engine.single_process:
                click.echo(engine.single_process)
            if engine.recovered:
                click.echo(f"finished {engine.recovered} sends left claimed by a stopped runner")
            if interval is None:
                report = await engine.tick(when)
                click.echo(tick_line(report))
                if dry_run:
                    _show_dry_run(engine.channels.messages)
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await engine.run(interval, stop, on_tick=lambda r: click.echo(tick_line(r)))
        finally:
            await engine.close()

    try:
        asyncio.run(main())
    except LookupError as exc:  # a provider named in the configuration that does not exist
        raise click.ClickException(str(exc)) from None


def _show_dry_run(messages) -> None:
    from ..adapters.masking import mask_recipient

    for m in messages:
        preview = _preview(m.content)
        click.echo(f"  would send {m.metadata.get('flow')} step {int(m.metadata.get('step', 0)) + 1} via {m.channel} "
                   f"to {mask_recipient(m.to)}: {preview}")


def _preview(content) -> str:
    text = getattr(content, "subject", None) or getattr(content, "body", None) or getattr(content, "alt_text", None) \
        or getattr(content, "name", None) or type(content).__name__
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return first[:80]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _store(db: str):
    from ..store import StoreError, open_store

    if not Path(db).is_file():
        raise click.UsageError(f"{db}: no such database")
    try:
        return open_store(db)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("pause")
@click.argument("scope", type=click.Choice(["flow", "channel"]))
@click.argument("name")
@click.option("--db", "db", required=True)
@click.option("--reason", "reason", required=True, help="Why: kept with the pause for the record.")
@click.option("--until", "until", help="End the pause on its own at this time.")
def pause_command(scope, name, db, reason, until) -> None:
    """Stop a flow or a channel now, without a redeploy: its messages wait until it is resumed."""
    from ..simulate_cli import parse_instant
    from .pauses import PauseError, pause

    con = _store(db)
    try:
        pause(con, scope, name, reason, now=_now(), until=parse_instant(until) if until else None)
    except PauseError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"paused {scope} {name}" + (f" until {until}" if until else "") + f": {reason}")


@click.command("resume")
@click.argument("scope", type=click.Choice(["flow", "channel"]))
@click.argument("name")
@click.option("--db", "db", required=True)
def resume_command(scope, name, db) -> None:
    """Let a paused flow or channel send again; the messages it held are re-checked and sent."""
    from .pauses import PauseError, resume

    con = _store(db)
    try:
        resume(con, scope, name, now=_now())
    except PauseError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"resumed {scope} {name}")


@click.command("pauses")
@click.option("--db", "db", required=True)
def pauses_command(db) -> None:
    """List the flows and channels paused now, with who paused them and why."""
    from .pauses import listing

    rows = listing(_store(db), _now())
    if not rows:
        click.echo("nothing is paused")
        return
    for r in rows:
        until = f" until {r['until']:%Y-%m-%d %H:%M}" if r["until"] else ""
        click.echo(f"{r['scope']} {r['name']}: paused {r['paused_at']:%Y-%m-%d %H:%M} by {r['source']}{until}: "
                   f"{r['reason']}")
