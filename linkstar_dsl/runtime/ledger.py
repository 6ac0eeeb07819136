"""The send ledger as the runner uses it: record decisions, claim sends, complete them, recover.

Every decision is one ledger row keyed `flow:step:occurrence`.  A skip or a defer is written as
it is decided.  A send is *claimed* first (status `claimed`, with the runner's token) in one
transaction with the tick's other decisions, and only then handed to a channel; when the provider
answers, the row is *completed* (`sent`, or `failed`, or deferred again for a retry).  A runner
that dies between the two leaves claimed rows behind; the next runner to start takes them over
and sends them again under the same key, which the providers that keep idempotency keys (LINE's
`X-Line-Retry-Key`, the webhook's id) answer without delivering twice.  For providers without
one, a claim that was already tried (`attempts` > 0) is not resent but marked `unknown`, for a
person to check: sending twice is worse than asking.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs
import duckdb

from ..gates import Decision
from .sqlvalues import ID_LIST, id_list

_COLUMNS = (("key", "VARCHAR"), ("flow", "VARCHAR"), ("step", "BIGINT"), ("occurrence", "VARCHAR"),
            ("order_id", "VARCHAR"), ("customer_id", "VARCHAR"), ("channel", "VARCHAR"), ("template", "VARCHAR"),
            ("purpose", "VARCHAR"), ("decision", "VARCHAR"), ("reason", "VARCHAR"), ("due_at", "TIMESTAMPTZ"),
            ("send_at", "TIMESTAMPTZ"), ("status", "VARCHAR"), ("claimed_at", "TIMESTAMPTZ"),
            ("claimed_by", "VARCHAR"), ("detail", "VARCHAR"))
_UPSERT_TAIL = (" ON CONFLICT (key) DO UPDATE SET decision = excluded.decision, reason = excluded.reason, "
                "channel = excluded.channel, template = excluded.template, due_at = excluded.due_at, "
                "send_at = excluded.send_at, status = excluded.status, claimed_at = excluded.claimed_at, "
                "claimed_by = excluded.claimed_by, detail = excluded.detail "
                "WHERE ledger.decision = 'defer' AND ledger.status = 'decided'")
_COMPLETE_COLUMNS = (("decision", "VARCHAR"), ("reason", "VARCHAR"), ("status", "VARCHAR"), ("channel", "VARCHAR"),
                     ("send_at", "TIMESTAMPTZ"), ("completed_at", "TIMESTAMPTZ"), ("detail", "VARCHAR"),
                     ("provider_id", "VARCHAR"), ("new_claim", "VARCHAR"), ("bump", "BIGINT"), ("key", "VARCHAR"),
                     ("token", "VARCHAR"))


def _rows_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence]) -> tuple[str, list]:
    """A subquery yielding `rows` as typed columns, with its one parameter: the rows as JSON.

    One JSON parameter instead of one parameter per value: DuckDB's per-parameter conversion
    costs more than the write itself when a tick writes thousands of rows.  Column names and
    types are the constants above; only values travel in the parameter.
    """
    structure = json.dumps([{name: kind for name, kind in columns}])
    document = json.dumps([{name: _plain(value) for (name, _), value in zip(columns, row)} for row in rows],
                          ensure_ascii=False)
    names = ", ".join(name for name, _ in columns)
    return (f"(SELECT {names} FROM (SELECT unnest(from_json(?, {_quoted(structure)}), recursive := true)))",
            [document])


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class ClaimConflict(Exception):
    """Another runner wrote the same ledger rows first; this tick's claims were rolled back."""


@attrs.frozen
class Completion:
    """How a claimed send ended."""

    key: str
    status: str  # sent | failed | retry | unknown
    channel: str | None
    reason: str
    detail: dict
    provider_id: str | None = None
    retry_at: datetime | None = None
    #: The attempt was already counted before the request left (`mark_attempts`).
    counted: bool = False


def _row(d: Decision, status: str, now: datetime | None, token: str | None) -> list:
    detail = json.dumps({"detail": d.detail}, ensure_ascii=False)
    return [d.key, d.flow, d.step, d.occurrence, d.order_id, d.customer_id, d.channel, d.template, d.purpose,
            d.decision, d.reason, d.due_at, d.send_at, status, now, token, detail]


