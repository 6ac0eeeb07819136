"""What the gates read about the recipients of one tick, fetched in a few batched queries.

The due queries select the due occurrences with their guards; then, for every customer due in the
tick at once, four queries fetch their suppressions, purpose opt-outs, past sends and consents,
each reading the table by customer through its index.  Past sends and consents are fetched only
for the customers whose gates read them (`gates.reads_sends`: a flow with once-per, a cooldown
or a cap; `gates.reads_consents`: a flow with a consent obligation in the recipient's market):
reading their times row by row is the dearest part of the fetch.  Sends decided during the tick
are added as they happen, so a later step of the same tick sees them (cooldowns, caps and
once-per count them straight away).

Suppressions close a channel to every purpose, except `whatsapp_marketing_opt_out`, which closes
WhatsApp to what goes out there as marketing templates: marketing and review messages.  A purpose
opt-out is the latest choice recorded for a customer, channel and purpose in `preference_changes`
(the preference page, a consent revocation) when it is `opt_out`; it closes that channel to that
purpose (SPEC.md §7.2).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

import attrs

from .compiler.plan import FlowPlan
from .gates import reads_sends
from .store import key_lookups

#: Suppression reasons that close a channel to some purposes only: reason → those purposes.  A
#: WhatsApp marketing opt-out stops marketing templates, which review requests are too (the
#: checker's `whatsapp-template-category`); utility templates (transactional, service) still go.
PURPOSE_SUPPRESSIONS = {"whatsapp_marketing_opt_out": ("marketing", "review")}


@attrs.define
class Send:
    flow: str
    purpose: str
    order_id: str | None
    send_at: datetime
    occurrence: str | None = None


@attrs.define
class Recipients:
    """Suppressions, consents and sends of the customers due in one tick."""

    suppressed: dict[str, list[str]] = attrs.field(factory=dict)
    #: customer → (channel, purpose) closed by a suppression that covers some purposes only.
    suppressed_for: dict[str, list[tuple[str, str]]] = attrs.field(factory=lambda: defaultdict(list))
    #: customer → their purpose opt-outs in force: {channel, purpose, at, source}.
    opted_out: dict[str, list[dict]] = attrs.field(factory=lambda: defaultdict(list))
    #: customer → their consents (of the customers whose consents were fetched).
    consents: dict[str, list[dict]] = attrs.field(factory=lambda: defaultdict(list))
    sends: dict[str, list[Send]] = attrs.field(factory=lambda: defaultdict(list))

    def fill(self, row: dict, plan: FlowPlan, now: datetime) -> dict:
        """Add to `row` the gate inputs `gates.decide` reads for `plan`, as of `now`; return it.

        The past sends are counted only for a flow whose gates count them (`gates.reads_sends`).
        The channels, opt-outs and consents are tuples: they are only read, and the recipients
        without any (most) share the empty one, which leaves the garbage collector less to do.
        """
        customer = row["customer_id"]
        # `.get`, as the defaultdicts would otherwise grow an entry for every customer asked about
        suppressed, closed = self.suppressed.get(customer, ()), self.suppressed_for.get(customer)
        if closed:
            suppressed = [*suppressed, *(channel for channel, purpose in closed if purpose == plan.purpose)]
        row["suppressed"] = _unique(suppressed)
        opted_out, consents = self.opted_out.get(customer), self.consents.get(customer)
        row["opted_out"] = tuple(o for o in opted_out if o["purpose"] == plan.purpose) if opted_out else ()
        row["consents"] = tuple(c for c in consents if c["purpose"] in (plan.purpose, "any") and c["granted_at"] <= now
                                and (c["revoked_at"] is None or c["revoked_at"] > now)) if consents else ()
        if reads_sends(plan):
            row["last_send"], row["cap_used"], row["once_used"] = self._counted(
                self.sends.get(customer), plan, row, now)
        return row

    @staticmethod
    def _counted(sends, plan: FlowPlan, row: dict, now: datetime) -> tuple[datetime | None, int, bool]:
        """(last send of the purpose by `now`, sends of the purpose in the cap window, once-per used).

        A sequence's own earlier steps are one journey: they neither start its cooldown nor use
        up its `once per` (they still count towards caps).
        """
        if not sends:
            return None, 0, False
        last, used, once = None, 0, False
        occurrence, order_id = row.get("occurrence"), row.get("order_id")
        any_order = plan.once_per == "customer"
        window_start = now - timedelta(seconds=plan.cap[1]) if plan.cap else now
        for s in sends:
            journey = s.flow == plan.name and s.occurrence == occurrence
            if s.purpose == plan.purpose:
                if s.send_at > window_start:
                    used += 1
                if not journey and s.send_at <= now and (last is None or s.send_at > last):
                    last = s.send_at
            if not journey and s.flow == plan.name and (any_order or s.order_id == order_id):
                once = True
        return last, used, once

    def sent(self, customer: str, plan: FlowPlan, order_id: str | None, at: datetime,
             occurrence: str | None = None) -> None:
        self.sends[customer].append(Send(plan.name, plan.purpose, order_id, at, occurrence))


def fetch(con, customers: set[str], now: datetime, consents_of: set[str] | None = None,
          sends_of: set[str] | None = None) -> Recipients:
    """The gate inputs of `customers`; consents only of those in `consents_of`, past sends only of
    those in `sends_of` (None: of all)."""
    found = Recipients()
    if not customers:
        return found
    consenting = customers if consents_of is None else customers & consents_of
    sending = customers if sends_of is None else customers & sends_of
    # The ids travel as one JSON parameter; each query filters on `customer_id` alone, which
    # DuckDB answers from that column's index (`store.key_lookups`).  The other conditions are
    # applied here, as a second filter would make DuckDB scan instead.
    mine = "customer_id IN (SELECT unnest(from_json(?, '[\"VARCHAR\"]')))"
    ids = json.dumps(sorted(customers))
    with key_lookups(con):
        suppressions = con.execute(f"SELECT customer_id, channel, occurred_at, reason FROM suppressions "
                                   f"WHERE {mine}", [ids]).fetchall()
        choices = con.execute("SELECT customer_id, channel, purpose, choice, occurred_at, source "
                              f"FROM preference_changes WHERE {mine}", [ids]).fetchall()
        sends = con.execute("SELECT customer_id, flow, purpose, order_id, send_at, occurrence, decision FROM ledger "
                            f"WHERE {mine}", [json.dumps(sorted(sending))]).fetchall() if sending else []
        consents = con.execute(
            "SELECT customer_id, channel, purpose, level, double_opt_in_at IS NOT NULL, granted_at, revoked_at "
            f"FROM consents WHERE {mine}", [json.dumps(sorted(consenting))]).fetchall() if consenting else []
    for customer, channel, occurred_at, reason in sorted(suppressions, key=lambda r: r[2]):
        if occurred_at > now:
            continue
        if reason in PURPOSE_SUPPRESSIONS:
            found.suppressed_for[customer] += [(channel or "*", p) for p in PURPOSE_SUPPRESSIONS[reason]]
            continue
        channels = found.suppressed.setdefault(customer, [])
        if (channel or "*") not in channels:
            channels.append(channel or "*")
    for customer, opt_out in _purpose_opt_outs(choices, now):
        found.opted_out[customer].append(opt_out)
    for customer, channel, purpose, level, doi, granted, revoked in consents:
        found.consents[customer].append({"channel": channel, "purpose": purpose, "level": level,
                                         "double_opt_in": doi, "granted_at": granted, "revoked_at": revoked})
    for customer, flow, purpose, order_id, send_at, occurrence, decision in sends:
        if decision == "send":
            found.sends[customer].append(Send(flow, purpose, order_id, send_at, occurrence))
    return found


def _purpose_opt_outs(choices, now: datetime) -> list[tuple[str, dict]]:
    """(customer, opt-out) for each customer, channel and purpose whose latest choice by `now` is opt_out.

    Of two choices recorded at the same instant the opt-out wins: the safer reading of a tie.
    """
    latest: dict[tuple, tuple] = {}
    for customer, channel, purpose, choice, at, source in sorted(choices, key=lambda r: (r[4], r[3] == "opt_out")):
        if purpose is not None and at <= now:
            latest[(customer, channel or "*", purpose)] = (choice, at, source)  # no channel: every channel
    return [(customer, {"channel": channel, "purpose": purpose, "at": at, "source": source})
            for (customer, channel, purpose), (choice, at, source) in sorted(latest.items())
            if choice == "opt_out"]


def _unique(channels) -> tuple[str, ...]:
    return tuple(dict.fromkeys(channels)) if channels else ()
