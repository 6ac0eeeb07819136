"""Sending what a tick claimed: render each message, hand it to its channel, classify the answer.

For each claimed send the channels tried are the one the gates chose, then the later channels of
the step's `via` list the recipient can be reached on.  Each is rendered for the recipient's
locale (a template that does not render moves on to the next channel, and is never sent half
filled), then sent through the channel engine: sent stops; a permanent failure or a suppression
moves on; a temporary failure stops, and the send is deferred for a retry with backoff (the gates
are checked again then) until its attempts run out.  A doubtful failure (`RETRY?`: a 5xx, a reset
or a timeout after the request may have reached the provider) on a channel whose provider keeps
no idempotency key stops too, and completes the send as `outcome-unknown`: retrying it, or trying
the next channel, could deliver a second message.  On a channel whose provider keeps one, the
doubtful attempt is retried like a temporary failure, and noted in the retry (`doubtful`): from
then on the send goes only to that channel, and a retry that does not end sent ends `unknown`,
never failed.  Suppressions the providers report are written to the store at once, so no later
message goes to that address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from ..adapters.messages import Outcome, OutgoingMessage, SendResult
from ..compiler.plan import FlowPlan, StepPlan
from ..gates import ADDRESS, Decision, channel_problem, iso, recipient_country
from ..policies import MARKET_COUNTRIES
from .ledger import Completion, describe_doubt
from .sqlvalues import ID_LIST, id_list

#: Waits before the retries of a send that met a temporary failure on every channel tried.
RETRY_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
#: Policy requirements met by something a template must show.
FOOTER_REQUIREMENTS = ("unsubscribe_link", "sender_identity", "sender_address", "ad_disclosure")


@attrs.frozen
class Job:
    """One claimed send: the decision, where it came from, and what the gates saw."""

    decision: Decision
    plan: FlowPlan
    step: StepPlan
    row: Mapping
    attempts: int = 0
    #: An earlier attempt that may have reached the provider (`ledger.settle_doubt`): when, where, its answer.
    doubt: Mapping | None = None


@attrs.frozen
class Records:
    """The rows a message is rendered from, fetched once per tick."""

    customers: Mapping[str, dict]
    orders: Mapping[str, dict]
    carts: Mapping[str, dict]  # by trigger occurrence
    reviews: Mapping[str, dict] = attrs.field(factory=dict)  # by order id

    @classmethod
    def fetch(cls, con, jobs: Sequence[Job]) -> Records:
        customers = {j.decision.customer_id for j in jobs}
        orders = {j.decision.order_id for j in jobs if j.decision.order_id}
        occurrences = [j.decision.occurrence for j in jobs if j.plan.subject == "customer"]
        return cls(_by_id(con, f"SELECT * FROM customers WHERE id IN {ID_LIST}", customers),
                   _by_id(con, f"SELECT * FROM orders WHERE id IN {ID_LIST}", orders),
                   _by_id(con, "SELECT e.id AS occurrence_id, ct.* FROM customer_events e JOIN carts ct "
                          f"ON ct.id = e.cart_id WHERE e.id IN {ID_LIST}", occurrences, key="occurrence_id"),
                   _by_id(con, f"SELECT * FROM reviews WHERE order_id IN {ID_LIST}", orders, key="order_id"))


def _by_id(con, sql: str, ids, key: str = "id") -> dict[str, dict]:
    if not ids:
        return {}
    cursor = con.execute(sql, [id_list(sorted(ids))])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values)) for values in cursor.fetchall()]
    return {(row.pop(key) if key == "occurrence_id" else row[key]): row for row in rows}


class Rendering:
    """A renderer per folder of flow files, and the variables of each message: the same in the engine's
    process and in the dispatch workers (`dispatch_pool`)."""

    def __init__(self, program, settings) -> None:
        self.program = program
        self.settings = settings
        self.now: datetime | None = None
        self._renderers: dict[str, object] = {}
        self._by_flow: dict[str, object] = {}  # flow name → its folder's renderer

    def renderer(self, plan: FlowPlan):
        found = self._by_flow.get(plan.name)
        if found is not None:
            return found
        origin = self.program.origin(plan.name)
        key = str(origin.parent) if origin is not None else ""
        found = self._renderers.get(key)
        if found is None:
            from .render import Renderer

            found = self._renderers[key] = Renderer.for_flow_file(origin, self.settings)
        self._by_flow[plan.name] = found
        return found

    def context(self, job: Job, records: Records, channel: str) -> dict:
        from .render_context import render_context

        d = job.decision
        params = next((m.params for m in job.step.messages if m.template == d.template), ())
        return render_context(records.customers.get(d.customer_id) or {}, records.orders.get(d.order_id),
                              records.carts.get(d.occurrence), self.settings, d.key, channel, self.now,
                              params=params, review=records.reviews.get(d.order_id))


def address(channel: str, decision: Decision, row: Mapping, customer: Mapping | None) -> str | None:
    if channel == "amazon":
        return decision.order_id
    if channel == "webhook":
        return decision.customer_id
    field = ADDRESS.get(channel)
    value = (customer or {}).get(field) if field else None
    return value or (row.get(field) if field else None)


def requirements(plan: FlowPlan, channel: str, row: Mapping) -> set[str]:
    """The footer requirements the policies put on this message, for this recipient's market."""
    country = recipient_country(row)
    markets = {m for m, members in MARKET_COUNTRIES.items() if country in members}
    return {ob.requirement for ob in plan.obligations
            if ob.requirement in FOOTER_REQUIREMENTS and (ob.market is None or ob.market in markets)
            and (not ob.channels or channel in ob.channels)}


