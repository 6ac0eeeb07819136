"""What goes into an adapter and what comes out.

`OutgoingMessage` is one rendered message for one channel; `SendResult` is the provider's answer
reduced to one of four outcomes the runtime acts on (sent, retryable, permanent, suppress), with
the finer class from the channel reference (`OK`, `DONE`, `RETRY`, `RETRY?`, `DEFER`, `REROUTE`,
`PERM`, `SUPPRESS`, `HALT`) and the provider's own code and text kept for the ledger.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, Union

import attrs


@attrs.frozen
class Text:
    """Plain text: an SMS body, a LINE text message, WhatsApp session text, a webhook's text."""

    body: str


@attrs.frozen
class Email:
    subject: str
    text: str
    html: str | None = None


@attrs.frozen
class LineFlex:
    """A LINE Flex message: `contents` is a bubble or carousel container as LINE's JSON."""

    alt_text: str
    contents: Mapping[str, Any]


@attrs.frozen
class WhatsAppTemplate:
    """An approved WhatsApp template: name, language code and the components' parameters."""

    name: str
    language: str
    components: tuple[Mapping[str, Any], ...] = ()


@attrs.frozen
class AmazonSolicitation:
    """Amazon's own review-and-feedback request: Amazon writes the text, we only ask."""


Content = Union[Text, Email, LineFlex, WhatsAppTemplate, AmazonSolicitation]


@attrs.frozen
class OutgoingMessage:
    """One message for one channel.

    `key` is the ledger key `flow:step:occurrence`; every provider idempotency key is derived from
    it.  `to` is the channel's address: a LINE user id, an E.164 number, an email address, an
    Amazon order id, or for a webhook the customer id it is about.
    """

    key: str
    channel: str
    to: str
    content: Content
    purpose: str = "marketing"
    unsubscribe_url: str | None = None
    #: End of the WhatsApp customer-service window (free-form text is allowed only before it).
    session_until: datetime | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def for_decision(cls, decision, to: str, content: Content, **fields) -> OutgoingMessage:
        """The message for a `gates.Decision` to send: its key, channel and purpose carried over."""
        metadata = {"flow": decision.flow, "step": str(decision.step), "customer_id": decision.customer_id}
        if decision.order_id:
            metadata["order_id"] = decision.order_id
        if decision.template:
            metadata["template"] = decision.template
        if "metadata" in fields:
            metadata.update(dict(fields.pop("metadata")))
        return cls(decision.key, decision.channel, to, content, purpose=decision.purpose, metadata=metadata,
                   **fields)


class Outcome(str, enum.Enum):
    SENT = "sent"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    SUPPRESS = "suppress"


#: The channel reference's classes, and the outcome each one is for the runtime.
CLASS_OUTCOMES = {
    "OK": Outcome.SENT, "DONE": Outcome.SENT,
    "RETRY": Outcome.RETRYABLE, "RETRY?": Outcome.RETRYABLE, "DEFER": Outcome.RETRYABLE,
    "HALT": Outcome.RETRYABLE,
    "REROUTE": Outcome.PERMANENT, "PERM": Outcome.PERMANENT,
    "SUPPRESS": Outcome.SUPPRESS,
}

#: Why a recipient must not be contacted again on a channel: the one vocabulary of the
#: `suppressions.reason` column, whoever writes the row (adapters, delivery feedback, imports).
SUPPRESS_REASONS = {
    "unsubscribed": "the recipient unsubscribed",
    "hard_bounce": "the address does not exist",
    "complaint": "the recipient reported the message as spam",
    "line_unfollow": "the user blocked (unfollowed) the LINE account or is not a friend",
    "sms_stop": "the recipient replied STOP",
    "whatsapp_marketing_opt_out": "the user stopped WhatsApp marketing (utility messages still allowed)",
    "undeliverable": "the address cannot receive this channel (landline, not on WhatsApp)",
    "erasure": "the customer's personal data was erased on request",
}


@attrs.frozen
class SendResult:
    outcome: Outcome
    provider: str
    category: str = "OK"
    provider_message_id: str | None = None
    retry_after: float | None = None
    suppress_reason: str | None = None
    code: str | None = None
    message: str = ""
    status: int | None = None
    attempts: int = 1

    @property
    def sent(self) -> bool:
        return self.outcome is Outcome.SENT

    @property
    def maybe_delivered(self) -> bool:
        """A failure after which the provider may still have accepted the message."""
        return self.category == "RETRY?"

    @property
    def halts(self) -> bool:
        """An account or credential problem: the provider's circuit opens at once."""
        return self.category == "HALT"

    @property
    def outage(self) -> bool:
        """A failure that says the provider is unwell (not a throttle, not a bad message)."""
        return self.outcome is Outcome.RETRYABLE and (self.status is None or self.status >= 500) \
            and self.category in ("RETRY", "RETRY?")

    def record(self) -> dict:
        """The fields the ledger keeps."""
        return {"outcome": self.outcome.value, "class": self.category, "provider": self.provider,
                "provider_message_id": self.provider_message_id, "retry_after": self.retry_after,
                "suppress_reason": self.suppress_reason, "code": self.code, "message": self.message,
                "status": self.status, "attempts": self.attempts}


class Adapter(Protocol):
    """What every channel adapter is: one method, one message in, one classified result out."""

    async def send(self, message: OutgoingMessage) -> SendResult: ...
