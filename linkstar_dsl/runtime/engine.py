"""The engine: compiled flows, a store, channels and a clock; `await engine.tick(now)` does the work.

    program = linkstar_dsl.compile(["flows/"])
    async with Engine(program, "shop.duckdb", channels=ChannelsConfig.from_toml("linkstar.toml")) as engine:
        report = await engine.tick()          # or: await engine.run(every=timedelta(minutes=1))

One tick evaluates every flow step due in (last tick, now] plus the deferrals now due, passes each
through the gates (`gates.py`, the same code `linkstar simulate` runs), writes every decision to
the ledger and claims the sends in one transaction, renders and sends the claimed messages, and
completes them in the ledger.  On start the engine takes over the sends a runner that died left
claimed, and finishes them (see `ledger.py`).  `dry_run=True` does all of it against a scratch
copy of the ledger and sends nothing.

With `EngineSettings(workers=N)` (N > 1) the rendering and sending of a large tick is done by N
dispatch worker processes (`dispatch_pool.py`) while this process keeps the store: the same
ledger rows, each worker with its share of every rate limit, and a worker that dies treated as
a runner that died.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import duckdb

from ..adapters.messages import Outcome, SendResult
from ..gates import Decision, iso
from . import ledger
from .decide import decide_tick
from .dispatch import Dispatcher, Job, Records, Rendering
from .gc_budget import fewer_collections
from .due_set import DueSet
from .pauses import AutoPausePolicy, auto_pause, in_force
from .program import Program
from .sqlvalues import ID_LIST, id_list

#: Engines alive in this process, by ledger token: their claims are not orphans.
_LIVE: set[str] = set()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@attrs.frozen
class TickReport:
    """What one tick decided and how its sends ended."""

    since: datetime
    now: datetime
    decisions: tuple[Decision, ...]
    completions: tuple[ledger.Completion, ...]
    recovered: int = 0
    paused_flows: tuple[str, ...] = ()
    conflict: str | None = None

    def counts(self) -> Counter:
        counts = Counter()
        for d in self.decisions:
            counts[d.decision if d.decision == "send" else f"{d.decision}:{d.reason}"] += 1
        for c in self.completions:
            counts[f"completed:{c.status}"] += 1
        return counts

    @property
    def sent(self) -> int:
        return sum(c.status == "sent" for c in self.completions)


def _whole(name: str):
    def check(instance, attribute, value) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return check


@attrs.frozen
class EngineSettings:
    #: Names this runner's place in time (`runner_state`); runners with different names keep separate clocks.
    runner: str = "default"
    #: How far back the first tick of a new runner looks.
    lookback: timedelta = timedelta(days=1)
    #: Each tick also looks this far behind the previous one, for events stored late (a webhook
    #: retried, an import run the next morning); the ledger keeps them from being decided twice.
    late_arrivals: timedelta = timedelta(hours=24)
    #: Sends rendered and sent at once, by the engine's process or by each dispatch worker (the requests
    #: in flight are bounded by each provider's concurrency cap, which the workers share out).
    concurrency: int = attrs.field(default=64, validator=_whole("concurrency"))
    auto_pause: AutoPausePolicy | None = AutoPausePolicy()
    #: Processes that render and send: 1 is the engine's own process; more starts a pool of that
    #: many dispatch workers (`dispatch_pool`) for the ticks with at least `worker_threshold` sends.
    workers: int = attrs.field(default=1, validator=_whole("workers"))
    worker_threshold: int = attrs.field(default=256, validator=_whole("worker_threshold"))


class DryRunChannels:
    """Channels for `--dry-run`: every message is accepted and kept, nothing leaves the machine."""

    adapters: dict = {}

    def __init__(self) -> None:
        self.messages = []

    async def send(self, message) -> SendResult:
        self.messages.append(message)
        return SendResult(Outcome.SENT, "dry-run", provider_message_id=f"dry-{len(self.messages)}")


class Engine:
    def __init__(self, program: Program, db: str | Path | duckdb.DuckDBPyConnection, *,
                 channels=None, environ: Mapping[str, str] | None = None, render_settings=None,
                 dry_run: bool = False, clock: Callable[[], datetime] = utc_now,
                 settings: EngineSettings = EngineSettings()) -> None:
        self.program = program
        self.db = db
        self.dry_run = dry_run
        self.clock = clock
        self.settings = settings
        self.token = uuid.uuid4().hex
        self._channels_arg = channels
        self._environ = environ
        self._render_settings = render_settings
        self._owns_channels = False
        self._renderings: Rendering | None = None
        self.con: duckdb.DuckDBPyConnection | None = None
        self.channels = None
        self.due_set = DueSet(program.plans, program.schema)
        self.recovered = 0
        #: The dispatch workers, when `settings.workers` > 1 and the channels are the engine's own.
        self.pool = None
        #: Why the engine sends in its own process although `settings.workers` asks for more, if it does.
        self.single_process: str | None = None
        self._turn: tuple[str, float] | None = None  # who sent last ("engine" or "pool"), and until when

    # -- life cycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the store (recovering claims a stopped runner left) and the channels.

        Raises `StoreError` when the store cannot be used, or lacks a field the flows read.
        """
        self._settings()
        self.con = self._connect()
        self._require_fields()
        self.channels = await self._open_channels()
        _LIVE.add(self.token)
        try:
            await self._start_pool()
            if not self.dry_run:
                self.recovered = await self.recover()
        except BaseException:
            await self.close()
            raise

    async def _start_pool(self) -> None:
        """Start the dispatch workers, when they can be used: real channels the engine opened itself, with
        every rate limit and concurrency cap large enough to give each worker a part of it."""
        workers = self.settings.workers
        if workers < 2 or self.dry_run or not self._owns_channels:
            return
        too_small = self.channels.indivisible(workers)
        if too_small is not None:
            self.single_process = f"sending in one process: {too_small}, too few to share between {workers} workers"
            return
        from .dispatch_pool import WorkerPool, WorkerSetup

        def setup(index: int) -> WorkerSetup:
            # Each worker renders and sends `concurrency` jobs at once; the requests in flight are bounded by
            # the providers' concurrency caps, which the workers share out.
            return WorkerSetup(self.program, self._settings(), self._channels_arg, self._environ,
                               (index, workers), self.settings.concurrency,
                               logging.getLogger("linkstar").getEffectiveLevel())

        pool = WorkerPool(setup, workers, self.settings.concurrency)
        await pool.start()
        self.pool = pool

    async def close(self) -> None:
        _LIVE.discard(self.token)
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()
        if self._owns_channels and self.channels is not None:
            await self.channels.close()
        self.channels = None
        if self.con is not None and not isinstance(self.db, duckdb.DuckDBPyConnection):
            self.con.close()
        self.con = None

    def _require_fields(self) -> None:
        from ..store import StoreError
        from .store_fields import describe, missing_fields

        missing = missing_fields(self.program.plans, self.con)
        if missing:
            self.con.close()  # our own connection, or our cursor of the embedder's
            self.con = None
            named = "the store" if isinstance(self.db, duckdb.DuckDBPyConnection) else str(self.db)
            raise StoreError(describe(missing, named))

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if isinstance(self.db, duckdb.DuckDBPyConnection):
            if self.dry_run:
                raise ValueError("a dry run reads the store through a scratch copy: give the database's path")
            return self.db.cursor()
        if self.dry_run:
            from ..simulate import scratch

            return scratch(str(self.db))
        from ..store import open_store

        return open_store(self.db)

    async def _open_channels(self):
        if self.dry_run:
            return DryRunChannels()
        channels = self._channels_arg
        if channels is None:
            raise ValueError("no channels configured: give a [channels] configuration, or run with dry_run=True")
        if hasattr(channels, "send"):
            return channels
        from ..adapters.engine import ChannelEngine

        engine = ChannelEngine(channels, environ=self._environ)
        await engine.start()
        self._owns_channels = True
        return engine

    # -- rendering --------------------------------------------------------------------------------

    def _renderer(self, plan):
        return self._rendering().renderer(plan)

    def _settings(self):
        if self._render_settings is None:
            from .render_context import RenderSettings

            if not self.dry_run:
                raise ValueError("rendering needs the sender's name and address and the shop's URL: give "
                                 "render_settings (a [render] table with sender_name, sender_address, shop_url)")
            self._render_settings = RenderSettings.demo()
        return self._render_settings

    def _context(self, job: Job, records: Records, channel: str) -> dict:
        rendering = self._rendering()
        rendering.now = self._now
        return rendering.context(job, records, channel)

    def _rendering(self) -> Rendering:
        if self._renderings is None:
            self._renderings = Rendering(self.program, self._settings())
        return self._renderings

    # -- ticks ------------------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> TickReport:
        """Decide and send everything due by `now` (default: the clock)."""
        if self.con is None:
            raise RuntimeError("the engine is not started: use `async with Engine(...)` or `await engine.start()`")
        with fewer_collections():
            return await self._tick(now or self.clock())

    async def _tick(self, now: datetime) -> TickReport:
        self._now = now
        clock = ledger.runner_clock(self.con, self.settings.runner)
        if clock is None:
            origin = since = now - self.settings.lookback
        else:
            origin, last = clock
            since = max(min(last, now) - self.settings.late_arrivals, origin)
        newly_paused: list[str] = []
        if self.settings.auto_pause is not None and not self.dry_run:
            newly_paused = auto_pause(self.con, [p.name for p in self.program.plans], now, self.settings.auto_pause)
        paused = in_force(self.con, now)
        made = decide_tick(self.con, self.due_set, since, now, paused)
        try:
            recorded = ledger.record(self.con, [d for _, _, _, d in made], now, self.token)
        except ledger.ClaimConflict as exc:
            return TickReport(since, now, (), (), conflict=str(exc))
        held = {d.key for d in recorded.claimed}
        jobs = [Job(d, plan, step, row, doubt=recorded.doubts.get(d.key))
                for plan, step, row, d in made if d.key in held]
        completions = await self._dispatch(jobs, now, paused.channels)
        ledger.set_last_tick(self.con, self.settings.runner, origin, now, now)
        return TickReport(since, now, tuple(recorded.decisions), (*recorded.unresolved, *completions),
                          paused_flows=tuple(newly_paused))

    async def _dispatch(self, jobs: list[Job], now: datetime, paused_channels, *,
                        in_process: bool = False) -> list[ledger.Completion]:
        if not jobs:
            return []
        attempts = dict(self.con.execute(
            f"SELECT key, coalesce(attempts, 0) FROM ledger WHERE key IN {ID_LIST} AND attempts > 0",
            [id_list(j.decision.key for j in jobs)]).fetchall())
        if attempts:
            jobs = [attrs.evolve(j, attempts=attempts[j.decision.key]) if j.decision.key in attempts else j
                    for j in jobs]
        self._now = now
        records = Records.fetch(self.con, jobs)
        writer = ledger.CompletionWriter(self.con, now, self.token)
        lost: list[Job] = []
        try:
            if self.pool is not None and not in_process and len(jobs) >= self.settings.worker_threshold:
                completions, lost, jobs = await self._dispatch_in_pool(jobs, records, now, paused_channels, writer)
            else:
                completions = []
            if jobs:
                completions += await self._dispatch_here(jobs, records, now, paused_channels, writer)
        finally:
            await writer.close()
        if lost:  # a worker died: its jobs end as a crash's do, by the recovery path
            completions += await self._finish(self._held_rows([j.decision.key for j in lost]), now)
        return completions

    async def _dispatch_here(self, jobs: list[Job], records: Records, now: datetime, paused_channels,
                             writer: ledger.CompletionWriter) -> list[ledger.Completion]:
        mark = None if self.dry_run else (lambda keys: ledger.mark_attempts(self.con, keys))
        dispatcher = Dispatcher(self.channels, self._renderer, self._context, self.settings.concurrency,
                                on_suppress=self._suppress, on_attempt=mark, on_complete=writer.add)
        await self._take_turn("engine", jobs)
        try:
            return await dispatcher.run(jobs, records, now, paused_channels)
        finally:
            self._end_turn("engine")

    async def _dispatch_in_pool(self, jobs: list[Job], records: Records, now: datetime, paused_channels,
                                writer: ledger.CompletionWriter):
        """The completions from the workers, the jobs a dead worker left, and the jobs never handed out."""
        await self._take_turn("pool", jobs)
        try:
            result = await self.pool.run(jobs, records, now, paused_channels, mark=self._mark_chunk,
                                         on_complete=writer.add, on_suppress=self._suppress)
        finally:
            self._end_turn("pool")
        order = {j.decision.key: i for i, j in enumerate(jobs)}
        return sorted(result.completions, key=lambda c: order[c.key]), result.lost, result.unsent

    def _mark_chunk(self, chunk: list[Job]) -> set[str]:
        """Note the attempts of a chunk's jobs for providers without idempotency keys, before it leaves."""
        risky = sorted(j.decision.key for j in chunk if not all(self._repeat_safe(c) for c in j.step.channels))
        if risky:
            ledger.mark_attempts(self.con, risky)
        return set(risky)

    async def _take_turn(self, side: str, jobs: list[Job]) -> None:
        """Wait, when the other side (the engine's process or its workers) sent last, until the requests it
        made no longer count against the rate limits of these jobs' channels: each side's limiters only
        know their own requests."""
        if self._turn is not None and self._turn[0] != side and self.pool is not None:
            window = self.channels.limit_window({c for j in jobs for c in j.step.channels})
            wait = self._turn[1] + window - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    def _end_turn(self, side: str) -> None:
        self._turn = (side, time.monotonic())

    def _suppress(self, customer_id: str, channel: str, reason: str, provider: str) -> None:
        self.con.execute("INSERT INTO suppressions (customer_id, channel, reason, occurred_at, source) "
                         "VALUES (?, ?, ?, ?, ?)", [customer_id, channel, reason, self._now, provider or "provider"])

    async def recover(self, now: datetime | None = None) -> int:
        """Finish the sends a runner that is gone left claimed; the number taken over."""
        now = now or self.clock()
        self._now = now
        rows = ledger.orphaned(self.con, _LIVE)
        if not rows:
            return 0
        held = ledger.take_over(self.con, [r["key"] for r in rows], {r["key"]: r["claimed_by"] for r in rows},
                                self.token, now)
        await self._finish([r for r in rows if r["key"] in held], now)
        return len(held)

    async def _finish(self, rows: list[dict], now: datetime) -> list[ledger.Completion]:
        """Send again, or complete as `unknown`, the claims of this runner a stop interrupted (`rows` as
        `ledger.orphaned` gives them); sent in this process, whatever the number."""
        jobs, unknown = [], []
        plans = {p.name: p for p in self.program.plans}
        gate_rows = self._gate_rows(rows)
        for r in rows:
            plan = plans.get(r["flow"])
            step = plan.steps[r["step"]] if plan is not None and r["step"] < len(plan.steps) else None
            if step is None:
                unknown.append(ledger.Completion(r["key"], "failed", r["channel"], "flow-removed",
                                                 {"detail": "the flow or step no longer exists"}))
                continue
            if r["attempts"] and not self._repeat_safe(r["channel"]):
                unknown.append(ledger.Completion(
                    r["key"], "unknown", r["channel"], "outcome-unknown",
                    {"detail": "the runner stopped during the request and this provider keeps no idempotency "
                               "key, so the message is not sent again; check the provider's log"}))
                continue
            decision = Decision(r["flow"], r["step"], r["key"], r["occurrence"], r["order_id"], r["customer_id"],
                                r["channel"], r["template"], "send", "sent", "recovered", r["due_at"],
                                r["send_at"], r["purpose"])
            doubt = ledger.doubt_of(r["detail"]) or (_interrupted(r) if self._repeat_safe(r["channel"]) else None)
            jobs.append(Job(decision, plan, step, gate_rows.get(r["key"], {}), r["attempts"], doubt))
        ledger.complete(self.con, unknown, now, self.token)
        return [*unknown, *await self._dispatch(jobs, now, in_force(self.con, now).channels, in_process=True)]

    def _held_rows(self, keys: list[str]) -> list[dict]:
        """This runner's claims among `keys` that are not completed, as `ledger.orphaned` gives rows."""
        cursor = self.con.execute(
            "SELECT key, flow, step, occurrence, order_id, customer_id, channel, template, purpose, due_at, "
            "send_at, coalesce(attempts, 0) AS attempts, claimed_by, claimed_at, detail FROM ledger "
            f"WHERE key IN {ID_LIST} AND status = 'claimed' AND claimed_by = ? ORDER BY claimed_at, key",
            [id_list(keys), self.token])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _repeat_safe(self, channel: str | None) -> bool:
        adapter = getattr(self.channels, "adapters", {}).get(channel)
        return bool(getattr(adapter, "repeat_safe", False))

    def _gate_rows(self, rows: list[dict]) -> dict[str, dict]:
        """The recipient columns a recovered send needs (addresses, country, suppressions)."""
        ids = sorted({r["customer_id"] for r in rows})
        if not ids:
            return {}
        cursor = self.con.execute("SELECT * FROM customers WHERE id IN (SELECT unnest(?))", [ids])
        names = [d[0] for d in cursor.description]
        customers = {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}
        suppressed = dict(self.con.execute(
            "SELECT customer_id, list(DISTINCT coalesce(channel, '*')) FROM suppressions "
            "WHERE customer_id IN (SELECT unnest(?)) GROUP BY customer_id", [ids]).fetchall())
        return {r["key"]: {**customers.get(r["customer_id"], {}), "suppressed": suppressed.get(r["customer_id"], [])}
                for r in rows}

    async def run(self, every: timedelta, stop: asyncio.Event | None = None,
                  on_tick: Callable[[TickReport], None] | None = None) -> None:
        """Tick every `every` until `stop` is set; a tick's failure is reported, not fatal."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            report = await self.tick()
            if on_tick is not None:
                on_tick(report)
            try:
                await asyncio.wait_for(stop.wait(), every.total_seconds())
            except asyncio.TimeoutError:
                pass


def _interrupted(row: dict) -> dict:
    """A claim its runner left: the runner may have sent it before it stopped, and no attempt is noted
    for a provider that keeps idempotency keys, so the send is as doubtful as a lost answer."""
    return {"at": iso(row["claimed_at"]), "channel": row["channel"],
            "answer": "the runner stopped before it had the answer"}