def candidates(job: Job, paused_channels: Mapping[str, str]) -> list[str]:
    chosen = job.decision.channel
    if job.doubt is not None:
        return [chosen]  # another channel could deliver a second message
    later = list(job.step.channels)
    later = later[later.index(chosen) + 1:] if chosen in later else []
    suppressed = set(job.row.get("suppressed") or ())
    return [chosen] + [c for c in later if c not in paused_channels
                       and channel_problem(job.plan, c, dict(job.row), suppressed) is None]


@attrs.define
class Dispatcher:
    """Renders and sends the claimed jobs of a tick, a bounded number at a time."""

    channels: object  # adapters.ChannelEngine (or anything with `send` and `adapters`)
    renderer_for: Callable[[FlowPlan], object]
    context_for: Callable[[Job, Records, str], dict]
    concurrency: int = 64
    on_suppress: Callable[[str, str, str, str], None] | None = None
    #: Called with the keys of a batch about to go to providers without idempotency keys.
    on_attempt: Callable[[list[str]], None] | None = None
    #: Called with each completion as soon as its send has ended (the ledger writes them in chunks).
    on_complete: Callable[[Completion], None] | None = None
    max_attempts: int = len(RETRY_BACKOFF) + 1
    _requirements: dict = attrs.field(factory=dict, init=False)

    async def run(self, jobs: Sequence[Job], records: Records, now: datetime,
                  paused_channels: Mapping[str, str]) -> list[Completion]:
        # `concurrency` workers take the jobs in order.  The attempts of the jobs for providers
        # without idempotency keys are noted in one write per chunk of `concurrency` jobs, just
        # before the first of them goes: a crash leaves at most about one chunk whose outcome is
        # unknown, and no worker waits for a whole chunk to finish.
        results: list[Completion | None] = [None] * len(jobs)
        counted: set[str] = set()
        marked: set[int] = set()
        order = iter(enumerate(jobs))

        def mark(chunk: int) -> None:
            marked.add(chunk)
            batch = jobs[chunk * self.concurrency:(chunk + 1) * self.concurrency]
            risky = sorted(j.decision.key for j in batch if not all(self._repeat_safe(c) for c in j.step.channels))
            if risky and self.on_attempt is not None:
                self.on_attempt(risky)
                counted.update(risky)

        async def worker() -> None:
            for index, job in order:
                if index // self.concurrency not in marked:
                    mark(index // self.concurrency)
                completion = await self.send(job, records, now, paused_channels)
                if completion.key in counted:
                    completion = attrs.evolve(completion, counted=True)
                results[index] = completion
                if self.on_complete is not None:
                    self.on_complete(completion)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(jobs)))))
        return results

    def _repeat_safe(self, channel: str) -> bool:
        adapter = getattr(self.channels, "adapters", {}).get(channel)
        return bool(getattr(adapter, "repeat_safe", False))

    def _requires(self, job: Job, channel: str) -> set[str]:
        """`requirements`, worked out once per flow, channel and country in a tick."""
        country = recipient_country(job.row)
        key = (job.plan.name, channel, country if isinstance(country, str) else None)
        found = self._requirements.get(key)
        if found is None:
            found = self._requirements[key] = requirements(job.plan, channel, job.row)
        return found

    async def send(self, job: Job, records: Records, now: datetime,
                   paused_channels: Mapping[str, str]) -> Completion:
        completion = await self._send(job, records, now, paused_channels)
        if job.doubt is not None and completion.status == "failed":
            return _still_doubtful(completion, job.doubt)
        return completion

    async def _send(self, job: Job, records: Records, now: datetime,
                    paused_channels: Mapping[str, str]) -> Completion:
        d = job.decision
        customer = records.customers.get(d.customer_id)
        tried: list[dict] = []
        messages: list[OutgoingMessage] = []
        renderer = self.renderer_for(job.plan)
        for channel in candidates(job, paused_channels):
            to = address(channel, d, job.row, customer)
            if not to:
                tried.append({"channel": channel, "outcome": "permanent", "code": "no_address"})
                continue
            try:
                context = self.context_for(job, records, channel)
                content = renderer.render(d.template, channel, (customer or {}).get("locale") or "en", context,
                                          purpose=job.plan.purpose, requires=self._requires(job, channel))
            except Exception as exc:  # a template that does not render is that channel's permanent failure
                tried.append({"channel": channel, "outcome": "permanent", "code": "render_error",
                              "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
                continue
            decision = d if channel == d.channel else attrs.evolve(d, channel=channel)
            messages.append(OutgoingMessage.for_decision(decision, to, content,
                                                         unsubscribe_url=context.get("unsubscribe_url")))
        if not messages:
            return Completion(d.key, "failed", d.channel, "send-failed", {"tried": tried})
        last: SendResult | None = None
        for message in messages:
            result = await self.channels.send(message)
            last = result
            tried.append(_brief(message.channel, result))
            if result.outcome is Outcome.SUPPRESS and self.on_suppress is not None:
                self.on_suppress(d.customer_id, message.channel, result.suppress_reason or "unsubscribed",
                                 result.provider)
            if result.sent:
                return Completion(d.key, "sent", message.channel, "sent", {"tried": tried},
                                  provider_id=result.provider_message_id)
            if result.outcome is Outcome.RETRYABLE:
                if result.maybe_delivered and not self._repeat_safe(message.channel):
                    return _outcome_unknown(d.key, message.channel, tried)
                doubt = job.doubt or (_doubt(message.channel, result, now) if result.maybe_delivered else None)
                return self._retry(job, message.channel, result, tried, now, doubt)
        return Completion(d.key, "failed", messages[-1].channel, "send-failed", {"tried": tried},
                          provider_id=last.provider_message_id if last else None)

    def _retry(self, job: Job, channel: str, result: SendResult, tried: list, now: datetime,
               doubt: Mapping | None) -> Completion:
        attempt = job.attempts
        if attempt + 1 >= self.max_attempts:
            return Completion(job.decision.key, "failed", channel, "send-failed",
                              {"tried": tried, "gave_up_after": attempt + 1})
        wait = RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)]
        if result.retry_after:
            wait = max(wait, timedelta(seconds=result.retry_after))
        detail = {"tried": tried, **({"doubtful": dict(doubt)} if doubt else {})}
        return Completion(job.decision.key, "retry", channel, "retry", detail, retry_at=now + wait)


