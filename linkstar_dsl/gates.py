"""The gates every due message passes, in one fixed order, each with a typed reason.

Order (SPEC.md, "Runtime semantics"): the trigger's `unless`, the `where` guards, `exit when`,
`expire after`, the previous step of a sequence (a reminder goes only after the message it
follows), a pause of the flow (kill switch), the holdout, suppressions, platform exclusions,
purpose opt-outs (the buyer turned the flow's purpose off on every channel of the step), channel
choice (reachable, not suppressed on that channel, the purpose not turned off on it, consent and
friendship as the policies require), once-per, cooldown, cap, and last the send window in the
recipient's local time.  Each gate lets the message through, defers it to a time, or skips it;
the first gate that does not let it through decides.

Defaults: a closed window, a cooldown and a pause defer (the message is still worth sending later);
every other gate skips.  A paused channel is passed over for the next one in `via`; when the only
reachable channels are paused, the message waits.  `expire after` bounds every deferral.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from .compiler.plan import FlowPlan, Message, StepPlan
from .policies import MARKET_COUNTRIES

#: The reason codes, in gate order.
REASONS = ("sent", "unless", "guard", "exited", "expired", "previous-step", "paused", "holdout", "suppressed",
           "excluded", "opted-out", "no-channel", "once", "cooldown", "cap", "at-time", "window")
#: How long a later step waits for the runtime to decide the step before it, when that has not happened yet.
PREVIOUS_STEP_RECHECK = timedelta(hours=1)
#: How long a paused flow's or channel's message waits before the gates look at it again.
PAUSE_RECHECK = timedelta(minutes=15)

#: Where a buyer is, when the profile does not say: the phone's country calling code.
PHONE_PREFIXES = (("+81", "JP"), ("+49", "DE"), ("+33", "FR"), ("+39", "IT"), ("+34", "ES"),
                  ("+31", "NL"), ("+44", "GB"), ("+82", "KR"), ("+886", "TW"), ("+852", "HK"),
                  ("+86", "CN"), ("+65", "SG"), ("+61", "AU"), ("+64", "NZ"), ("+55", "BR"),
                  ("+52", "MX"), ("+1", "US"))
#: A country's default time zone, when neither the profile nor the phone settles it.
COUNTRY_ZONES = {"JP": "Asia/Tokyo", "US": "America/New_York", "CA": "America/Toronto", "DE": "Europe/Berlin",
                 "FR": "Europe/Paris", "IT": "Europe/Rome", "ES": "Europe/Madrid", "NL": "Europe/Amsterdam",
                 "GB": "Europe/London", "IE": "Europe/Dublin", "KR": "Asia/Seoul", "TW": "Asia/Taipei",
                 "HK": "Asia/Hong_Kong", "CN": "Asia/Shanghai", "SG": "Asia/Singapore",
                 "AU": "Australia/Sydney", "NZ": "Pacific/Auckland", "BR": "America/Sao_Paulo",
                 "MX": "America/Mexico_City", "BE": "Europe/Brussels", "AT": "Europe/Vienna"}
ADDRESS = {"line": "line_user_id", "email": "email", "sms": "phone", "whatsapp": "whatsapp"}
CONSENT_STRENGTH = {"implied": 0, "express": 1, "written": 2, "double_opt_in": 3}
#: CASL: consent implied by a purchase lapses two years after it (express consent never does).
IMPLIED_CONSENT_LIFETIME = timedelta(days=730)


@attrs.frozen
class Decision:
    flow: str
    step: int
    key: str
    occurrence: str
    order_id: str | None
    customer_id: str
    channel: str | None
    template: str | None
    decision: str  # send | defer | skip
    reason: str
    detail: str
    due_at: datetime
    send_at: datetime | None
    purpose: str

    def record(self) -> dict:
        return {"flow": self.flow, "step": self.step + 1, "order_id": self.order_id,
                "customer_id": self.customer_id, "channel": self.channel, "template": self.template,
                "decision": self.decision, "reason": self.reason, "detail": self.detail,
                "due_at": iso(self.due_at), "send_at": iso(self.send_at)}


def iso(t: datetime | None) -> str | None:
    """An instant as ISO 8601 in UTC (`2026-08-05T01:00:00Z`); None stays None."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else None


