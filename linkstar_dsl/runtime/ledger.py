"""The send ledger as the runner uses it: record decisions, claim sends, complete them, recover.

Every decision is one ledger row keyed `flow:step:occurrence`.  A skip or a defer is written as
it is decided.  A send is *claimed* first (status `claimed`, with the runner's token) in one
transaction with the tick's other decisions, and only then handed to a channel; when the provider
answers, the row is *completed* (`sent`, or `failed`, or deferred again for a retry).  A runner
that dies between the two leaves claimed rows behind; the next runner to start takes them over
and sends them again under the same key, which the providers that keep idempotency keys (LINE's
`X-Line-Retry-Key`, the webhook's id) answer without delivering twice.  For providers without
one, a claim that was already tried (`attempts` > 0) is not resent but marked `unknown`, for a
person to check: sending twice is worse than asking.  `CompletionWriter` completes the sends of a
tick in chunks as they end, committing each in a worker thread while the event loop sends on.

A send retried after a doubtful answer (the provider may have taken it, or a stopped runner may
have sent it) carries that attempt in its `detail` (`doubtful`) through every later decision until
it is sent.  Such a row is never a
plain skip: when a gate stops the retry, it is completed `unknown` instead (`settle_doubt`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs
import duckdb

from ..gates import Decision
from ..store import key_lookups
from .sqlvalues import ID_LIST, id_list

_COLUMNS = (("key", "VARCHAR"), ("flow", "VARCHAR"), ("step", "BIGINT"), ("occurrence", "VARCHAR"),
            ("order_id", "VARCHAR"), ("customer_id", "VARCHAR"), ("channel", "VARCHAR"), ("template", "VARCHAR"),
            ("purpose", "VARCHAR"), ("decision", "VARCHAR"), ("reason", "VARCHAR"), ("due_at", "TIMESTAMPTZ"),
            ("send_at", "TIMESTAMPTZ"), ("status", "VARCHAR"), ("claimed_at", "TIMESTAMPTZ"),
            ("claimed_by", "VARCHAR"), ("detail", "VARCHAR"), ("completed_at", "TIMESTAMPTZ"))
_NAMES = ", ".join(name for name, _ in _COLUMNS)
#: A row new to the ledger carries no doubtful attempt, so its claim follows from its decision:
#: a send is claimed by the runner writing it, the rest are decided.  The statement writes those
#: columns (`_INSERT_NEW`), which spares their values a trip through JSON.
_CLAIM_COLUMNS = ("status", "claimed_at", "claimed_by", "completed_at")
_NEW_COLUMNS = tuple(column for column in _COLUMNS if column[0] not in _CLAIM_COLUMNS)
_INSERT_NEW = (f"INSERT INTO ledger ({', '.join(name for name, _ in _NEW_COLUMNS)}, {', '.join(_CLAIM_COLUMNS)}) "
               f"SELECT {', '.join(name for name, _ in _NEW_COLUMNS)}, "
               "CASE WHEN decision = 'send' THEN 'claimed' ELSE 'decided' END, "
               "CASE WHEN decision = 'send' THEN ?::TIMESTAMPTZ END, CASE WHEN decision = 'send' THEN ? END, "
               "NULL FROM {table}")
_UPSERT_TAIL = (" ON CONFLICT (key) DO UPDATE SET decision = excluded.decision, reason = excluded.reason, "
                "channel = excluded.channel, template = excluded.template, due_at = excluded.due_at, "
                "send_at = excluded.send_at, status = excluded.status, claimed_at = excluded.claimed_at, "
                "claimed_by = excluded.claimed_by, detail = excluded.detail, completed_at = excluded.completed_at "
                "WHERE ledger.decision = 'defer' AND ledger.status = 'decided'")
_COMPLETE_COLUMNS = (("decision", "VARCHAR"), ("reason", "VARCHAR"), ("status", "VARCHAR"), ("channel", "VARCHAR"),
                     ("send_at", "TIMESTAMPTZ"), ("completed_at", "TIMESTAMPTZ"), ("detail", "VARCHAR"),
                     ("provider_id", "VARCHAR"), ("new_claim", "VARCHAR"), ("bump", "BIGINT"), ("key", "VARCHAR"),
                     ("token", "VARCHAR"))

#: What every completion writes; `decision` and `send_at`, which are indexed, only when they change.
_COMPLETE_SET = ("reason = u.reason, status = u.status, channel = coalesce(u.channel, ledger.channel), "
                 "completed_at = u.completed_at, detail = u.detail, provider_id = u.provider_id, "
                 "claimed_by = u.new_claim, attempts = coalesce(ledger.attempts, 0) + u.bump")


def _rows_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence]) -> tuple[str, list]:
    """A subquery yielding `rows` as typed columns, with its parameters: each column as a JSON array.

    One JSON parameter per column instead of one parameter per value: DuckDB's per-parameter
    conversion costs more than the write itself when a tick writes thousands of rows, and a
    flat array per column is quicker for it to read than an object per row.  Column names and
    types are the constants above; only values travel in the parameters.
    """
    values = list(zip(*rows)) if rows else [()] * len(columns)
    params = [json.dumps(_times(column) if kind == "TIMESTAMPTZ" else column, ensure_ascii=False, default=_plain)
              for (_, kind), column in zip(columns, values)]
    selected = ", ".join(f"unnest(from_json(?, {_quoted(json.dumps([kind]))})) AS {name}"
                         for name, kind in columns)
    return f"(SELECT {selected})", params


def _times(column: Sequence) -> list:
    """A column of times as ISO 8601, ready for JSON (quicker than `_plain` a value at a time)."""
    return [t.isoformat() if isinstance(t, datetime) else t for t in column]


def _plain(value):
    """How JSON carries what it has no type for: a time as ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be written to the ledger")


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


def _row(d: Decision, status: str, now: datetime | None, token: str | None, detail: dict,
         completed_at: datetime | None = None) -> list:
    return [d.key, d.flow, d.step, d.occurrence, d.order_id, d.customer_id, d.channel, d.template, d.purpose,
            d.decision, d.reason, d.due_at, d.send_at, status, now, token,
            json.dumps(detail, ensure_ascii=False, default=str), completed_at]


def _new_row(d: Decision) -> list:
    """The `_NEW_COLUMNS` of a decision the ledger does not hold yet."""
    # the detail {"detail": …} as json.dumps writes it, without building the dict
    return [d.key, d.flow, d.step, d.occurrence, d.order_id, d.customer_id, d.channel, d.template, d.purpose,
            d.decision, d.reason, d.due_at, d.send_at,
            '{"detail": ' + json.dumps(d.detail, ensure_ascii=False, default=str) + "}"]


def doubt_of(detail: str | None) -> dict | None:
    """The doubtful attempt a row's `detail` carries, if any."""
    if not detail:
        return None
    try:
        found = json.loads(detail)
    except ValueError:
        return None
    doubt = found.get("doubtful") if isinstance(found, dict) else None
    return doubt if isinstance(doubt, dict) else None


def describe_doubt(doubt: dict) -> str:
    return f"an attempt at {doubt.get('at')} may have reached {doubt.get('channel')} ({doubt.get('answer')})"


def settle_doubt(d: Decision, doubt: dict) -> Completion | None:
    """How a decision on a send that may already have reached its provider ends; None: it goes on.

    A deferral waits, and a send on the same channel is retried under the same idempotency key.
    Anything else would record that nothing went out while something may have: a skip, or a send
    on another channel (which could deliver a second message), is completed `unknown`.
    """
    if d.decision == "defer" or (d.decision == "send" and d.channel == doubt.get("channel")):
        return None
    why = (f"{d.reason} ({d.detail})" if d.decision == "skip"
           else f"{doubt.get('channel')} is no longer the channel to use ({d.detail})")
    return Completion(d.key, "unknown", doubt.get("channel"), "outcome-unknown", {
        "detail": f"{describe_doubt(doubt)}; not retried: {why}", "doubtful": doubt,
        "stopped": {"decision": d.decision, "reason": d.reason, "detail": d.detail}}, counted=True)


@attrs.frozen
class Recorded:
    """What `record` did with a tick's decisions."""

    #: The decisions as written: a retry stopped after a doubtful attempt is a send, `outcome-unknown`.
    decisions: list[Decision]
    #: The sends this runner claimed, to be sent now.
    claimed: list[Decision]
    #: The doubtful earlier attempt of each claimed send that has one (`settle_doubt`).
    doubts: dict[str, dict]
    #: Retries after a doubtful attempt that a gate stopped, written as completed `unknown`.
    unresolved: list[Completion]


