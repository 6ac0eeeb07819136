"""What the gates read about the recipients of one tick, fetched in a few batched queries.

The due queries select the due occurrences with their guards; then, for every customer due in the
tick at once, three queries fetch their suppressions, consents and past sends, each reading the
table by customer through its index.  Sends
decided during the tick are added as they happen, so a later step of the same tick sees them
(cooldowns, caps and once-per count them straight away).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

import attrs

from .compiler.plan import FlowPlan
from .store import key_lookups


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
        return {
            **row,
            "suppressed": self.suppressed.get(customer, []),
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
        suppressions = con.execute(f"SELECT customer_id, channel, occurred_at FROM suppressions WHERE {mine}").fetchall()
        consents = con.execute("SELECT customer_id, channel, purpose, level, double_opt_in_at IS NOT NULL, granted_at, "
                               f"revoked_at FROM consents WHERE {mine}").fetchall()
        sends = con.execute("SELECT customer_id, flow, purpose, order_id, send_at, occurrence, decision FROM ledger "
                            f"WHERE {mine}").fetchall()
    for customer, channel, occurred_at in sorted(suppressions, key=lambda r: r[2]):
        if occurred_at <= now:
            channels = found.suppressed.setdefault(customer, [])
            if (channel or "*") not in channels:
                channels.append(channel or "*")
    for customer, channel, purpose, level, doi, granted, revoked in consents:
        found.consents[customer].append({"channel": channel, "purpose": purpose, "level": level,
                                         "double_opt_in": doi, "granted_at": granted, "revoked_at": revoked})
    for customer, flow, purpose, order_id, send_at, occurrence, decision in sends:
        if decision == "send":
            found.sends[customer].append(Send(flow, purpose, order_id, send_at, occurrence))
    return found
