"""The engine's loop inside the service: a tick every interval, and soon after events arrive.

`wake()` asks for a tick `debounce` seconds from now (events tend to come in bursts: one tick
for the burst, not one per event).  A tick that raises is logged and counted, and the loop goes
on.  `stop()` lets the tick in progress finish (its sends complete and are written to the
ledger) and starts no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from .logs import event

log = logging.getLogger("linkstar.serve")


class TickLoop:
    def __init__(self, engine, every: timedelta, debounce: float, *,
                 on_tick: Callable[[object, float], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.engine = engine
        self.every = every
        self.debounce = debounce
        self.on_tick = on_tick
        self.on_error = on_error
        self.ticks = 0
        self.last_tick: datetime | None = None        # the clock of the last tick that completed
        self.last_tick_seconds: float | None = None
        self.last_error: str | None = None
        self.in_tick = False
        self._woken = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="linkstar-ticks")

    def wake(self) -> None:
        self._woken.set()

    def stop_soon(self) -> None:
        """Start no other tick; the one in progress goes on."""
        self._stopping.set()

    async def stop(self) -> None:
        """Finish the tick in progress (the loop's, or one asked for with `tick`), then stop."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        async with self._lock:
            pass

    async def tick(self, now: datetime | None = None):
        """One tick now (never while another is running); its report, or None if it failed."""
        async with self._lock:
            self.in_tick = True
            started = time.perf_counter()
            try:
                report = await self.engine.tick(now)
            except Exception as exc:  # noqa: BLE001 - a tick's failure is reported, not fatal
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                event(log, "tick-failed", logging.ERROR, error=self.last_error)
                if self.on_error is not None:
                    self.on_error(exc)
                return None
            finally:
                self.in_tick = False
            seconds = time.perf_counter() - started
            self.ticks += 1
            self.last_tick, self.last_tick_seconds, self.last_error = report.now, seconds, None
            if self.on_tick is not None:
                self.on_tick(report, seconds)
            return report

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._woken.clear()
            await self.tick()
            if self._stopping.is_set():
                return
            if await self._wait(self._woken, self.every.total_seconds()):
                # woken by new events: wait a little for the rest of the burst
                await self._wait(self._stopping, self.debounce)

    async def _wait(self, flag: asyncio.Event, seconds: float) -> bool:
        """Wait for `flag` (or a stop) up to `seconds`; whether `flag` was set."""
        waiters = [asyncio.ensure_future(flag.wait()), asyncio.ensure_future(self._stopping.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        return flag.is_set()