def bucket(*parts: str) -> int:
    """A sticky 0–9999 bucket: the same inputs always land in the same bucket."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def recipient_country(row: dict) -> str | None:
    return row.get("country") or row.get("ship_country")


def recipient_zone(row: dict) -> ZoneInfo:
    """Customer time zone → phone country → shipping country → UTC."""
    phone = row.get("phone") or ""
    by_phone = next((COUNTRY_ZONES.get(c) for p, c in PHONE_PREFIXES if phone.startswith(p)), None)
    for name in (row.get("timezone"), by_phone, COUNTRY_ZONES.get(row.get("country") or ""),
                 COUNTRY_ZONES.get(row.get("ship_country") or "")):
        if name:
            zone = _zone(name)
            if zone is not None:
                return zone
    return _zone("UTC")


def _zone(name: str) -> ZoneInfo | None:
    """The time zone called `name`, or None when there is none.

    The zones are kept here because `ZoneInfo`'s own cache holds only the last few it made,
    and a tick of recipients in more zones than that would read each zone's file again and again.
    """
    if name in _ZONES:
        return _ZONES[name]
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
        zone = None
    if len(_ZONES) < _ZONES_KEPT:  # the names come from data: a bound, whatever they hold
        _ZONES[name] = zone
    return zone


_ZONES: dict[str, ZoneInfo | None] = {}
_ZONES_KEPT = 4096


def _markets_of(country: str | None) -> frozenset[str]:
    markets = _MARKETS.get(country)
    if markets is None:
        markets = _MARKETS[country] = frozenset(m for m, members in MARKET_COUNTRIES.items() if country in members)
    return markets


#: country → the markets it belongs to, as they are asked for.
_MARKETS: dict[str | None, frozenset[str]] = {}


def reads_sends(plan: FlowPlan) -> bool:
    """Whether the gates count the recipient's past sends for `plan`: once-per, a cooldown or a cap."""
    return plan.once_per is not None or bool(plan.cooldown) or bool(plan.cap)


def reads_consents(plan: FlowPlan, row: dict) -> bool:
    """Whether the gates look at the recipient's consents for `plan`: a consent obligation holds in their market."""
    consents = [ob for ob in plan.obligations if ob.requirement == "consent"]
    if not consents:
        return False
    markets = _markets_of(recipient_country(row))
    return any(ob.market is None or ob.market in markets for ob in consents)


class _Verdict(Exception):
    def __init__(self, decision: str, reason: str, detail: str, send_at=None, channel=None) -> None:
        self.decision, self.reason, self.detail, self.send_at, self.channel = decision, reason, detail, send_at, channel


def decide(plan: FlowPlan, step: StepPlan, row: dict, now: datetime) -> Decision:
    message = choose_message(plan, step, row["customer_id"])
    try:
        channel, send_at = _gates(plan, step, row, now)
        decision, reason, detail = "send", "sent", f"via {channel}"
    except _Verdict as v:
        # The verdict's fields, not the verdict: kept, it would hold this frame through its
        # traceback, a cycle that only the garbage collector frees.
        decision, reason, detail, send_at, channel = v.decision, v.reason, v.detail, v.send_at, v.channel
    return Decision(plan.name, step.index, row["key"], row["occurrence"], row.get("order_id"), row["customer_id"],
                    channel, message.template if message else None, decision, reason, detail, row["due_at"],
                    send_at, plan.purpose)


def choose_message(plan: FlowPlan, step: StepPlan, customer_id: str) -> Message | None:
    if len(step.messages) == 1:
        return step.messages[0]
    point = bucket("split", plan.name, str(step.index), customer_id) / 100
    total = 0
    for message in step.messages:
        total += float(message.percent or 0)
        if point < total:
            return message
    return step.messages[-1]


def settled_by_row(plan: FlowPlan, row: dict, now: datetime) -> bool:
    """Whether the gates that read the due row alone (`unless`, `where`, `exit when`, `expire after`)
    skip it: then no later gate looks at the recipient's gate inputs."""
    try:
        _row_gates(plan, row, now)
    except _Verdict:
        return True
    return False


def _row_gates(plan: FlowPlan, row: dict, now: datetime) -> None:
    if not row["unless_ok"]:
        raise _Verdict("skip", "unless", "the trigger's `unless` event happened")
    if not row["guard_ok"]:
        raise _Verdict("skip", "guard", "a `where` condition is false at send time")
    if row["exited"]:
        raise _Verdict("skip", "exited", "an `exit when` condition is true")
    due = row["due_at"]
    if plan.expire and now > due + timedelta(seconds=plan.expire):
        raise _Verdict("skip", "expired", f"due {iso(due)}, expired after {plan.expire // 3600}h")


#: The suppressed channels of a recipient suppressed nowhere (most), shared.
_NOTHING: frozenset[str] = frozenset()


