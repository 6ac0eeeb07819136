"""Dispatch workers: processes that render and send a tick's claimed jobs, so that a runner uses
more than one core.

The engine's own process keeps everything that touches the store: it decides, claims, notes the
attempts of the jobs for providers without idempotency keys (one write per chunk, before the
chunk is handed out), writes the completions the workers stream back, and records the
suppressions they report.  A worker holds no store connection: it gets the program and the
settings once when it starts, then chunks of jobs (each with the rows its messages are rendered
from), renders and sends them through its own `ChannelEngine`, and answers with compact
completion tuples, a batch at a time.

Each worker's channel engine takes its part of every rate limit and concurrency cap
(`ChannelEngine(share=...)`), so the workers together never exceed the configured limits.

A worker that dies leaves its unanswered jobs claimed in the ledger: `WorkerPool.run` gives them
back as lost, and the engine finishes them as its recovery does after a crash.  Workers are
fresh interpreters running this module (never forks: the engine's process holds a DuckDB
connection), and read from a socket whose other end is the engine: when the engine's process
goes, they stop.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import os
import pickle
import socket
import struct
import sys
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import attrs

from ..gates import Decision
from .dispatch import Dispatcher, Job, Records, Rendering
from .ledger import Completion

_HEADER = struct.Struct("!I")
#: Seconds a worker may take to start (import, open its channels) before the engine gives up.
START_TIMEOUT = 60.0
#: Seconds a worker may take to stop before it is killed.
STOP_TIMEOUT = 5.0
#: Completions a worker collects before it answers ...
ANSWER_BATCH = 16
#: ... or the seconds it holds the first of them back, waiting for others to answer with.
ANSWER_DELAY = 0.002


class PoolError(RuntimeError):
    """A dispatch worker could not be started."""


@attrs.frozen
class WorkerSetup:
    """What one worker is built from, sent once when it starts."""

    program: object
    render_settings: object
    channels: object  # adapters.ChannelsConfig
    environ: Mapping[str, str] | None
    share: tuple[int, int]
    concurrency: int
    #: The level of the engine's `linkstar` loggers: what a worker logs at it or above is passed back to them.
    log_level: int = logging.WARNING


# -- the wire: length-prefixed pickles of plain tuples -------------------------------------------

async def _read(reader: asyncio.StreamReader):
    """The next message, or None when the other end is gone."""
    try:
        header = await reader.readexactly(_HEADER.size)
        return pickle.loads(await reader.readexactly(_HEADER.unpack(header)[0]))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def _write(writer: asyncio.StreamWriter, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_HEADER.pack(len(data)) + data)


_decision_fields = operator.attrgetter(*(a.name for a in attrs.fields(Decision)))
_completion_fields = operator.attrgetter(*(a.name for a in attrs.fields(Completion)))


def pack_job(job: Job) -> tuple:
    d = job.decision
    return (_decision_fields(d), d.step, job.row, job.attempts, job.doubt)


def unpack_job(packed: tuple, plans: Mapping[str, object]) -> Job:
    fields, step, row, attempts, doubt = packed
    decision = Decision(*fields)
    plan = plans[decision.flow]
    return Job(decision, plan, plan.steps[step], row, attempts, doubt)


def pack_completion(c: Completion) -> tuple:
    return _completion_fields(c)


def chunk_records(records: Records, jobs: Sequence[Job]) -> tuple:
    """The rows of `records` the messages of `jobs` are rendered from."""
    customers = {j.decision.customer_id for j in jobs}
    orders = {j.decision.order_id for j in jobs}
    occurrences = {j.decision.occurrence for j in jobs}
    return ({k: records.customers[k] for k in customers if k in records.customers},
            {k: records.orders[k] for k in orders if k in records.orders},
            {k: records.carts[k] for k in occurrences if k in records.carts},
            {k: records.reviews[k] for k in orders if k in records.reviews})


# -- the worker's side ----------------------------------------------------------------------------

def worker_main(fd: int) -> None:
    """The worker process: serve chunks on the socket `fd` until told to stop or until the engine is gone."""
    asyncio.run(_serve(socket.socket(fileno=fd)))


async def _serve(sock: socket.socket) -> None:
    from ..adapters.engine import ChannelEngine

    reader, writer = await asyncio.open_connection(sock=sock)
    setup = await _read(reader)
    if not isinstance(setup, WorkerSetup):
        return
    channels = ChannelEngine(setup.channels, environ=setup.environ, share=setup.share)
    try:
        await channels.start()
    except Exception as exc:  # reported to the engine, which raises it where it started the pool
        _write(writer, ("error", _first_line(exc)))
        await writer.drain()
        return
    _forward_logs(setup.log_level, writer)
    try:
        await _Worker(setup, channels, writer).serve(reader)
    finally:
        await channels.close()
        writer.close()


class _Forwarder(logging.Handler):
    """Sends a worker's log lines to the engine, which writes them through its own `linkstar` loggers."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        _write(self.writer, ("log", record.name, record.levelno, record.getMessage()))


def _forward_logs(level: int, writer: asyncio.StreamWriter) -> None:
    root = logging.getLogger("linkstar")
    root.setLevel(level)
    root.addHandler(_Forwarder(writer))
    root.propagate = False


class _Worker:
    def __init__(self, setup: WorkerSetup, channels, writer: asyncio.StreamWriter) -> None:
        self.plans = {p.name: p for p in setup.program.plans}
        self.rendering = Rendering(setup.program, setup.render_settings)
        self.dispatcher = Dispatcher(channels, self.rendering.renderer, self.rendering.context,
                                     setup.concurrency, on_suppress=self._suppressed)
        self.concurrency = setup.concurrency
        self.writer = writer
        self.queue: asyncio.Queue = asyncio.Queue()
        self.answers: list[tuple] = []
        self._flush: asyncio.Handle | None = None

    def warm_up(self) -> None:
        """Load what the first message would (the renderers, their modules): part of starting, not of a tick."""
        from . import render_context  # noqa: F401

        for plan in self.plans.values():
            self.rendering.renderer(plan)

    async def serve(self, reader: asyncio.StreamReader) -> None:
        self.warm_up()
        _write(self.writer, ("ready",))
        senders = [asyncio.ensure_future(self._sender()) for _ in range(self.concurrency)]
        try:
            while (message := await _read(reader)) is not None and message[0] == "chunk":
                _, now, paused, packed, rows = message
                records = Records(*rows)
                for item in packed:
                    self.queue.put_nowait((unpack_job(item, self.plans), records, now, paused))
        finally:
            for sender in senders:
                sender.cancel()
            await asyncio.gather(*senders, return_exceptions=True)

    async def _sender(self) -> None:
        while True:
            job, records, now, paused = await self.queue.get()
            self.rendering.now = now
            try:
                completion = await self.dispatcher.send(job, records, now, paused)
            except Exception:
                traceback.print_exc()  # to the worker's standard error, which is the runner's
                os._exit(70)  # as a crash would: the engine finishes this worker's jobs by its recovery path
            self.answers.append(pack_completion(completion))
            if len(self.answers) >= ANSWER_BATCH:
                self._answer()
            elif self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(ANSWER_DELAY, self._answer)

    def _answer(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.answers:
            _write(self.writer, ("done", self.answers))
            self.answers = []

    def _suppressed(self, customer_id: str, channel: str, reason: str, provider: str) -> None:
        _write(self.writer, ("suppress", customer_id, channel, reason, provider))


# -- the engine's side ----------------------------------------------------------------------------

@attrs.define(eq=False)
class _Handle:
    """The engine's end of one worker."""

    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    #: key → job, for the jobs handed out and not answered yet
    outstanding: dict = attrs.field(factory=dict)
    alive: bool = True
    listener: asyncio.Future | None = None


@attrs.frozen
class PoolResult:
    completions: list[Completion]
    #: Jobs handed to a worker that died before answering: still claimed, maybe sent.
    lost: list[Job]
    #: Jobs never handed out, because every worker had died.
    unsent: list[Job]


class WorkerPool:
    """`count` worker processes, started together and kept for the engine's life."""

    def __init__(self, setup_for: Callable[[int], WorkerSetup], count: int, concurrency: int) -> None:
        self.count = count
        self.chunk = concurrency
        self._setup_for = setup_for
        self._workers: list[_Handle | None] = [None] * count
        self._run: _Run | None = None
        #: Jobs handed to the workers since the pool started.
        self.handed_out = 0

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w is not None and w.alive]

    def holding(self, key: str) -> int | None:
        """The pid of the worker a job was handed to and has not answered for (for tests and reports)."""
        for w in self._workers:
            if w is not None and w.alive and key in w.outstanding:
                return w.process.pid
        return None

    async def start(self) -> None:
        """Start every worker; raises `PoolError` (and stops the others) when one cannot start."""
        failed = await self._revive()
        if failed:
            await self.close()
            raise failed[0] if isinstance(failed[0], PoolError) else PoolError(_first_line(failed[0]))

    async def _revive(self) -> list[BaseException]:
        """Start the workers that are not running (again); what kept any of them from starting."""
        missing = [i for i, w in enumerate(self._workers) if w is None or not w.alive]
        for i in missing:
            if self._workers[i] is not None:
                await self._stop(self._workers[i])
        started = await asyncio.gather(*(self._spawn(i) for i in missing), return_exceptions=True)
        for i, handle in zip(missing, started):
            self._workers[i] = handle if isinstance(handle, _Handle) else None
        return [h for h in started if not isinstance(h, _Handle)]

    async def _spawn(self, index: int) -> _Handle:
        ours, theirs = socket.socketpair()
        try:
            # A fresh interpreter (never a fork of this process, which holds a DuckDB connection), started
            # as a module so that it does not depend on the embedder's main script.
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "linkstar_dsl.runtime.dispatch_pool", str(theirs.fileno()), pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, env=_environment())
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        handle = _Handle(process, reader, writer)
        _write(writer, self._setup_for(index))
        try:
            answer = await asyncio.wait_for(_read(reader), START_TIMEOUT)
        except asyncio.TimeoutError:
            answer = ("error", f"no answer in {START_TIMEOUT:.0f} seconds")
        if answer != ("ready",):
            await self._stop(handle)
            why = answer[1] if answer and answer[0] == "error" else "it stopped while starting"
            raise PoolError(f"a dispatch worker could not start: {why}")
        handle.listener = asyncio.ensure_future(self._listen(handle))
        return handle

    async def close(self) -> None:
        workers, self._workers = self._workers, [None] * self.count
        await asyncio.gather(*(self._stop(w) for w in workers if w is not None))

    async def _stop(self, handle: _Handle) -> None:
        handle.alive = False
        try:
            _write(handle.writer, ("stop",))
            handle.writer.close()
        except (ConnectionError, RuntimeError):
            pass
        try:
            await asyncio.wait_for(handle.process.wait(), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            handle.process.kill()
            await handle.process.wait()
        if handle.listener is not None:
            handle.listener.cancel()
            await asyncio.gather(handle.listener, return_exceptions=True)

    async def run(self, jobs: Sequence[Job], records: Records, now: datetime, paused: Mapping[str, str], *,
                  mark: Callable[[list[Job]], set[str]], on_complete: Callable[[Completion], None],
                  on_suppress: Callable[[str, str, str, str], None]) -> PoolResult:
        """Send `jobs` through the workers.  `mark` is called with each chunk just before it is handed
        out and answers the keys whose attempts it noted; their completions come back `counted`.
        A worker that died since the last run is started again first; when none is running, every
        job comes back unsent."""
        await self._revive()
        chunks = deque(jobs[i:i + self.chunk] for i in range(0, len(jobs), self.chunk))
        workers = [w for w in self._workers if w is not None and w.alive]
        self._run = run = _Run(on_complete, on_suppress)
        paused = dict(paused)
        try:
            while True:
                live = [w for w in workers if w.alive]
                for worker in live:
                    # Two chunks per worker: one being sent, the next one waiting, so it never idles.
                    while chunks and len(worker.outstanding) <= self.chunk:
                        self._hand_out(worker, chunks.popleft(), records, now, paused, mark, run.counted)
                if not live or not any(w.outstanding for w in live):
                    break
                run.changed.clear()
                await run.changed.wait()
                if run.failure is not None:
                    raise run.failure
            lost = [job for w in workers if not w.alive for job in w.outstanding.values()]
        finally:
            self._run = None
            for worker in workers:
                worker.outstanding.clear()  # an answer still on its way is for no run: it is dropped
        return PoolResult(run.completions, lost, [job for chunk in chunks for job in chunk])

    def _hand_out(self, worker: _Handle, chunk: Sequence[Job], records: Records, now: datetime,
                  paused: dict, mark, counted: set[str]) -> None:
        counted.update(mark(list(chunk)))
        self.handed_out += len(chunk)
        for job in chunk:
            worker.outstanding[job.decision.key] = job
        _write(worker.writer, ("chunk", now, paused, [pack_job(j) for j in chunk], chunk_records(records, chunk)))

    async def _listen(self, worker: _Handle) -> None:
        """Read one worker's answers for its whole life (a read is never cut off half way through a message)."""
        while (message := await _read(worker.reader)) is not None:
            if message[0] == "log":
                logging.getLogger(message[1]).log(message[2], "%s", message[3])
                continue
            run = self._run
            if run is None:
                continue
            try:
                run.take(worker, message)
            except Exception as exc:  # writing a completion or a suppression failed: the run fails
                run.failure = exc
            run.changed.set()
        worker.alive = False  # the worker is gone: what it held is lost
        if self._run is not None:
            self._run.changed.set()


@attrs.define(eq=False)
class _Run:
    """The state of one `WorkerPool.run`, which the workers' listeners report to."""

    on_complete: Callable[[Completion], None]
    on_suppress: Callable[[str, str, str, str], None]
    counted: set = attrs.field(factory=set)
    completions: list = attrs.field(factory=list)
    changed: asyncio.Event = attrs.field(factory=asyncio.Event)
    failure: BaseException | None = None

    def take(self, worker: _Handle, message: tuple) -> None:
        if message[0] == "done":
            for fields in message[1]:
                completion = Completion(*fields)
                if completion.key in self.counted:
                    completion = attrs.evolve(completion, counted=True)
                if worker.outstanding.pop(completion.key, None) is not None:
                    self.completions.append(completion)
                    self.on_complete(completion)
        elif message[0] == "suppress":
            self.on_suppress(*message[1:])


def _environment() -> dict[str, str]:
    """The worker's environment: this one, with this process's import path (an embedder may have added to it)."""
    path = os.pathsep.join(p for p in sys.path if p)
    return {**os.environ, "PYTHONPATH": path}


def _first_line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]


if __name__ == "__main__":
    # Through the package, so that the classes in the messages are the ones this module defines.
    from linkstar_dsl.runtime.dispatch_pool import worker_main as main

    main(int(sys.argv[1]))