def record_and_claim(con: duckdb.DuckDBPyConnection, decisions: Sequence[Decision], now: datetime,
                     token: str) -> list[Decision]:
    """`record`, for callers that only need the claimed sends."""
    return record(con, decisions, now, token).claimed


def record(con: duckdb.DuckDBPyConnection, decisions: Sequence[Decision], now: datetime,
           token: str) -> Recorded:
    """Write the tick's decisions in one transaction; the sends come back claimed by `token`.

    A row another runner decided or claimed in the meantime is left alone (the upsert only
    overwrites a deferral), so each send is claimed by exactly one runner.  A deferral that
    carries a doubtful attempt keeps it, or is completed `unknown` (`settle_doubt`).
    """
    if not decisions:
        return Recorded([], [], {}, [])
    try:
        con.execute("BEGIN TRANSACTION")
        # Most keys are new: a plain insert is a good deal cheaper than an upsert, which is kept
        # for the keys the ledger already holds (deferrals decided again, rows of another runner).
        with key_lookups(con):  # by the primary key's index, not a scan of the whole ledger
            held = dict(con.execute(
                f"SELECT key, CASE WHEN attempts > 0 AND decision = 'defer' THEN detail END FROM ledger "
                f"WHERE key IN {ID_LIST}", [id_list(d.key for d in decisions)]).fetchall())
        doubts = {key: doubt for key, detail in held.items() if (doubt := doubt_of(detail)) is not None}
        new, known = [d for d in decisions if d.key not in held], [d for d in decisions if d.key in held]
        if new:
            table, params = _rows_table(_NEW_COLUMNS, [_new_row(d) for d in new])
            con.execute(_INSERT_NEW.format(table=table), [now, token, *params])
        rewritten, rows, unresolved = _rows(known, doubts, now, token)
        if rows:
            table, params = _rows_table(_COLUMNS, rows)
            con.execute(f"INSERT INTO ledger ({_NAMES}) SELECT * FROM {table}{_UPSERT_TAIL}", params)
        # A send inserted here is claimed by `token`, or the insert failed; a row the ledger held
        # may have been left to another runner, so those are read back.
        mine = {d.key for d in decisions if d.decision == "send" and d.key not in held}
        settled = set()
        asked = {d.key for d in decisions if d.decision == "send" and d.key in held} | {c.key for c in unresolved}
        if asked:
            for key, status in con.execute(
                    f"SELECT key, status FROM ledger WHERE key IN {ID_LIST} AND claimed_by = ? "
                    "AND status IN ('claimed', 'unknown')", [id_list(sorted(asked)), token]).fetchall():
                (mine if status == "claimed" else settled).add(key)
        con.execute("COMMIT")
    except (duckdb.TransactionException, duckdb.ConstraintException) as exc:
        _rollback(con)
        if isinstance(exc, duckdb.ConstraintException) and "duplicate key" not in str(exc).lower():
            raise
        raise ClaimConflict(str(exc).splitlines()[0]) from None  # another runner wrote a key first
    except BaseException:
        _rollback(con)
        raise
    claimed = [d for d in decisions if d.decision == "send" and d.key in mine]
    rewritten = iter(rewritten)
    written = [next(rewritten) if d.key in held else d for d in decisions]
    return Recorded(written, claimed, {d.key: doubts[d.key] for d in claimed if d.key in doubts},
                    [c for c in unresolved if c.key in settled])


def _rows(decisions: Sequence[Decision], doubts: dict[str, dict], now: datetime,
          token: str) -> tuple[list[Decision], list[list], list[Completion]]:
    """The decisions as written, their ledger rows, and the retries after a doubtful attempt a gate stopped."""
    written, rows, unresolved = [], [], []
    for d in decisions:
        doubt = doubts.get(d.key)
        settled = settle_doubt(d, doubt) if doubt else None
        if settled is not None:
            d = attrs.evolve(d, channel=settled.channel, decision="send", reason=settled.reason, send_at=now,
                             detail=settled.detail["detail"])
            unresolved.append(settled)
            # completed as it is decided: it may have gone out, and nothing resends it
            rows.append(_row(d, "unknown", now, token, settled.detail, completed_at=now))
        else:
            detail = {"detail": d.detail, **({"doubtful": doubt} if doubt else {})}
            sending = d.decision == "send"
            rows.append(_row(d, "claimed" if sending else "decided", now if sending else None,
                             token if sending else None, detail))
        written.append(d)
    return written, rows, unresolved


