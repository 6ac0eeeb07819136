"""`Service`: the engine loop and the HTTP server in one process, over one DuckDB database.

    service = Service(program, "shop.duckdb", channels=ChannelsConfig.from_toml("linkstar.toml"),
                      render_settings=RenderSettings.from_env(**render_table), config=ServeConfig(...))
    await service.start()          # store, engine (finishing sends a stopped runner left claimed),
                                   # writer, tick loop, listening socket
    ...
    await service.stop()           # graceful: see below

DuckDB lets one process write a file, so everything shares one database instance: the engine
ticks on a cursor of it, the writer commits the inbound requests on another, `/healthz` and the
preference page read on a third, all on the event loop's thread.

`stop()` stops listening, lets the requests in progress finish (each is committed before it is
answered), lets the tick in progress finish (its sends complete and are written to the ledger),
writes what is still waiting, and closes.  Nothing is left claimed-but-unsent; if a tick failed
half way and left claims, the count is logged and the next start finishes them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
from aiohttp import web

from ..runtime.engine import Engine, EngineSettings, utc_now
from ..store import open_store
from . import erasure, ingest, optout, shopify, webhooks
from .channels import Blocklist, GuardedChannels
from .config import ServeConfig
from .logs import event
from .metrics import ServiceMetrics
from .refusal import Refusal
from .ticker import TickLoop
from .writer import Executor, Writer

log = logging.getLogger("linkstar.serve")


class Service:
    def __init__(self, program, db: str | Path | duckdb.DuckDBPyConnection, *, channels, render_settings,
                 config: ServeConfig | None = None, clock: Callable[[], datetime] = utc_now,
                 environ=None, engine_settings: EngineSettings | None = None) -> None:
        self.program = program
        self.db = db
        self.config = config = config or ServeConfig()
        self.clock = clock
        self.render_settings = render_settings
        self.link_secret = render_settings.secret
        self.sender = render_settings.sender_name
        self._channels_arg = channels
        self._environ = environ
        self._engine_settings = engine_settings or EngineSettings()
        self.metrics = ServiceMetrics()
        self.event_subjects = {name: decl.subject.value for name, decl in program.schema.events.items()}
        self.receivers = webhooks.receivers(config)
        self.blocklist = Blocklist()
        self.stopping = False
        self.url: str | None = None
        self._started_at = time.monotonic()
        self._last_tick_wall: float | None = None
        self._owned: list = []
        self.con = self.runner = self.writer = self.engine = None

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._abort()
            raise

    async def _abort(self) -> None:
        """Close what a failed start opened."""
        for name in ("runner", "writer", "engine"):
            part = getattr(self, name, None)
            if part is not None:
                with contextlib.suppress(Exception):
                    await (part.cleanup() if name == "runner" else part.close())
        for resource in reversed(self._owned):
            with contextlib.suppress(Exception):
                await resource.close()
        if getattr(self, "con", None) is not None and not isinstance(self.db, duckdb.DuckDBPyConnection):
            self.con.close()

    async def _start(self) -> None:
        from ..importers.tables import store_tables

        self.con = self.db if isinstance(self.db, duckdb.DuckDBPyConnection) else open_store(self.db)
        self.reader = self.con.cursor()
        self.reader.execute("SET TimeZone = 'UTC'")
        self.tables = store_tables(self.reader)
        self._load_blocklist()
        inner = await self._open_channels()
        self.channels = GuardedChannels(inner, self.blocklist, self.metrics)
        self.engine = Engine(self.program, self.con, channels=self.channels, render_settings=self.render_settings,
                             clock=self.clock, settings=self._engine_settings)
        await self.engine.start()
        if self.engine.recovered:
            event(log, "recovered", sends=self.engine.recovered)
        self.writer = Writer(self.con, self._executors(), self.clock, on_commit=self._committed,
                             on_batch=self.metrics.write_batch.observe)
        self.writer.start()
        self.ticks = TickLoop(self.engine, self.config.every, self.config.debounce, on_tick=self._ticked,
                              on_error=lambda exc: self.metrics.ticks.inc("error"))
        self._gauges()
        self.runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=self.config.shutdown_timeout)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.host, self.config.port)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        self.ticks.start()
        if self.render_settings.uses_demo_secret:
            event(log, "demo-link-secret", logging.WARNING,
                  message="unsubscribe links are signed with the public demo secret: set LINKSTAR_LINK_SECRET")
        event(log, "listening", url=self.url, flows=[p.name for p in self.program.plans],
              every=self.config.every.total_seconds(), endpoints=sorted(self.receivers))

    async def stop(self) -> None:
        """Graceful: stop listening, finish requests and the tick in progress, write what waits."""
        if self.stopping:
            return
        self.stopping = True
        event(log, "stopping", in_tick=self.ticks.in_tick, pending_writes=self.writer.pending)
        self.ticks.stop_soon()
        await self.runner.cleanup()
        await self.ticks.stop()
        await self.writer.close()
        left = self.reader.execute("SELECT count(*) FROM ledger WHERE status = 'claimed' AND claimed_by = ?",
                                   [self.engine.token]).fetchone()[0]
        await self.engine.close()
        for resource in reversed(self._owned):
            await resource.close()
        self.reader.close()
        if not isinstance(self.db, duckdb.DuckDBPyConnection):
            self.con.execute("CHECKPOINT")
            self.con.close()
        event(log, "stopped", ticks=self.ticks.ticks, claimed_left=left)

    def _app(self) -> web.Application:
        from .app import make_app

        return make_app(self)

    async def _open_channels(self):
        channels = self._channels_arg
        if channels is None:
            raise ValueError("no channels configured: give a [channels] configuration")
        if hasattr(channels, "send"):
            return channels
        from ..adapters.engine import ChannelEngine

        engine = ChannelEngine(channels, environ=self._environ)
        await engine.start()
        self._owned.append(engine)
        return engine

    def _load_blocklist(self) -> None:
        self.blocklist.purposes |= optout.purpose_opt_outs(self.reader)
        self.blocklist.customers |= {c for (c,) in self.reader.execute("SELECT customer_id FROM erasures").fetchall()}

    # -- writes -------------------------------------------------------------------------------------

    def _executors(self) -> dict[str, Executor]:
        events = Executor(ingest.executor(self.tables), threaded=True)

        def each(write):
            def run(cur, payloads, now):
                results = []
                for payload in payloads:
                    try:
                        results.append(write(cur, payload, now))
                    except Refusal as refusal:  # checked before it wrote anything
                        results.append(refusal)
                return results
            return Executor(run)

        return {
            "events:orders": events, "events:customers": events,
            "shopify": Executor(shopify.executor(self.tables)),
            "feedback": Executor(webhooks.executor(), own_transaction=True),
            "unsubscribe": each(lambda cur, opt, now: optout.unsubscribe(cur, opt, now)),
            "preferences": each(lambda cur, p, now: optout.save_preferences(cur, p[0], p[1], p[2], now)),
            "erase": each(lambda cur, p, now: erasure.erase(cur, p[0], now, p[1], "api")),
            "consent": each(lambda cur, change, now: optout.change_consent(cur, change, now)),
        }

    def _committed(self, kind: str, payloads: list, results: list) -> None:
        """After a commit: wake the engine for new events, keep the blocklist in step."""
        wake = False
        for payload, result in zip(payloads, results):
            if isinstance(result, Refusal):
                continue
            if kind.startswith("events:"):
                wake |= bool(result.stored)
            elif kind == "shopify":
                wake |= not result.duplicate and result.action in ("order", "refund")
                if result.action == "redact":
                    self.blocklist.customers.update(result.detail.get("erased", ()))
            elif kind == "feedback":
                wake |= bool(result.customer_events)
            elif kind == "unsubscribe":
                self.blocklist.channels.add((payload.customer_id, payload.channel))
            elif kind == "preferences":
                self._preferences_changed(payload[0].customer_id, result)
            elif kind == "erase" and result is not None:
                self.blocklist.customers.add(result.customer_id)
            elif kind == "consent":
                key = (payload.customer_id, payload.channel, payload.purpose)
                if payload.action == "revoke":
                    self.blocklist.purposes.add(key)
                else:
                    self.blocklist.purposes.discard(key)
                    self.blocklist.channels.discard(key[:2])
        if wake:
            self.ticks.wake()

    def _preferences_changed(self, customer_id: str, changed: dict) -> None:
        for choice in changed["off"]:
            channel, _, purpose = choice.partition(":")
            if purpose:
                self.blocklist.purposes.add((customer_id, channel, purpose))
            else:
                self.blocklist.channels.add((customer_id, channel))
        for choice in changed["on"]:
            channel, _, purpose = choice.partition(":")
            if purpose:
                self.blocklist.purposes.discard((customer_id, channel, purpose))
            else:
                self.blocklist.channels.discard((customer_id, channel))

    # -- ticks, health, metrics ---------------------------------------------------------------------

    def _ticked(self, report, seconds: float) -> None:
        self._last_tick_wall = time.monotonic()
        self.metrics.record_tick(report, seconds)
        counts = report.counts()
        event(log, "tick", at=report.now.isoformat(), seconds=round(seconds, 4), due=len(report.decisions),
              sent=report.sent, conflict=report.conflict, counts=dict(sorted(counts.items())))

    async def tick(self, now: datetime | None = None):
        """One tick now, in turn with the loop's (for tests and operators)."""
        return await self.ticks.tick(now)

    def claimed(self) -> int:
        return self.reader.execute("SELECT count(*) FROM ledger WHERE status = 'claimed'").fetchone()[0]

    def _gauges(self) -> None:
        self.metrics.gauge("linkstar_queue_depth", "Sends claimed but not yet completed.", self.claimed)
        self.metrics.gauge("linkstar_deferred_messages", "Messages deferred and waiting for their time.",
                           lambda: self.reader.execute("SELECT count(*) FROM ledger WHERE decision = 'defer' "
                                                       "AND status = 'decided'").fetchone()[0])
        self.metrics.gauge("linkstar_pending_writes", "Inbound requests waiting for their transaction.",
                           lambda: self.writer.pending)
        self.metrics.gauge("linkstar_last_tick_timestamp_seconds", "The clock of the last completed tick.",
                           lambda: self.ticks.last_tick.timestamp() if self.ticks.last_tick else None)
        self.metrics.gauge("linkstar_up", "1 while the service is accepting requests.",
                           lambda: 0 if self.stopping else 1)

    def health(self) -> dict:
        problems = []
        try:
            self.reader.execute("SELECT 1").fetchone()
            db = "ok"
        except duckdb.Error as exc:
            db = str(exc).splitlines()[0]
            problems.append("db")
        since = time.monotonic() - (self._last_tick_wall or self._started_at)
        stale = since > 2 * self.config.every.total_seconds() + 60 and not self.ticks.in_tick
        if not self.ticks.alive:
            problems.append("engine-stopped")
        elif stale:
            problems.append("engine-stale")
        if self.stopping:
            problems.append("stopping")
        return {"status": "ok" if not problems else "unhealthy", "problems": problems, "db": db,
                "engine": {"alive": self.ticks.alive, "in_tick": self.ticks.in_tick, "ticks": self.ticks.ticks,
                           "last_tick": self.ticks.last_tick.isoformat() if self.ticks.last_tick else None,
                           "last_tick_seconds": self.ticks.last_tick_seconds,
                           "seconds_since_last_tick": round(since, 3), "last_error": self.ticks.last_error},
                "pending_writes": self.writer.pending}
