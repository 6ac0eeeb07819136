"""What a buyer chooses through our links, and what an operator records as consent, in the store.

Each function runs inside the caller's transaction (the service's writer, or a CLI command's).

* `unsubscribe`: the one-click opt-out of RFC 8058.  A suppression `unsubscribed` on the link's
  channel (source `one_click`), the open consents on that channel revoked, the request kept in
  `preference_changes` with its evidence, and a customer event `unsubscribed`.  A click while a
  suppression is already in force on that channel changes nothing.
* `preferences` / `save_preferences`: the preference page: a channel on or off (off is the same
  suppression; on lifts only the buyer's own `unsubscribed`, never a bounce, a complaint or an
  erasure), and per channel the purposes the buyer does not want (consent revoked, the choice
  recorded; the service refuses such sends at the last moment, see `channels.py`).
* `grant` / `revoke`: consent recorded by an operator or the shop.  A grant is an explicit
  re-consent: it lifts the suppressions that only the buyer's own opt-out made.
"""

from __future__ import annotations

import json
from datetime import datetime

import attrs

from ..schema import CHANNELS, PURPOSES
from .refusal import Refusal

#: Channels a buyer has an address on, by the customers column holding it.
ADDRESS_COLUMNS = {"email": "email", "sms": "phone", "whatsapp": "whatsapp", "line": "line_user_id"}
#: Purposes a buyer can turn off per channel on the preference page (order updates cannot be).
PAGE_PURPOSES = ("marketing", "review", "service")
#: Suppressions a consent grant lifts: those the buyer's own opt-out made.
LIFTED_BY_CONSENT = ("unsubscribed", "complaint", "sms_stop", "whatsapp_marketing_opt_out")
#: Suppressions the preference page turns back on: only the buyer's own unsubscribe.
LIFTED_BY_PAGE = ("unsubscribed",)
CONSENT_LEVELS = ("implied", "express", "written", "double_opt_in")


@attrs.frozen
class Opt:
    """One link click as the service received it: who, which channel, which message, evidence."""

    customer_id: str
    channel: str
    message_key: str
    evidence: dict


def _erased(cur, customer_id: str) -> bool:
    return bool(cur.execute("SELECT count(*) FROM erasures WHERE customer_id = ?", [customer_id]).fetchone()[0])


def suppressed_channels(cur, customer_id: str, now: datetime) -> dict[str, list[str]]:
    """Channel (`*` for every channel) → the reasons of the suppressions in force."""
    found: dict[str, list[str]] = {}
    for channel, reason in cur.execute(
            "SELECT coalesce(channel, '*'), reason FROM suppressions WHERE customer_id = ? AND occurred_at <= ? "
            "ORDER BY occurred_at", [customer_id, now]).fetchall():
        found.setdefault(channel, []).append(reason)
    return found


def unsubscribe(cur, opt: Opt, now: datetime, source: str = "one_click") -> bool:
    """Record a one-click opt-out; whether anything changed."""
    in_force = suppressed_channels(cur, opt.customer_id, now)
    if opt.channel in in_force or "*" in in_force:
        return False
    _opt_out_channel(cur, opt, now, source)
    return True


def _opt_out_channel(cur, opt: Opt, now: datetime, source: str) -> None:
    cur.execute("INSERT INTO suppressions (customer_id, channel, reason, occurred_at, source) VALUES (?, ?, ?, ?, ?)",
                [opt.customer_id, opt.channel, "unsubscribed", now, source])
    cur.execute("UPDATE consents SET revoked_at = ? WHERE customer_id = ? AND channel = ? AND revoked_at IS NULL "
                "AND granted_at <= ?", [now, opt.customer_id, opt.channel, now])
    record(cur, opt.customer_id, opt.channel, None, "opt_out", now, source, opt.message_key, opt.evidence)
    _customer_event(cur, opt, None, now, source)


def record(cur, customer_id: str, channel: str | None, purpose: str | None, choice: str, now: datetime,
           source: str, message_key: str | None, evidence: dict | None) -> None:
    cur.execute("INSERT INTO preference_changes (customer_id, channel, purpose, choice, occurred_at, source, "
                "message_key, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [customer_id, channel, purpose, choice, now, source, message_key,
                 json.dumps(evidence or {}, ensure_ascii=False, default=str)])


