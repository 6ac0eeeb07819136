"""`linkstar serve`, `linkstar erase` and `linkstar consent grant|revoke`.

`serve` checks the flows (a flow with errors never runs), reads `linkstar.toml` (`[channels]`,
`[render]` and `[serve]`), and runs until SIGTERM or SIGINT, writing one JSON line per request and
per tick on standard error.  `erase` and `consent` change the store directly; while `serve` runs
on the same file DuckDB's lock refuses them, and the service's endpoints do the same work.
"""

from __future__ import annotations

import json
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import click

from ..schema import CHANNELS, PURPOSES

LEVELS = ("implied", "express", "written", "double_opt_in")


def _tables(path: str | None) -> tuple[object | None, dict, dict]:
    """(channels configuration or None, [render] table, [serve] table)."""
    if path is None:
        if not Path("linkstar.toml").is_file():
            return None, {}, {}
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
    return channels, dict(table.get("render", {})), dict(table.get("serve", {}))


@click.command("serve")
@click.argument("flows", nargs=-1, required=True)
@click.option("--db", "db", required=True, help="The DuckDB store (the service is its only writer).")
@click.option("--config", "config", help="Channels, rendering and [serve] settings (default: linkstar.toml if present).")
@click.option("--host", "host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", "port", type=click.IntRange(0, 65535), help="Port to listen on (default 8080; 0: any free port).")
@click.option("--every", "every", help="Tick at this interval when nothing arrives (default 1m).")
@click.option("--runner", "runner", default="default", show_default=True,
              help="The runner's name: it keeps its own place in time.")
def serve_command(flows, db, config, host, port, every, runner) -> None:
    """Run the flows as a service: the engine loop, webhooks and events in, unsubscribe links, metrics."""
    import asyncio
    import os
    import signal

    from ..adapters.secrets import Secrets
    from ..runtime.cli import _program, parse_every, render_settings
    from ..runtime.engine import EngineSettings
    from ..store import StoreError
    from .config import ConfigError, ServeConfig
    from .logs import install
    from .service import Service

    if not Path(db).is_file():
        raise click.UsageError(f"{db}: no such database (create one with `linkstar generate --db {db}` "
                               "or `linkstar import`)")
    program = _program(flows)
    channels, render_table, serve_table = _tables(config)
    if channels is None:
        raise click.UsageError("no channels are configured: give --config FILE with a [channels] table (SPEC.md §11)")
    settings = render_settings(render_table, dry_run=False)
    secrets = Secrets(os.environ, channels.secrets_file)
    try:
        serve_config = ServeConfig.load(serve_table, secrets.lookup, host=host, port=port,
                                        every=parse_every(every) if every else None)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    install(sys.stderr)
    try:
        service = Service(program, db, channels=channels, render_settings=settings, config=serve_config,
                          engine_settings=EngineSettings(runner=runner))
    except ValueError as exc:  # a webhook secret that cannot be used (a SendGrid key that is not a key)
        raise click.UsageError(str(exc)) from None

    async def main() -> None:
        try:
            await service.start()
        except StoreError as exc:
            raise click.ClickException(f"{exc}; is another linkstar process using it?") from None
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {serve_config.host}:{serve_config.port} ({exc.strerror})") \
                from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await service.stop()

    try:
        asyncio.run(main())
    except LookupError as exc:  # a provider or a provider's secret named in the configuration is missing
        raise click.ClickException(str(exc)) from None


def _now() -> datetime:
    return datetime.now(UTC)


def _open(db: str):
    from ..store import StoreError, open_store

    if not Path(db).is_file():
        raise click.UsageError(f"{db}: no such database")
    try:
        return open_store(db)
    except StoreError as exc:
        raise click.ClickException(f"{exc}; while `linkstar serve` runs on it, use its /v1/customers "
                                   "endpoints instead") from None


def _in_transaction(con, work):
    con.execute("BEGIN TRANSACTION")
    try:
        result = work(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


@click.command("erase")
@click.option("--db", "db", required=True)
@click.option("--customer", "customer", required=True, help="The customer's id in the store.")
@click.option("--reason", "reason", help="Why (kept with the record of the erasure): e.g. the request's reference.")
def erase_command(db, customer, reason) -> None:
    """Erase a customer's personal data on request (GDPR, CCPA), keeping the ledger's evidence."""
    from .erasure import erase

    con = _open(db)
    try:
        result = _in_transaction(con, lambda c: erase(c, customer, _now(), reason, "cli"))
    finally:
        con.close()
    if result is None:
        click.echo(f"linkstar: no customer {customer} in {db}: nothing erased", err=True)
        raise SystemExit(1)
    if result.already:
        click.echo(f"customer {customer} was already erased on {result.erased_at:%Y-%m-%d %H:%M}Z ({result.pseudonym})")
        return
    cleared = ", ".join(f"{table} {n}" for table, n in sorted(result.cleared.items())) or "nothing to clear"
    click.echo(f"erased customer {customer} ({result.pseudonym}): {cleared}; suppressed on every channel")


@click.group("consent")
def consent_group() -> None:
    """Record a customer's consent, or its withdrawal, with its evidence."""


def _consent_options(command):
    options = [
        click.option("--db", "db", required=True),
        click.option("--customer", "customer", required=True),
        click.option("--channel", "channel", required=True, type=click.Choice(CHANNELS)),
        click.option("--purpose", "purpose", required=True, type=click.Choice(PURPOSES)),
        click.option("--source", "source", default="cli", show_default=True, help="Where the consent was given."),
        click.option("--evidence", "evidence", help="A JSON object: form text and version, IP, message id…"),
        click.option("--at", "at", help="When (default: now)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _change(action, db, customer, channel, purpose, source, evidence, at, level="express") -> None:
    from ..simulate_cli import parse_instant
    from .optout import ConsentChange, change_consent
    from .refusal import Refusal

    try:
        proof = json.loads(evidence) if evidence else {}
    except ValueError:
        raise click.BadParameter("not valid JSON", param_hint="--evidence") from None
    if not isinstance(proof, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--evidence")
    change = ConsentChange(action, customer, channel, purpose, level, source, proof,
                           parse_instant(at) if at else None)
    con = _open(db)
    try:
        result = _in_transaction(con, lambda c: change_consent(c, change, _now()))
    except Refusal as refusal:
        click.echo(f"linkstar: {refusal.message}", err=True)
        raise SystemExit(1) from None
    finally:
        con.close()
    if action == "grant":
        lifted = f"; lifted {result['lifted']} suppression(s) the customer's own opt-out made" if result["lifted"] else ""
        click.echo(f"granted {level} consent to {purpose} messages on {channel} for {customer}{lifted}")
    else:
        click.echo(f"revoked {result['revoked']} consent(s) to {purpose} messages on {channel} for {customer}")


@consent_group.command("grant")
@_consent_options
@click.option("--level", "level", type=click.Choice(LEVELS), default="express", show_default=True)
def grant_command(db, customer, channel, purpose, source, evidence, at, level) -> None:
    """Record consent; it lifts the suppressions the customer's own opt-out made on that channel."""
    _change("grant", db, customer, channel, purpose, source, evidence, at, level)


@consent_group.command("revoke")
@_consent_options
def revoke_command(db, customer, channel, purpose, source, evidence, at) -> None:
    """Record that the customer withdrew consent to a purpose on a channel."""
    _change("revoke", db, customer, channel, purpose, source, evidence, at)