def mark_attempts(con: duckdb.DuckDBPyConnection, keys: Sequence[str]) -> None:
    """Note, before the requests leave, that these sends are being tried (providers without idempotency)."""
    if keys:
        con.execute(f"UPDATE ledger SET attempts = coalesce(attempts, 0) + 1 WHERE key IN {ID_LIST}", [id_list(keys)])


def complete(con: duckdb.DuckDBPyConnection, completions: Iterable[Completion], now: datetime, token: str) -> int:
    """Write how the claimed sends ended, in one transaction; the number of rows written."""
    rows = completion_rows(completions, now, token)
    return _write_completions(con, len(rows), *_rows_table(_COMPLETE_COLUMNS, rows)) if rows else 0


def completion_rows(completions: Iterable[Completion], now: datetime, token: str) -> list[list]:
    """The ledger's columns for each completion (`_COMPLETE_COLUMNS`)."""
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
    return rows


def _write_completions(con: duckdb.DuckDBPyConnection, count: int, table: str, params: list) -> int:
    try:
        con.execute("BEGIN TRANSACTION")
        # Two statements, because DuckDB rewrites every index entry of a row whose indexed column
        # is assigned, even to the value it holds: most completions (sent at the time the send was
        # decided) leave `decision` and `send_at` as they are, and are written without them.
        (written,) = con.execute(
            f"UPDATE ledger SET {_COMPLETE_SET} FROM {table} AS u WHERE ledger.key = u.key "
            "AND ledger.claimed_by = u.token AND ledger.decision = u.decision "
            "AND ledger.send_at IS NOT DISTINCT FROM u.send_at", params).fetchone()
        if written < count:
            con.execute(f"UPDATE ledger SET {_COMPLETE_SET}, decision = u.decision, send_at = u.send_at "
                        f"FROM {table} AS u WHERE ledger.key = u.key AND ledger.claimed_by = u.token "
                        "AND (ledger.decision IS DISTINCT FROM u.decision "
                        "OR ledger.send_at IS DISTINCT FROM u.send_at)", params)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    return count


class CompletionWriter:
    """Completes sends in the ledger as they end, a chunk at a time, while the event loop sends on.

    Each chunk is one `complete` transaction on a cursor of the writer's own, run in a worker
    thread (DuckDB lets go of the interpreter while it works), one chunk after the other in the
    order the sends ended.  `close()` writes what is left and waits for every chunk.  A runner
    that dies leaves the sends it had not completed claimed, for the next runner to take over.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, now: datetime, token: str, *,
                 chunk: int = 256) -> None:
        self._cursor = con.cursor()
        self._now, self._token, self._chunk = now, token, chunk
        self._pending: list[Completion] = []
        self._writing: asyncio.Future | None = None

    def add(self, completion: Completion) -> None:
        self._pending.append(completion)
        if len(self._pending) >= self._chunk and (self._writing is None or self._writing.done()):
            self._start()

    async def close(self) -> None:
        try:
            if self._pending:
                self._start()
            if self._writing is not None:
                await self._writing
        finally:
            self._cursor.close()

    def _start(self) -> None:
        batch, self._pending = self._pending, []
        # The statement's parameters are made here, so that the thread has only DuckDB's work to
        # do and never waits for the interpreter while the event loop sends.
        rows = completion_rows(batch, self._now, self._token)
        self._writing = asyncio.ensure_future(self._write(len(rows), *_rows_table(_COMPLETE_COLUMNS, rows),
                                                          self._writing))

    async def _write(self, count: int, table: str, params: list, previous: asyncio.Future | None) -> None:
        if previous is not None:
            await previous  # in order, and a failed chunk fails the ones after it
        await asyncio.to_thread(_write_completions, self._cursor, count, table, params)


def orphaned(con: duckdb.DuckDBPyConnection, live_tokens: Iterable[str]) -> list[dict]:
    """Claimed rows whose runner is gone: they were claimed but never completed."""
    cursor = con.execute(
        "SELECT key, flow, step, occurrence, order_id, customer_id, channel, template, purpose, due_at, send_at, "
        "coalesce(attempts, 0) AS attempts, claimed_by, claimed_at, detail FROM ledger WHERE status = 'claimed' "
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