def _gates(plan: FlowPlan, step: StepPlan, row: dict, now: datetime) -> tuple[str, datetime]:
    _row_gates(plan, row, now)
    deadline = row["due_at"] + timedelta(seconds=plan.expire) if plan.expire else None
    previous = row.get("previous_step")
    if step.index > 0 and previous is not None:
        decision, reason, at = previous
        if decision == "skip":
            raise _Verdict("skip", "previous-step", f"step {step.index} was not sent ({reason})")
        if decision != "send":
            wait = at if decision == "defer" and at is not None and at > now else now + PREVIOUS_STEP_RECHECK
            if deadline is not None and wait > deadline:
                raise _Verdict("skip", "previous-step", f"step {step.index} is still waiting ({reason}) at expiry")
            raise _Verdict("defer", "previous-step", f"step {step.index} is not sent yet ({reason})", send_at=wait)
    if row.get("paused_flow"):
        raise _Verdict("defer", "paused", f"the flow is paused: {row['paused_flow']}", send_at=now + PAUSE_RECHECK)
    if plan.holdout is not None and bucket("holdout", plan.name, row["customer_id"]) < float(plan.holdout) * 100:
        raise _Verdict("skip", "holdout", f"in the {plan.holdout}% holdout group")
    listed = row.get("suppressed")
    suppressed = set(listed) if listed else _NOTHING
    if "*" in suppressed:
        raise _Verdict("skip", "suppressed", "the customer is suppressed on every channel")
    channel = _choose_channel(plan, step, row, suppressed, now)
    if plan.once_per is not None and row["once_used"]:
        raise _Verdict("skip", "once", f"already sent once per {plan.once_per}", channel=channel)
    if plan.cooldown and row["last_send"] is not None:
        free_at = row["last_send"] + timedelta(seconds=plan.cooldown)
        if now < free_at:
            if deadline is not None and free_at > deadline:
                raise _Verdict("skip", "cooldown", f"cooldown until {iso(free_at)}, after expiry", channel=channel)
            raise _Verdict("defer", "cooldown", f"last {plan.purpose} message at {iso(row['last_send'])}",
                           send_at=free_at, channel=channel)
    if plan.cap and row["cap_used"] >= plan.cap[0]:
        raise _Verdict("skip", "cap", f"{row['cap_used']} {plan.purpose} messages in the cap window",
                       channel=channel)
    if plan.at_local is not None:
        at = local_time_after(row["due_at"], plan.at_local, recipient_zone(row))
        if now < at:
            raise _Verdict("defer", "at-time", f"due at {plan.at_local[0]:02d}:{plan.at_local[1]:02d} local",
                           send_at=at, channel=channel)
    opens = next_opening(plan, channel, row, now)
    if opens > now:
        if deadline is not None and opens > deadline:
            raise _Verdict("skip", "window", f"the window opens at {iso(opens)}, after expiry", channel=channel)
        zone = recipient_zone(row)
        raise _Verdict("defer", "window", f"local time {now.astimezone(zone):%H:%M} {zone.key} is outside "
                       f"the send window", send_at=opens, channel=channel)
    return channel, now


def _choose_channel(plan: FlowPlan, step: StepPlan, row: dict, suppressed: set, now: datetime) -> str:
    if row.get("exclusions"):
        excluded = [c for c in step.channels if _excluded_on(row, c)]
        if excluded and len(excluded) == len(step.channels):
            raise _Verdict("skip", "excluded", _excluded_on(row, step.channels[0]))
    if row.get("opted_out"):
        opt_outs = [opt_out_on(row, channel) for channel in step.channels]
        if opt_outs and all(opt_outs):
            raise _Verdict("skip", "opted-out", "; ".join(dict.fromkeys(describe_opt_out(o) for o in opt_outs)))
    reasons, paused = [], row.get("paused_channels") or {}
    for channel in step.channels:
        problem = channel_problem(plan, channel, row, suppressed, now)
        if problem is None and channel in paused:
            problem = f"paused ({paused[channel]})"
        if problem is None:
            return channel
        reasons.append(f"{channel}: {problem}")
    if any(channel in paused and channel_problem(plan, channel, row, suppressed, now) is None
           for channel in step.channels):
        # A reachable channel is only paused: wait for it rather than give the message up.
        raise _Verdict("defer", "paused", "; ".join(reasons), send_at=now + PAUSE_RECHECK)
    raise _Verdict("skip", "no-channel", "; ".join(reasons) or "no channel")


