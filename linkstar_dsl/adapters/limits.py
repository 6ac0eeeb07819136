"""Rate limits, back-off and the circuit breaker.

`RateLimiter` guarantees that the provider never receives more than `limit` requests in any
window of `period` seconds, whatever the scheduling jitter between here and there: a request
holds its slot while in flight and for `period` seconds after its answer came back.  Proof in
one line: when a request starts, every one of the `limit` others that could share a window with
it at the provider is either still in flight or finished less than `period` ago, so it is
counted.  The price is a rate of `limit / (period + latency)` instead of `limit / period`.

`CircuitBreaker` stops calling a provider after `failures` consecutive outages (or at once on an
account-level problem), lets one trial request through after `cooldown` seconds, and closes again
when it succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]


class RateLimiter:
    def __init__(self, limit: int, period: float = 1.0, *, clock: Clock = time.monotonic) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a rate limit needs limit >= 1 and period > 0")
        self.limit, self.period = limit, period
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._clock = clock

    @classmethod
    def per_second(cls, rate: float, burst: int | None = None, **kwargs) -> RateLimiter:
        """`rate` requests per second; with `burst`, `burst` requests per `burst / rate` seconds."""
        if burst:
            return cls(burst, burst / rate, **kwargs)
        if rate >= 1:
            return cls(round(rate), 1.0, **kwargs)
        return cls(1, 1.0 / rate, **kwargs)

    def _has_room(self, now: float) -> bool:
        finished = self._finished
        while finished and finished[0] <= now - self.period:
            finished.popleft()
        return self._in_flight + len(finished) < self.limit

    async def acquire(self) -> None:
        if not self._lock.locked() and self._has_room(self._clock()):
            self._in_flight += 1
            return
        async with self._lock:
            while not self._has_room(now := self._clock()):
                self._changed.clear()
                expires = self._finished[0] + self.period - now if self._finished else None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), expires)
            self._in_flight += 1

    def release(self) -> None:
        self._in_flight -= 1
        self._finished.append(self._clock())
        self._changed.set()


class Limits:
    """Several limiters that must all agree (per channel, per account), and a concurrency cap."""

    def __init__(self, limiters: list[RateLimiter], concurrency: int) -> None:
        self.limiters = limiters
        self.slots = asyncio.Semaphore(concurrency)

    def slot(self) -> _Slot:
        """Held for the whole request: a concurrency slot, then a slot of every rate limiter."""
        return _Slot(self)


class _Slot:
    """`Limits.slot()` as a plain async context manager: it is entered once per request."""

    __slots__ = ("_limits", "_taken")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._taken: list[RateLimiter] = []

    async def __aenter__(self) -> None:
        await self._limits.slots.acquire()
        try:
            for limiter in self._limits.limiters:
                await limiter.acquire()
                self._taken.append(limiter)
        except BaseException:
            self._release()
            raise

    async def __aexit__(self, *exc_info) -> None:
        self._release()

    def _release(self) -> None:
        for limiter in self._taken:
            limiter.release()
        self._taken.clear()
        self._limits.slots.release()


class CircuitBreaker:
    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

    def __init__(self, failures: int = 5, cooldown: float = 30.0, *, clock: Clock = time.monotonic) -> None:
        self.failures, self.cooldown = failures, cooldown
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        return self.HALF_OPEN if self._clock() - self._opened_at >= self.cooldown else self.OPEN

    def blocked_for(self) -> float | None:
        """None when a request may go now; otherwise how long until the next trial."""
        state = self.state
        if state == self.CLOSED:
            return None
        if state == self.HALF_OPEN and not self._probing:
            self._probing = True
            return None
        remaining = self._opened_at + self.cooldown - self._clock()
        return max(remaining, 0.0) if state == self.OPEN else min(self.cooldown, 1.0)

    def record(self, *, outage: bool, halt: bool = False) -> None:
        self._probing = False
        if halt:
            self._open()
        elif outage:
            self._consecutive += 1
            if self._opened_at is not None or self._consecutive >= self.failures:
                self._open()
        else:
            self._consecutive = 0
            self._opened_at = None

    def _open(self) -> None:
        self._opened_at = self._clock()


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None,
                  rng: random.Random | None = None) -> float:
    """Exponential back-off with full jitter, never shorter than the provider's Retry-After."""
    rng = rng or random
    jittered = rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))
    if retry_after is None:
        return jittered
    return retry_after + rng.uniform(0, min(1.0, 0.1 * retry_after + 0.05))