def _customer_event(cur, opt: Opt, purpose: str | None, now: datetime, source: str) -> None:
    data = {"channel": opt.channel, "source": source, "ledger_key": opt.message_key}
    if purpose:
        data["purpose"] = purpose
    ident = f"{source}:{opt.customer_id}:{opt.channel}:{purpose or '*'}:{now.isoformat()}"
    cur.execute("INSERT INTO customer_events (id, customer_id, event, occurred_at, data) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING", [ident, opt.customer_id, "unsubscribed", now, json.dumps(data)])


# -- the preference page --------------------------------------------------------------------------


@attrs.frozen
class Preferences:
    """What the page shows: per channel whether it is on, why not, and the purposes turned off."""

    customer_id: str
    channels: tuple[str, ...]
    off: dict                     # channel → reasons of the suppressions in force
    purposes_off: frozenset       # {(channel, purpose)}
    everything_off: tuple[str, ...] = ()   # reasons of suppressions on every channel

    def channel_on(self, channel: str) -> bool:
        return not self.everything_off and channel not in self.off

    def can_turn_on(self, channel: str) -> bool:
        return not self.everything_off and all(r in LIFTED_BY_PAGE for r in self.off.get(channel, ()))


def preferences(cur, customer_id: str, link_channel: str, now: datetime) -> Preferences:
    row = cur.execute(f"SELECT {', '.join(ADDRESS_COLUMNS.values())} FROM customers WHERE id = ?",
                      [customer_id]).fetchone()
    channels = [c for c, value in zip(ADDRESS_COLUMNS, row or ()) if value]
    if link_channel in ADDRESS_COLUMNS and link_channel not in channels:
        channels.insert(0, link_channel)
    in_force = suppressed_channels(cur, customer_id, now)
    return Preferences(customer_id, tuple(channels), {c: tuple(r) for c, r in in_force.items() if c != "*"},
                       frozenset((ch, p) for _, ch, p in purpose_opt_outs(cur, customer_id)),
                       tuple(in_force.get("*", ())))


def purpose_opt_outs(cur, customer_id: str | None = None) -> set[tuple]:
    """{(customer, channel, purpose)} whose latest recorded choice is opt_out (of one customer, or all)."""
    where, params = ("WHERE purpose IS NOT NULL AND customer_id = ?", [customer_id]) if customer_id else \
        ("WHERE purpose IS NOT NULL", [])
    rows = cur.execute(
        "SELECT customer_id, channel, purpose, choice FROM preference_changes " + where +
        " QUALIFY row_number() OVER (PARTITION BY customer_id, channel, purpose "
        "ORDER BY occurred_at DESC, rowid DESC) = 1", params).fetchall()
    return {(c, ch, p) for c, ch, p, choice in rows if choice == "opt_out"}


def save_preferences(cur, opt: Opt, channels_on: set[str], purposes_off: set[tuple], now: datetime) -> dict:
    """Apply the page's form; what changed: {"off": [...], "on": [...], "kept_off": [...]}."""
    state = preferences(cur, opt.customer_id, opt.channel, now)
    changed = {"off": [], "on": [], "kept_off": []}
    for channel in state.channels:
        here = attrs.evolve(opt, channel=channel)
        on = state.channel_on(channel)
        if on and channel not in channels_on:
            _opt_out_channel(cur, here, now, "preferences")
            changed["off"].append(channel)
            on = False
        elif not on and channel in channels_on:
            if state.can_turn_on(channel):
                _lift(cur, opt.customer_id, channel, LIFTED_BY_PAGE, now, f"preferences:{opt.message_key}")
                record(cur, opt.customer_id, channel, None, "opt_in", now, "preferences", opt.message_key,
                       opt.evidence)
                changed["on"].append(channel)
                on = True
            else:
                changed["kept_off"].append(channel)
        if not on:
            continue  # a channel that is off: its purposes are not offered as choices
        for purpose in PAGE_PURPOSES:
            was_off, now_off = (channel, purpose) in state.purposes_off, (channel, purpose) in purposes_off
            if now_off and not was_off:
                _revoke_consents(cur, opt.customer_id, channel, purpose, now)
                record(cur, opt.customer_id, channel, purpose, "opt_out", now, "preferences", opt.message_key,
                       opt.evidence)
                _customer_event(cur, here, purpose, now, "preferences")
                changed["off"].append(f"{channel}:{purpose}")
            elif was_off and not now_off:
                record(cur, opt.customer_id, channel, purpose, "opt_in", now, "preferences", opt.message_key,
                       opt.evidence)
                changed["on"].append(f"{channel}:{purpose}")
    return changed


