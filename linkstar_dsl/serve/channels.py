"""The channels as the service's engine sees them: the last check before a message leaves, and counts.

The gates see a buyer's opt-out at the next tick: a channel suppression, and a purpose turned off
on a channel (`preference_changes`, reason `opted-out`), even where the purpose needs no consent.
A message claimed a moment before the buyer clicked is already past them; `Blocklist` holds what
the service recorded while it runs (channel opt-outs, erasures) and the purposes buyers turned
off, and `GuardedChannels.send` refuses a message it covers as a permanent failure of that
channel (code `opted_out`), so the next channel of the flow is tried, or the message is skipped.

Every answer is counted by channel and outcome for `/metrics`.
"""

from __future__ import annotations

import attrs

from ..adapters.messages import Outcome, SendResult


@attrs.define
class Blocklist:
    customers: set = attrs.field(factory=set)          # erased: every channel
    channels: set = attrs.field(factory=set)           # (customer, channel)
    purposes: set = attrs.field(factory=set)           # (customer, channel, purpose)

    def blocks(self, customer: str | None, channel: str, purpose: str) -> str | None:
        if customer is None:
            return None
        if customer in self.customers:
            return "the customer's data was erased"
        if (customer, channel) in self.channels:
            return f"the customer opted out of {channel}"
        if (customer, channel, purpose) in self.purposes:
            return f"the customer opted out of {purpose} messages on {channel}"
        return None


class GuardedChannels:
    def __init__(self, inner, blocklist: Blocklist, metrics) -> None:
        self.inner = inner
        self.blocklist = blocklist
        self.metrics = metrics

    @property
    def adapters(self) -> dict:
        return getattr(self.inner, "adapters", {})

    async def send(self, message) -> SendResult:
        why = self.blocklist.blocks(message.metadata.get("customer_id"), message.channel, message.purpose)
        if why is not None:
            self.metrics.sends.inc(message.channel, "opted_out")
            return SendResult(Outcome.PERMANENT, "linkstar", category="PERM", code="opted_out",
                              message=why + " after the message was decided", attempts=0)
        result = await self.inner.send(message)
        self.metrics.sends.inc(message.channel, result.outcome.value)
        return result
