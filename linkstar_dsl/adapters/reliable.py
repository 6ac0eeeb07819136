"""An adapter wrapped in the provider's limits: rate, concurrency, retries and circuit breaker.

`ReliableAdapter.send` makes one or more attempts through the wrapped adapter:

* every attempt holds a concurrency slot and a slot of every rate limiter (channel, account);
* a retryable answer is retried after exponential back-off with jitter, never sooner than the
  provider's Retry-After, up to the description's `retries`;
* it is not retried here, and goes back to the runtime to reschedule, when the provider asked
  for a longer wait than `max_wait` (`DEFER`, a long Retry-After), when the account is halted,
  or when the first attempt may have gone through and the provider has no idempotency key
  (`RETRY?` without `repeat_safe`): resending then could deliver twice;
* an open circuit answers at once with a retryable result, without calling the provider.

An answer that ends the attempts without a delivery after an earlier doubtful one (`RETRY?` on a
`repeat_safe` provider, then a 429) is given back as that doubtful answer: the message may be there.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import attrs

from .descriptions import LimitSettings
from .limits import CircuitBreaker, Limits, backoff_delay
from .masking import log_result
from .messages import Outcome, OutgoingMessage, SendResult

Sleep = Callable[[float], Awaitable[None]]


class ReliableAdapter:
    def __init__(self, adapter, *, provider: str, settings: LimitSettings, limits: Limits,
                 breaker: CircuitBreaker, repeat_safe: bool, sleep: Sleep = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.adapter = adapter
        self.provider = provider
        self.settings = settings
        self.limits = limits
        self.breaker = breaker
        self.repeat_safe = repeat_safe
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def send(self, message: OutgoingMessage) -> SendResult:
        attempt = 0
        doubtful: SendResult | None = None
        while True:
            attempt += 1
            result = await self._attempt(message)
            if result.attempts != attempt:
                result = attrs.evolve(result, attempts=attempt)
            doubtful = result if result.maybe_delivered else doubtful
            delay = self._retry_delay(result, attempt)
            if delay is None:
                if doubtful is not None and not result.sent and not result.maybe_delivered:
                    # A later answer (429, an open circuit, a refusal) does not settle an earlier
                    # attempt the provider may have taken: the runtime must still treat it as doubtful.
                    result = attrs.evolve(doubtful, attempts=attempt)
                log_result(message, result)
                return result
            await self._sleep(delay)

    async def _attempt(self, message: OutgoingMessage) -> SendResult:
        blocked = self.breaker.blocked_for()
        if blocked is not None:
            return SendResult(Outcome.RETRYABLE, self.provider, "RETRY", retry_after=blocked,
                              code="circuit_open", message=f"{self.provider} is failing: circuit open")
        async with self.limits.slot():
            result = await self.adapter.send(message)
        self.breaker.record(outage=result.outage, halt=result.halts)
        if result.halts:
            result = attrs.evolve(result, retry_after=max(result.retry_after or 0, self.breaker.cooldown))
        return result

    def _retry_delay(self, result: SendResult, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to stop here."""
        if result.outcome is not Outcome.RETRYABLE or attempt > self.settings.retries:
            return None
        if result.code == "circuit_open" or result.category in ("DEFER", "HALT"):
            return None
        if result.maybe_delivered and not self.repeat_safe:
            return None
        delay = backoff_delay(attempt, self.settings.backoff, self.settings.max_backoff, result.retry_after,
                              self._rng)
        return delay if delay <= self.settings.max_wait else None