def channel_problem(plan: FlowPlan, channel: str, row: dict, suppressed: set,
                    now: datetime | None = None) -> str | None:
    """Why `channel` cannot carry this message, or None.

    `now` dates the consents (CASL's implied consent lapses); without it, `row["_now"]`, and
    without that, consent never lapses.
    """
    field = ADDRESS.get(channel)
    if field is not None and not row.get(field):
        return f"no {field.replace('_', ' ')}"
    if channel == "amazon" and row.get("marketplace") != "amazon":
        return "not an Amazon order"
    exclusion = _excluded_on(row, channel)
    if exclusion is not None:
        return f"excluded ({exclusion})"
    if channel in suppressed:
        return "suppressed"
    opt_out = opt_out_on(row, channel)
    if opt_out is not None:
        return describe_opt_out(opt_out)
    if not plan.obligations:
        return None
    markets = _markets_of(recipient_country(row))
    consents = row.get("consents") or []
    for ob in plan.obligations:
        if ob.market is not None and ob.market not in markets:
            continue
        if ob.channels and channel not in ob.channels:
            continue
        if ob.requirement == "consent":
            level = ob.args[0] if ob.args else "implied"
            if not _consented(consents, channel, level, row.get("_now") if now is None else now):
                return f"no {level.replace('_', ' ')} consent"
        elif ob.requirement == "friend" and channel == "line" and not row.get("line_user_id"):
            return "not a LINE friend"
    return None


def opt_out_on(row: dict, channel: str) -> dict | None:
    """The buyer's opt-out of the flow's purpose that covers `channel` (`row["opted_out"]`), or None."""
    return next((o for o in row.get("opted_out") or () if o["channel"] in (channel, "*")), None)


def describe_opt_out(opt_out: dict) -> str:
    """`opted out of marketing on email at 2026-08-01T10:00:00Z (preferences)`."""
    where = "every channel" if opt_out["channel"] == "*" else opt_out["channel"]
    return f"opted out of {opt_out['purpose']} on {where} at {iso(opt_out['at'])} ({opt_out['source']})"


def _excluded_on(row: dict, channel: str) -> str | None:
    """Why a platform policy excludes this order on `channel` (FBA orders outside Amazon, …), or None."""
    for channels, why in row.get("exclusions") or ():
        if not channels or channel in channels:
            return why
    return None


def _consented(consents: list, channel: str, level: str, now: datetime | None = None) -> bool:
    for c in consents:
        if c["channel"] not in (channel, "any"):
            continue
        if level == "double_opt_in":
            if c["double_opt_in"] or c["level"] == "double_opt_in":
                return True
        elif level == "express_or_implied":
            lapsed = (c["level"] == "implied" and now is not None and c.get("granted_at") is not None
                      and now - c["granted_at"] > IMPLIED_CONSENT_LIFETIME)
            if not lapsed:
                return True
        elif level == "implied":
            return True
        elif CONSENT_STRENGTH.get(c["level"], 0) >= CONSENT_STRENGTH.get(level, 0):
            return True
    return False


def local_time_after(moment: datetime, hour_minute: tuple[int, int], zone: ZoneInfo) -> datetime:
    """The first instant at or after `moment` whose local time in `zone` is hour:minute."""
    local = moment.astimezone(zone)
    for day in range(0, 3):
        date = (local + timedelta(days=day)).date()
        candidate = datetime(date.year, date.month, date.day, *hour_minute, tzinfo=zone)
        if candidate >= local:
            return candidate.astimezone(moment.tzinfo)
    return moment


def windows_for(plan: FlowPlan, channel: str, row: dict) -> list[tuple[int, int, str]]:
    found = []
    if plan.window is not None:
        found.append((*plan.window, "the flow's window"))
    country = recipient_country(row)
    state = row.get("ship_state")
    for lw in plan.legal_windows:
        if lw.states and state not in lw.states:
            continue
        if country in lw.countries and (not lw.channels or channel in lw.channels):
            found.append((lw.start, lw.end, lw.source))
    return found


def _inside(minute: int, start: int, end: int) -> bool:
    return start <= minute < end if start < end else (minute >= start or minute < end)


def next_opening(plan: FlowPlan, channel: str, row: dict, now: datetime) -> datetime:
    """The first instant at or after `now` inside every window that applies, in local time."""
    windows = windows_for(plan, channel, row)
    if not windows:
        return now
    zone = recipient_zone(row)
    local = now.astimezone(zone)

    def allowed(t: datetime) -> bool:
        minute = t.hour * 60 + t.minute
        return all(_inside(minute, s, e) for s, e, _ in windows)

    if allowed(local):
        return now
    candidates = []
    for day in range(0, 3):
        date = (local + timedelta(days=day)).date()
        for start, _, _ in windows:
            t = datetime(date.year, date.month, date.day, start // 60, start % 60, tzinfo=zone)
            if t >= local and allowed(t):
                candidates.append(t)
    return min(candidates).astimezone(now.tzinfo) if candidates else now + timedelta(days=1)