def _outcome_unknown(key: str, channel: str, tried: list) -> Completion:
    """A doubtful answer from a provider without idempotency keys: a person checks, nothing is resent."""
    return Completion(key, "unknown", channel, "outcome-unknown", {
        "tried": tried, "detail": f"{channel} may have accepted the message before failing, and its provider "
                                  "keeps no idempotency key, so it is neither retried nor sent on another "
                                  "channel; check the provider's log"})


def _doubt(channel: str, result: SendResult, now: datetime) -> dict:
    """A doubtful answer, as the ledger keeps it until the send is settled."""
    what = result.status or {"timeout": "no answer in time", "disconnected": "the connection dropped"}.get(
        result.code or "", result.code or result.category)
    return {"at": iso(now), "channel": channel, "provider": result.provider,
            "answer": f"{what} after the request was sent"}


def _still_doubtful(completion: Completion, doubt: Mapping) -> Completion:
    """A retry after a doubtful attempt that failed for good: that attempt may still have delivered."""
    return attrs.evolve(completion, status="unknown", reason="outcome-unknown", detail={
        **completion.detail, "doubtful": dict(doubt),
        "detail": f"{describe_doubt(doubt)}; the retries failed ({completion.reason}); check the provider's log"})


def _brief(channel: str, result: SendResult) -> dict:
    """What `tried` says of one attempt on `channel`."""
    out = {"channel": channel, "outcome": result.outcome.value, "class": result.category,
           "provider": result.provider}
    for name, value in (("code", result.code), ("status", result.status),
                        ("provider_message_id", result.provider_message_id),
                        ("suppress_reason", result.suppress_reason), ("retry_after", result.retry_after)):
        if value not in (None, ""):
            out[name] = value
    if result.message and not result.sent:
        out["message"] = result.message[:200]
    return out
