"""What the gates read about the recipients of one tick, fetched in a few batched queries.

The due queries select the due occurrences with their guards; then, for every customer due in the
tick at once, four queries fetch their suppressions, purpose opt-outs, consents and past sends,
each reading the table by customer through its index.  Sends decided during the tick are added as
they happen, so a later step of the same tick sees them (cooldowns, caps and once-per count them
straight away).

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
    consents: dict[str, list[dict]] = attrs.field(factory=lambda: defaultdict(list))
    sends: dict[str, list[Send]] = attrs.field(factory=lambda: defaultdict(list))

    def fill(self, row: dict, plan: FlowPlan, now: datetime) -> dict:
        """The row with the gate inputs `gates.decide` reads, as of `now`."""
        customer = row["customer_id"]
        sends = list(self.sends.get(customer, ()))
        same_purpose = [s for s in sends if s.purpose == plan.purpose]
        # A sequence's own earlier steps are one journey: they neither start its cooldown nor use
        # up its `once per` (they still count towards caps).
        journey = (plan.name, row.get("occurrence"))
        others = [s for s in sends if (s.flow, s.occurrence) != journey]
        past = [s.send_at for s in same_purpose if s.send_at <= now and (s.flow, s.occurrence) != journey]
        window = timedelta(seconds=plan.cap[1]) if plan.cap else timedelta(0)
        consents = [c for c in self.consents.get(customer, ())
                    if c["purpose"] in (plan.purpose, "any") and c["granted_at"] <= now
                    and (c["revoked_at"] is None or c["revoked_at"] > now)]
        once_used = any(s.flow == plan.name and (s.order_id == row.get("order_id") or plan.once_per == "customer")
                        for s in others)
        closed_for_purpose = [channel for channel, purpose in self.suppressed_for.get(customer, ())
                              if purpose == plan.purpose]
        return {
            **row,
            "suppressed": _unique([*self.suppressed.get(customer, []), *closed_for_purpose]),
            "opted_out": [o for o in self.opted_out.get(customer, ()) if o["purpose"] == plan.purpose],
            "consents": consents,
            "last_send": max(past) if past else None,
            "cap_used": sum(1 for s in same_purpose if s.send_at > now - window),
            "once_used": once_used,
        }

    def sent(self, customer: str, plan: FlowPlan, order_id: str | None, at: datetime,
             occurrence: str | None = None) -> None:
        self.sends[customer].append(Send(plan.name, plan.purpose, order_id, at, occurrence))


def fetch(con, customers: set[str], now: datetime) -> Recipients:
    found = Recipients()
    if not customers:
        return found
    # The ids travel as one JSON parameter into a temporary table; each query then filters on
    # `customer_id` alone, which DuckDB answers from that column's index (`store.key_lookups`).
    # The other conditions are applied here, as a second filter would make DuckDB scan instead.
    con.execute("CREATE OR REPLACE TEMP TABLE linkstar_recipients AS "
                "SELECT unnest(from_json(?, '[\"VARCHAR\"]')) AS id", [json.dumps(sorted(customers))])
    mine = "customer_id IN (SELECT id FROM linkstar_recipients)"
    with key_lookups(con):
        suppressions = con.execute(f"SELECT customer_id, channel, occurred_at, reason FROM suppressions "
                                   f"WHERE {mine}").fetchall()
        choices = con.execute("SELECT customer_id, channel, purpose, choice, occurred_at, source "
                              f"FROM preference_changes WHERE {mine}").fetchall()
        consents = con.execute("SELECT customer_id, channel, purpose, level, double_opt_in_at IS NOT NULL, granted_at, "
                               f"revoked_at FROM consents WHERE {mine}").fetchall()
        sends = con.execute("SELECT customer_id, flow, purpose, order_id, send_at, occurrence, decision FROM ledger "
                            f"WHERE {mine}").fetchall()
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


def _unique(channels: list[str]) -> list[str]:
    return list(dict.fromkeys(channels))
