"""Channel fallback for one step (SPEC.md 7.4).

The messages are the step's renderings in the order of its `via` list.  Each is tried in turn:
sent stops; a permanent failure or a suppression moves on to the next channel (the suppression is
reported so the runtime can record it); a temporary failure stops too, and the runtime retries
that channel later while the message has not expired, unless the answer was doubtful (`RETRY?`)
and the provider keeps no idempotency key: then the runtime records the outcome as unknown rather
than risk a second message.  One message per step, never one per channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from .messages import Adapter, Outcome, OutgoingMessage, SendResult


@attrs.frozen
class FallbackOutcome:
    result: SendResult
    channel: str | None
    tried: tuple[tuple[str, SendResult], ...]
    suppressions: tuple[tuple[str, str], ...]

    @property
    def sent(self) -> bool:
        return self.result.sent


async def send_with_fallback(adapters: Mapping[str, Adapter],
                             messages: Sequence[OutgoingMessage]) -> FallbackOutcome:
    tried: list[tuple[str, SendResult]] = []
    suppressions: list[tuple[str, str]] = []
    for message in messages:
        adapter = adapters.get(message.channel)
        if adapter is None:
            result = SendResult(Outcome.PERMANENT, "", "PERM", code="no_adapter",
                                message=f"no adapter for channel {message.channel!r}")
        else:
            result = await adapter.send(message)
        tried.append((message.channel, result))
        if result.outcome is Outcome.SUPPRESS:
            suppressions.append((message.channel, result.suppress_reason or "unsubscribed"))
        if result.outcome in (Outcome.SENT, Outcome.RETRYABLE):
            return FallbackOutcome(result, message.channel, tuple(tried), tuple(suppressions))
    if not tried:
        empty = SendResult(Outcome.PERMANENT, "", "PERM", code="no_channel", message="no message to send")
        return FallbackOutcome(empty, None, (), ())
    channel, last = tried[-1]
    return FallbackOutcome(last, channel, tuple(tried), tuple(suppressions))
