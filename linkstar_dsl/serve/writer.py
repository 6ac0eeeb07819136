"""Every write the service makes, committed before the request that asked for it is answered.

DuckDB lets one process write a database file, and a commit waits for the disk: a transaction per
request would hold the service to a few hundred requests a second.  The writer therefore commits
in groups: handlers `await writer.submit(kind, payload)`; the writer takes everything waiting,
runs each run of same-kind payloads through that kind's executor in one transaction, commits, and
only then resolves each request's future.  A group that fails is rolled back and its payloads are
run again one by one, so one bad payload does not sink the others.

Writes to the tables a tick also writes (the ledger, suppressions) run on the event loop's
thread, like the engine's own statements, so they never interleave with a tick's transactions.
Canonical events only touch tables the engine reads but never writes; they are committed in a
worker thread (one at a time), and the loop goes on reading requests meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import attrs
import duckdb

from .logs import event

log = logging.getLogger("linkstar.serve")


@attrs.frozen
class Executor:
    """Writes a group of payloads: `run(cursor, payloads, now)` returns one result per payload.

    With `own_transaction` the executor opens and commits its own transaction (feedback.apply);
    otherwise the writer wraps the group in one.
    """

    run: Callable[[duckdb.DuckDBPyConnection, list, datetime], list]
    own_transaction: bool = False
    #: Run in a worker thread, so requests keep being read while the disk commits.  Only for
    #: writes to tables the engine never writes (events, orders, customers, carts): a transaction
    #: there cannot conflict with a tick's.
    threaded: bool = False


class WriterClosed(RuntimeError):
    """The service is shutting down and takes no more writes."""


class Writer:
    def __init__(self, con: duckdb.DuckDBPyConnection, executors: dict[str, Executor],
                 clock: Callable[[], datetime], *, max_batch: int = 1000,
                 on_commit: Callable[[str, list, list], None] | None = None,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.cursor = con.cursor()
        self.cursor.execute("SET TimeZone = 'UTC'")
        self.executors = executors
        self.clock = clock
        self.max_batch = max_batch
        self.on_commit = on_commit
        self.on_batch = on_batch
        self._pending: list[tuple[str, object, asyncio.Future]] = []
        self._ready = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="linkstar-writer")

    @property
    def pending(self) -> int:
        """Requests waiting for their transaction."""
        return len(self._pending)

    async def submit(self, kind: str, payload):
        """Write `payload` with the executor of `kind`; its result once committed."""
        if self._closed:
            raise WriterClosed("the service is shutting down")
        if kind not in self.executors:
            raise KeyError(kind)
        future = asyncio.get_running_loop().create_future()
        self._pending.append((kind, payload, future))
        self._ready.set()
        return await future

    async def close(self) -> None:
        """Write what is waiting, then stop taking writes."""
        self._closed = True
        self._ready.set()
        if self._task is not None:
            await self._task
        self.cursor.close()

    async def _loop(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                taken, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                await self._write(taken)
                await asyncio.sleep(0)  # let the answered requests go out and new ones come in
            if self._closed:
                return

    async def _write(self, taken: list) -> None:
        if self.on_batch is not None:
            self.on_batch(len(taken))
        start = 0
        while start < len(taken):
            kind = taken[start][0]
            end = start
            while end < len(taken) and taken[end][0] == kind:
                end += 1
            await self._group(kind, taken[start:end])
            start = end

    async def _group(self, kind: str, group: list) -> None:
        payloads = [payload for _, payload, _ in group]
        try:
            if self.executors[kind].threaded:
                results = await asyncio.to_thread(self._run, kind, payloads)
            else:
                results = self._run(kind, payloads)
        except Exception as exc:  # noqa: BLE001 - reported to each request, never fatal to the loop
            if len(group) == 1:
                event(log, "write-failed", logging.ERROR, kind=kind, error=_one_line(exc))
                _settle(group[0][2], exc=exc)
                return
            for item in group:  # find the payload at fault: the others still go in
                await self._group(kind, [item])
            return
        if self.on_commit is not None:
            try:
                self.on_commit(kind, payloads, results)
            except Exception as exc:  # noqa: BLE001 - bookkeeping after a commit must not undo it
                event(log, "after-commit-failed", logging.ERROR, kind=kind, error=_one_line(exc))
        for (_, _, future), result in zip(group, results):
            _settle(future, result=result)

    def _run(self, kind: str, payloads: list) -> list:
        executor = self.executors[kind]
        now = self.clock()
        if executor.own_transaction:
            return executor.run(self.cursor, payloads, now)
        self.cursor.execute("BEGIN TRANSACTION")
        try:
            results = executor.run(self.cursor, payloads, now)
            self.cursor.execute("COMMIT")
        except BaseException:
            try:
                self.cursor.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        return results


def _settle(future: asyncio.Future, *, result=None, exc: BaseException | None = None) -> None:
    if future.done():  # the request went away (client disconnected); the write stands
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