def record_and_claim(con: duckdb.DuckDBPyConnection, decisions: Sequence[Decision], now: datetime,
                     token: str) -> list[Decision]:
    """Write the tick's decisions in one transaction; the sends come back claimed by `token`.

    A row another runner decided or claimed in the meantime is left alone (the upsert only
    overwrites a deferral), so each send is claimed by exactly one runner.
    """
    if not decisions:
        return []
    rows = [_row(d, "claimed" if d.decision == "send" else "decided",
                 now if d.decision == "send" else None, token if d.decision == "send" else None)
            for d in decisions]
    try:
        con.execute("BEGIN TRANSACTION")
        table, params = _rows_table(_COLUMNS, rows)
        con.execute(f"INSERT INTO ledger ({', '.join(n for n, _ in _COLUMNS)}) SELECT * FROM {table}"
                    + _UPSERT_TAIL, params)
        sends = [d.key for d in decisions if d.decision == "send"]
        mine = set()
        if sends:
            mine = {k for (k,) in con.execute(
                f"SELECT key FROM ledger WHERE key IN {ID_LIST} AND status = 'claimed' AND claimed_by = ?",
                [id_list(sends), token]).fetchall()}
        con.execute("COMMIT")
    except duckdb.TransactionException as exc:
        _rollback(con)
        raise ClaimConflict(str(exc).splitlines()[0]) from None
    except BaseException:
        _rollback(con)
        raise
    return [d for d in decisions if d.decision == "send" and d.key in mine]


def mark_attempts(con: duckdb.DuckDBPyConnection, keys: Sequence[str]) -> None:
    """Note, before the requests leave, that these sends are being tried (providers without idempotency)."""
    if keys:
        con.execute(f"UPDATE ledger SET attempts = coalesce(attempts, 0) + 1 WHERE key IN {ID_LIST}", [id_list(keys)])


def complete(con: duckdb.DuckDBPyConnection, completions: Iterable[Completion], now: datetime, token: str) -> int:
    """Write how the claimed sends ended, in one transaction; the number of rows written."""
    rows = []
    for c in completions:
        detail = json.dumps(c.detail, ensure_ascii=False, default=str)
        if c.status == "retry":
            row = ["defer", "retry", "decided", c.channel, c.retry_at, None, detail, c.provider_id, None]
        elif c.status == "sent":
            row = ["send", "sent", "sent", c.channel, now, now, detail, c.provider_id, token]
        elif c.status == "unknown":
            row = ["send", c.reason, "unknown", c.channel, now, now, detail, c.provider_id, token]
        else:
            row = ["skip", c.reason, "failed", c.channel, now, now, detail, c.provider_id, token]
        rows.append(row + [0 if c.counted else 1, c.key, token])
    if not rows:
        return 0
    try:
        con.execute("BEGIN TRANSACTION")
        table, params = _rows_table(_COMPLETE_COLUMNS, rows)
        con.execute(
            "UPDATE ledger SET decision = u.decision, reason = u.reason, status = u.status, "
            "channel = coalesce(u.channel, ledger.channel), send_at = u.send_at, completed_at = u.completed_at, "
            "detail = u.detail, provider_id = u.provider_id, claimed_by = u.new_claim, "
            f"attempts = coalesce(ledger.attempts, 0) + u.bump FROM {table} AS u "
            "WHERE ledger.key = u.key AND ledger.claimed_by = u.token", params)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    return len(rows)


def orphaned(con: duckdb.DuckDBPyConnection, live_tokens: Iterable[str]) -> list[dict]:
    """Claimed rows whose runner is gone: they were claimed but never completed."""
    cursor = con.execute(
        "SELECT key, flow, step, occurrence, order_id, customer_id, channel, template, purpose, due_at, send_at, "
        "coalesce(attempts, 0) AS attempts, claimed_by FROM ledger WHERE status = 'claimed' "
        "AND claimed_by NOT IN (SELECT unnest(?)) ORDER BY claimed_at, key", [sorted(live_tokens)])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def take_over(con: duckdb.DuckDBPyConnection, keys: Sequence[str], old: dict[str, str], token: str,
              now: datetime) -> set[str]:
    """Move orphaned claims to `token`; the keys this runner now holds."""
    if not keys:
        return set()
    con.execute("BEGIN TRANSACTION")
    try:
        con.executemany("UPDATE ledger SET claimed_by = ?, claimed_at = ? WHERE key = ? AND claimed_by = ? "
                        "AND status = 'claimed'", [[token, now, k, old[k]] for k in keys])
        held = {k for (k,) in con.execute("SELECT key FROM ledger WHERE key IN (SELECT unnest(?)) AND claimed_by = ?",
                                          [list(keys), token]).fetchall()}
        con.execute("COMMIT")
    except duckdb.TransactionException:
        _rollback(con)
        return set()
    except BaseException:
        _rollback(con)
        raise
    return held


def runner_clock(con: duckdb.DuckDBPyConnection, runner: str) -> tuple[datetime, datetime] | None:
    """(origin, last tick) of a runner: where its first tick started and where its last one ended."""
    row = con.execute("SELECT origin, last_tick FROM runner_state WHERE runner = ?", [runner]).fetchone()
    return (row[0], row[1]) if row else None


def set_last_tick(con: duckdb.DuckDBPyConnection, runner: str, origin: datetime, at: datetime,
                  now: datetime) -> None:
    con.execute("INSERT INTO runner_state VALUES (?, ?, ?, ?) ON CONFLICT (runner) DO UPDATE SET "
                "last_tick = greatest(runner_state.last_tick, excluded.last_tick), updated_at = excluded.updated_at",
                [runner, origin, at, now])


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass
