"""The kill switch: pausing and resuming flows and channels, by hand or by policy.

A pause is a row in `pauses`; it is in force from `paused_at` until it is resumed or its `until`
passes.  The gates read the pauses in force at the tick's clock: a paused flow's messages wait
(`defer`, reason `paused`), a paused channel is passed over for the next one in `via`.

`auto_pause` is the policy that stops a flow on its own: when the share of a flow's recipients
who unsubscribed or complained after one of its messages passes a threshold (0.5% by default)
over a window (7 days), the flow is paused with the figures as its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import attrs

SCOPES = ("flow", "channel")
#: Suppression reasons that count as a buyer saying "stop" to a flow.
COMPLAINT_REASONS = ("unsubscribed", "complaint", "sms_stop", "line_unfollow", "line_blocked")


class PauseError(ValueError):
    """A pause or resume that cannot be done (unknown scope, nothing to resume)."""


@attrs.frozen
class Paused:
    """What is paused at one instant: name → reason, per scope."""

    flows: dict = attrs.field(factory=dict)
    channels: dict = attrs.field(factory=dict)


@attrs.frozen
class AutoPausePolicy:
    threshold: float = 0.005
    window: timedelta = timedelta(days=7)
    #: Below this many sends in the window the rate says too little to act on.
    min_sends: int = 200


def in_force(con, now: datetime) -> Paused:
    rows = con.execute(
        "SELECT scope, name, arg_max(reason, paused_at) FROM pauses WHERE paused_at <= ? "
        "AND (resumed_at IS NULL OR resumed_at > ?) AND (until IS NULL OR until > ?) GROUP BY scope, name",
        [now, now, now]).fetchall()
    paused = Paused()
    for scope, name, reason in rows:
        (paused.flows if scope == "flow" else paused.channels)[name] = reason
    return paused


def pause(con, scope: str, name: str, reason: str, *, now: datetime, source: str = "cli",
          until: datetime | None = None) -> None:
    _check_scope(scope)
    if until is not None and until <= now:
        raise PauseError(f"--until {until.isoformat()} is not after now")
    con.execute("INSERT INTO pauses (scope, name, paused_at, until, reason, source) VALUES (?, ?, ?, ?, ?, ?)",
                [scope, name, now, until, reason, source])


def resume(con, scope: str, name: str, *, now: datetime) -> int:
    """End every pause of `name` in force; the number ended (0 means it was not paused)."""
    _check_scope(scope)
    (count,) = con.execute(
        "UPDATE pauses SET resumed_at = ? WHERE scope = ? AND name = ? AND resumed_at IS NULL "
        "AND (until IS NULL OR until > ?)", [now, scope, name, now]).fetchone()
    if not count:
        raise PauseError(f"the {scope} {name} is not paused")
    return count


def listing(con, now: datetime) -> list[dict]:
    cursor = con.execute(
        "SELECT scope, name, paused_at, until, reason, source FROM pauses WHERE paused_at <= ? "
        "AND resumed_at IS NULL AND (until IS NULL OR until > ?) ORDER BY scope, name, paused_at", [now, now])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def complaint_rates(con, flows: Iterable[str], now: datetime, window: timedelta) -> dict[str, tuple[int, int]]:
    """flow → (sends in the window, recipients who said stop after one of them, in the window)."""
    flows = sorted(set(flows))
    if not flows:
        return {}
    since = now - window
    rows = con.execute(
        "WITH sends AS (SELECT flow, customer_id, channel, min(send_at) AS first_send, count(*) AS n FROM ledger "
        "  WHERE decision = 'send' AND status <> 'failed' AND send_at > ? AND send_at <= ? "
        "  AND flow IN (SELECT unnest(?)) GROUP BY flow, customer_id, channel) "
        "SELECT s.flow, sum(s.n), count(DISTINCT CASE WHEN EXISTS (SELECT 1 FROM suppressions x "
        "  WHERE x.customer_id = s.customer_id AND (x.channel IS NULL OR x.channel = s.channel) "
        "  AND x.reason IN (SELECT unnest(?)) AND x.occurred_at > s.first_send AND x.occurred_at <= ?) "
        "  THEN s.customer_id END) FROM sends s GROUP BY s.flow",
        [since, now, flows, list(COMPLAINT_REASONS), now]).fetchall()
    return {flow: (int(sent), int(stopped)) for flow, sent, stopped in rows}


def auto_pause(con, flows: Iterable[str], now: datetime, policy: AutoPausePolicy = AutoPausePolicy()) -> list[str]:
    """Pause every flow whose stop rate passed the policy's threshold; the flows paused now."""
    already = in_force(con, now).flows
    paused = []
    for flow, (sent, stopped) in sorted(complaint_rates(con, flows, now, policy.window).items()):
        if flow in already or sent < policy.min_sends or stopped / sent <= policy.threshold:
            continue
        days = policy.window.total_seconds() / 86400
        reason = (f"{stopped} of {sent} recipients unsubscribed or complained in {days:g}d "
                  f"({stopped / sent:.2%} > {policy.threshold:.2%})")
        pause(con, "flow", flow, reason, now=now, source="policy")
        paused.append(flow)
    return paused


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise PauseError(f"cannot pause a {scope!r}: pause a flow or a channel")
