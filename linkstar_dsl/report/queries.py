"""What `linkstar report` reads from the store: one query that counts outcomes per message.

A **message** is a ledger row that was sent (`decision = send`, status `sent`), that failed
(status `failed`, or a skip `send-failed`), or that held a customer back as a **holdout member**
(a skip `holdout`).  Its time is when it was sent, or the due time for a holdout member.  For
each message the query works out:

* `delivered` / `bounced`: the provider's delivery report (`ledger.delivery`);
* `opened`, `clicked`, `replied`, `unsubscribed`, `complained`: a customer event of that name
  about the message: the event names its ledger key (`data.ledger_key`), or else it is the
  customer's latest message before the event (on the event's channel, when it names one) within
  the attribution window;
* `unsubscribed` and `complained` also from the suppressions (lifted ones included): an opt-out or
  a complaint on the message's channel, or on every channel, after the message and within the
  window;
* `converted`: the customer placed an order (not canceled) after the message, within the window.

Tables and columns an older store lacks count as no data (`Sources` says which were missing).
The SQL is fixed text; the flow name, the period and the window travel as parameters.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import attrs
import duckdb

#: Customer events (stdlib/schema.flow) that tell what a buyer did with a message.
ENGAGEMENT = ("opened", "clicked", "replied", "unsubscribed", "complained")
#: Suppression reasons that mean "stop sending me this" (feedback and the kill switch use them).
OPT_OUTS = ("unsubscribed", "sms_stop", "line_unfollow", "line_blocked", "whatsapp_marketing_opt_out")
COMPLAINTS = ("complaint",)
#: Counts per (flow, step, variant, kind), in this order after the key columns.
COUNTS = ("messages", "delivered", "bounced", "opened", "clicked", "replied", "unsubscribed", "complained",
          "stopped", "converted")


class ReportError(Exception):
    """A store that cannot be reported on: missing, unreadable, or without a ledger."""


@attrs.frozen
class Sources:
    """Which optional parts of the store were there to read."""

    delivery: bool
    customer_events: bool
    suppressions: bool
    orders: bool

    def missing(self) -> list[str]:
        names = {"delivery": "ledger.delivery", "customer_events": "customer_events",
                 "suppressions": "suppressions", "orders": "orders"}
        return [label for field, label in names.items() if not getattr(self, field)]


@attrs.frozen
class Filters:
    flow: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    window: timedelta = timedelta(days=7)


def open_read_only(path: str) -> duckdb.DuckDBPyConnection:
    if not Path(path).is_file():
        raise ReportError(f"{path}: no such database")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReportError(f"{path}: cannot be read as a linkstar store ({first})") from None
    con.execute("SET TimeZone = 'UTC'")
    return con


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.execute("SELECT table_name, column_name FROM duckdb_columns() "
                       "WHERE database_name = current_database() AND schema_name = 'main'").fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


_LEDGER_NEEDS = {"key", "flow", "step", "customer_id", "channel", "template", "decision", "reason", "due_at",
                 "send_at", "status"}


def sources(con: duckdb.DuckDBPyConnection) -> Sources:
    have = _columns(con)
    if not _LEDGER_NEEDS <= have.get("ledger", set()):
        raise ReportError("the store has no ledger yet: nothing has been sent (run `linkstar run` first)")
    return Sources(delivery="delivery" in have["ledger"],
                   customer_events={"customer_id", "event", "occurred_at", "data"} <= have.get("customer_events", set()),
                   suppressions={"customer_id", "channel", "reason", "occurred_at"} <= have.get("suppressions", set()),
                   orders={"customer_id", "placed_at", "status"} <= have.get("orders", set()))


def flows(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [name for (name,) in con.execute("SELECT DISTINCT flow FROM ledger ORDER BY flow").fetchall()]


def _sql(src: Sources, filters: Filters, lifts: bool) -> str:
    where = []
    if filters.flow is not None:
        where.append("flow = $flow")
    if filters.since is not None:
        where.append("t >= $since")
    if filters.until is not None:
        where.append("t < $until")
    delivery = "delivery" if src.delivery else "CAST(NULL AS VARCHAR)"
    if src.customer_events:
        events = (
            "ev AS (SELECT id, customer_id, event, occurred_at, json_extract_string(data, '$.ledger_key') AS lkey, "
            "  json_extract_string(data, '$.channel') AS ch FROM customer_events "
            "  WHERE event IN (SELECT unnest($engagement))), "
            "touched AS ("
            "  SELECT e.id, e.event, s.key FROM ev e JOIN all_sends s ON s.key = e.lkey "
            "  UNION ALL "
            "  SELECT e.id, e.event, arg_max(s.key, s.t) FROM ev e JOIN all_sends s "
            "    ON s.customer_id = e.customer_id AND s.t <= e.occurred_at AND e.occurred_at <= s.t + $window "
            "    AND (e.ch IS NULL OR e.ch = s.channel) "
            "  WHERE NOT EXISTS (SELECT 1 FROM all_sends k WHERE k.key = e.lkey) GROUP BY e.id, e.event), "
            "engaged AS (SELECT key, bool_or(event = 'opened') AS opened, bool_or(event = 'clicked') AS clicked, "
            "  bool_or(event = 'replied') AS replied, bool_or(event = 'unsubscribed') AS unsubscribed, "
            "  bool_or(event = 'complained') AS complained FROM touched GROUP BY key), ")
    else:
        events = ("engaged AS (SELECT CAST(NULL AS VARCHAR) AS key, false AS opened, false AS clicked, "
                  "false AS replied, false AS unsubscribed, false AS complained WHERE false), ")
    if src.suppressions:
        stops = "stops AS (SELECT customer_id, channel, reason, occurred_at FROM suppressions"
        if lifts:
            stops += " UNION ALL SELECT customer_id, channel, reason, occurred_at FROM suppression_lifts"
        stops += "), "
    else:
        stops = ("stops AS (SELECT CAST(NULL AS VARCHAR) AS customer_id, CAST(NULL AS VARCHAR) AS channel, "
                 "CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS TIMESTAMPTZ) AS occurred_at WHERE false), ")

    def stopped_by(reasons: str) -> str:
        return ("EXISTS (SELECT 1 FROM stops x WHERE x.customer_id = m.customer_id "
                "AND (x.channel IS NULL OR x.channel = m.channel) AND x.reason IN (SELECT unnest(" + reasons + ")) "
                "AND x.occurred_at > m.t AND x.occurred_at <= m.t + $window)")

    converted = ("EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = m.customer_id AND o.status <> 'canceled' "
                 "AND o.placed_at > m.t AND o.placed_at <= m.t + $window)") if src.orders else "false"
    return (
        "WITH base AS (SELECT key, flow, step, template AS variant, customer_id, channel, "
        f"  {delivery} AS delivery, "
        "  CASE WHEN decision = 'skip' AND reason = 'holdout' THEN 'holdout' "
        "       WHEN status = 'failed' OR (decision = 'skip' AND reason = 'send-failed') THEN 'failed' "
        "       WHEN decision = 'send' AND status NOT IN ('claimed', 'unknown', 'failed') THEN 'sent' END AS kind, "
        "  CASE WHEN decision = 'skip' AND reason = 'holdout' THEN due_at ELSE coalesce(send_at, due_at) END AS t "
        "  FROM ledger), "
        "msgs AS (SELECT * FROM base WHERE kind IS NOT NULL" + "".join(" AND " + w for w in where) + "), "
        "all_sends AS (SELECT key, customer_id, channel, t FROM base WHERE kind = 'sent'), "
        + events + stops +
        "flags AS (SELECT m.flow, m.step, m.variant, m.kind, m.delivery, "
        "  coalesce(g.opened, false) AS opened, coalesce(g.clicked, false) AS clicked, "
        "  coalesce(g.replied, false) AS replied, "
        "  coalesce(g.unsubscribed, false) OR " + stopped_by("$opt_outs") + " AS unsubscribed, "
        "  coalesce(g.complained, false) OR " + stopped_by("$complaints") + " AS complained, "
        f"  {converted} AS converted "
        "  FROM msgs m LEFT JOIN engaged g ON g.key = m.key) "
        "SELECT flow, step, variant, kind, count(*), count(*) FILTER (WHERE delivery = 'delivered'), "
        "  count(*) FILTER (WHERE delivery IN ('failed', 'bounced')), count(*) FILTER (WHERE opened), "
        "  count(*) FILTER (WHERE clicked), count(*) FILTER (WHERE replied), count(*) FILTER (WHERE unsubscribed), "
        "  count(*) FILTER (WHERE complained), count(*) FILTER (WHERE unsubscribed OR complained), "
        "  count(*) FILTER (WHERE converted) "
        "FROM flags GROUP BY flow, step, variant, kind ORDER BY flow, step, variant NULLS FIRST, kind")


def counts(con: duckdb.DuckDBPyConnection, src: Sources, filters: Filters) -> list[dict]:
    """One dict per (flow, step, variant, kind): the key columns and the `COUNTS`."""
    lifts = src.suppressions and "suppression_lifts" in _columns(con)
    params: dict[str, object] = {"window": filters.window, "opt_outs": list(OPT_OUTS),
                                 "complaints": list(COMPLAINTS)}
    if src.customer_events:
        params["engagement"] = list(ENGAGEMENT)
    if filters.flow is not None:
        params["flow"] = filters.flow
    if filters.since is not None:
        params["since"] = filters.since
    if filters.until is not None:
        params["until"] = filters.until
    rows = con.execute(_sql(src, filters, lifts), params).fetchall()
    keys = ("flow", "step", "variant", "kind", *COUNTS)
    return [dict(zip(keys, row)) for row in rows]