def _lift(cur, customer_id: str, channel: str, reasons, now: datetime, lifted_by: str) -> int:
    where = "customer_id = ? AND channel = ? AND reason IN (SELECT unnest(?::VARCHAR[])) AND occurred_at <= ?"
    params = [customer_id, channel, list(reasons), now]
    moved = cur.execute("INSERT INTO suppression_lifts SELECT customer_id, channel, reason, occurred_at, source, ?, ? "
                        f"FROM suppressions WHERE {where} RETURNING 1", [now, lifted_by, *params]).fetchall()
    if moved:
        cur.execute(f"DELETE FROM suppressions WHERE {where}", params)
    return len(moved)


def _revoke_consents(cur, customer_id: str, channel: str, purpose: str | None, now: datetime) -> int:
    sql = ("UPDATE consents SET revoked_at = ? WHERE customer_id = ? AND channel = ? AND revoked_at IS NULL "
           "AND granted_at <= ?")
    params = [now, customer_id, channel, now]
    if purpose is not None:
        sql += " AND purpose = ?"
        params.append(purpose)
    return len(cur.execute(sql + " RETURNING 1", params).fetchall())


# -- consent recorded by an operator or the shop ------------------------------------------------


@attrs.frozen
class ConsentChange:
    action: str                   # grant | revoke
    customer_id: str
    channel: str
    purpose: str
    level: str = "express"
    source: str = "api"
    evidence: dict = attrs.field(factory=dict)
    at: datetime | None = None


def check_consent(change: ConsentChange) -> None:
    """A `Refusal` (400) naming the field that is not one of its known values."""
    for field, value, known in (("action", change.action, ("grant", "revoke")), ("channel", change.channel, CHANNELS),
                                ("purpose", change.purpose, PURPOSES), ("level", change.level, CONSENT_LEVELS)):
        if value not in known:
            raise Refusal(400, "invalid", f"{field}: {value!r} is not one of {', '.join(known)}", field)


def change_consent(cur, change: ConsentChange, now: datetime) -> dict:
    check_consent(change)
    at = change.at or now
    if _erased(cur, change.customer_id):
        raise Refusal(409, "erased", f"customer {change.customer_id} was erased; nothing can be recorded for them")
    if not cur.execute("SELECT count(*) FROM customers WHERE id = ?", [change.customer_id]).fetchone()[0]:
        raise Refusal(404, "not-found", f"no customer {change.customer_id} in the store")
    if change.action == "revoke":
        revoked = _revoke_consents(cur, change.customer_id, change.channel, change.purpose, at)
        record(cur, change.customer_id, change.channel, change.purpose, "opt_out", at, change.source, None,
               change.evidence)
        return {"revoked": revoked}
    cur.execute("INSERT INTO consents (customer_id, channel, purpose, level, granted_at, source, double_opt_in_at, "
                "evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [change.customer_id, change.channel, change.purpose, change.level, at, change.source,
                 at if change.level == "double_opt_in" else None,
                 json.dumps(change.evidence, ensure_ascii=False, default=str)])
    lifted = _lift(cur, change.customer_id, change.channel, LIFTED_BY_CONSENT, at, f"consent:{change.source}")
    record(cur, change.customer_id, change.channel, change.purpose, "opt_in", at, change.source, None,
           change.evidence)
    return {"granted": 1, "lifted": lifted}
