"""The runner end to end: DuckDB store → gates → rendering → local provider servers → ledger."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from linkstar_dsl.gates import iso
from linkstar_dsl.providers.base import Fault
from linkstar_dsl.providers.servers import ProviderServers
from linkstar_dsl.runtime import ledger
from linkstar_dsl.runtime.engine import Engine, EngineSettings
from linkstar_dsl.runtime.pauses import AutoPausePolicy, auto_pause, in_force, pause, resume
from linkstar_dsl.runtime.program import compile_text
from linkstar_dsl.runtime.render_context import RenderSettings
from linkstar_dsl.store import open_store

UTC = timezone.utc
DELIVERED = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
DUE = DELIVERED + timedelta(hours=48)

THANKS = """
flow thanks
  purpose service
  on delivered + 48h
  where not refunded
  via line, email
  send "delivered"
  between 09:00 and 20:00 local
"""


SETTINGS = RenderSettings.demo()


def line_id(n: int) -> str:
    return "U" + f"{n:032x}"


def make_store(path, n=3, *, line=True, country="JP", tz="Asia/Tokyo", locale="ja"):
    con = open_store(path)
    for i in range(n):
        cid, oid = f"c{i}", f"o{i}"
        con.execute("INSERT INTO customers (id, source, name, email, line_user_id, locale, timezone, country) "
                    "VALUES (?, 'shopify', ?, ?, ?, ?, ?, ?)",
                    [cid, f"Buyer {i}", f"{cid}@example.com", line_id(i) if line else None, locale, tz, country])
        con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, "
                    "placed_at, delivered_at) VALUES (?, ?, 'shopify', 'delivered', ?, 3980, 'JPY', ?, ?)",
                    [oid, cid, country, DELIVERED - timedelta(days=3), DELIVERED])
        con.execute("INSERT INTO order_events VALUES (?, ?, 'delivered', ?, NULL)", [f"e{i}", oid, DELIVERED])
    return con


def run(coro):
    return asyncio.run(coro)


def ledger_rows(con):
    cursor = con.execute("SELECT key, decision, reason, status, channel, provider_id, claimed_by FROM ledger ORDER BY key")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def test_a_tick_sends_through_the_provider_and_completes_the_ledger(tmp_path):
    con = make_store(tmp_path / "s.duckdb")

    async def scenario():
        async with ProviderServers() as servers:
            program = compile_text(THANKS)
            async with Engine(program, con, channels=servers.config(), environ=servers.environ(), render_settings=SETTINGS) as engine:
                report = await engine.tick(DUE + timedelta(minutes=5))
                again = await engine.tick(DUE + timedelta(minutes=10))
            return report, again, servers.line.deliveries

    report, again, deliveries = run(scenario())
    assert report.sent == 3 and len(deliveries) == 3
    assert {d.recipient for d in deliveries} == {line_id(i) for i in range(3)}
    text = deliveries[0].payload["messages"][0]["text"]
    assert "o" in text and "{{" not in text  # rendered, not raw template
    rows = ledger_rows(con)
    assert [r["status"] for r in rows] == ["sent"] * 3
    assert all(r["provider_id"] for r in rows)
    assert again.decisions == ()  # the same clock again sends nothing new


def test_replaying_a_clock_sends_nothing_new(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=4)
    clocks = [DUE + timedelta(minutes=m) for m in (0, 1, 30, 60, 61, 600)]

    async def scenario():
        async with ProviderServers() as servers:
            program = compile_text(THANKS)
            async with Engine(program, con, channels=servers.config(), environ=servers.environ(), render_settings=SETTINGS) as engine:
                for now in clocks:
                    await engine.tick(now)
                first = len(servers.line.deliveries)
            # a new runner with its own clock replays the same period from the start
            settings = EngineSettings(runner="replay", lookback=timedelta(days=5))
            async with Engine(program, con, channels=servers.config(), environ=servers.environ(),
                              settings=settings, render_settings=SETTINGS) as engine:
                for now in clocks:
                    report = await engine.tick(now)
                    assert report.sent == 0
            return first, len(servers.line.deliveries)

    first, total = run(scenario())
    assert first == 4 and total == 4


def test_a_permanent_failure_falls_back_and_a_suppression_is_recorded(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=2)

    async def scenario():
        async with ProviderServers() as servers:
            servers.line.inject(Fault(status=404, message="Not found", recipient=line_id(0), times=-1))
            program = compile_text(THANKS)
            async with Engine(program, con, channels=servers.config(), environ=servers.environ(), render_settings=SETTINGS) as engine:
                report = await engine.tick(DUE + timedelta(minutes=5))
            return report, servers

    report, servers = run(scenario())
    assert report.sent == 2
    assert [d.recipient for d in servers.line.deliveries] == [line_id(1)]
    assert [list(m.recipients) for m in servers.smtp.messages] == [["c0@example.com"]]
    rows = {r["key"]: r for r in ledger_rows(con)}
    assert rows["thanks:0:e0"]["channel"] == "email" and rows["thanks:0:e0"]["status"] == "sent"
    assert con.execute("SELECT customer_id, channel, reason FROM suppressions").fetchall() == \
        [("c0", "line", "line_unfollow")]


def test_a_temporary_failure_is_retried_later_and_sent_once(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=1)

    async def scenario():
        async with ProviderServers() as servers:
            servers.line.inject(Fault(status=500, message="down", times=-1))
            config = servers.config(line={"limits": {"retries": 0}})
            program = compile_text(THANKS)
            async with Engine(program, con, channels=config, environ=servers.environ(), render_settings=SETTINGS) as engine:
                first = await engine.tick(DUE + timedelta(minutes=5))
                row = con.execute("SELECT decision, reason, status, send_at FROM ledger").fetchone()
                servers.line.clear()
                second = await engine.tick(row[3] + timedelta(seconds=1))
            return first, row, second, servers.line.deliveries

    first, row, second, deliveries = run(scenario())
    assert first.sent == 0 and row[:3] == ("defer", "retry", "decided")
    assert row[3] >= DUE + timedelta(minutes=6)
    assert second.sent == 1 and len(deliveries) == 1


DOUBTFUL = """
flow thanks
  purpose service
  on delivered + 48h
  via {channels}
  send "delivered"
  between 09:00 and 20:00 local
"""


def _doubtful_answer_scenario(con, provider: str, channels: str, **config):
    """The provider accepts the message, then answers 500; a second tick comes after any retry is due."""

    async def scenario():
        async with ProviderServers() as servers:
            server = getattr(servers, provider)
            server.inject(Fault(status=500, message="upstream failed", deliver=True))
            program = compile_text(DOUBTFUL.format(channels=channels))
            async with Engine(program, con, channels=servers.config(**config), environ=servers.environ(),
                              render_settings=SETTINGS) as engine:
                first = await engine.tick(DUE + timedelta(minutes=5))
                second = await engine.tick(DUE + timedelta(hours=3))
            await servers.twilio.settle()
            return first, second, servers

    return run(scenario())


@pytest.mark.parametrize("provider, channel, address, config", [
    ("twilio", "sms", ("phone", "+819012345678"), {}),
    ("sendgrid", "email", ("email", "c0@example.com"), {"email": "sendgrid"}),
])
def test_a_doubtful_answer_from_a_provider_without_idempotency_keys_is_not_sent_again(
        tmp_path, provider, channel, address, config):
    from linkstar_dsl.explain import explain, render

    con = make_store(tmp_path / "s.duckdb", n=1, line=False)
    con.execute(f"UPDATE customers SET {address[0]} = ?", [address[1]])
    other = "email" if channel == "sms" else "sms"
    con.execute("UPDATE customers SET phone = coalesce(phone, '+819012345678')")
    first, second, servers = _doubtful_answer_scenario(con, provider, f"{channel}, {other}", **config)
    server = getattr(servers, provider)
    assert [d.recipient for d in server.deliveries] == [address[1]]  # accepted once, never resent
    assert not servers.smtp.messages  # nor sent on the next channel
    assert len(servers.twilio.deliveries) + len(servers.sendgrid.deliveries) == 1
    assert [(c.status, c.reason, c.channel) for c in first.completions] == \
        [("unknown", "outcome-unknown", channel)]
    assert second.decisions == () and second.completions == ()
    row = ledger_rows(con)[0]
    assert (row["decision"], row["reason"], row["status"], row["channel"]) == \
        ("send", "outcome-unknown", "unknown", channel)
    at = DUE + timedelta(hours=4)
    program = compile_text(DOUBTFUL.format(channels=f"{channel}, {other}"))
    text = render(explain(con, list(program.plans), program.schema, "o0", at), "order o0", at)
    assert "ledger: send (outcome-unknown)" in text and f"unknown via {channel}" in text
    assert "provider's log" in text


def test_a_doubtful_answer_from_line_is_retried_under_its_key_and_delivered_once(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=1)
    first, second, servers = _doubtful_answer_scenario(con, "line", "line, email",
                                                       line={"limits": {"retries": 0}})
    assert [(c.status, c.reason) for c in first.completions] == [("retry", "retry")]
    assert [(c.status, c.channel) for c in second.completions] == [("sent", "line")]
    assert len(servers.line.received) == 2 and [d.recipient for d in servers.line.deliveries] == [line_id(0)]
    assert not servers.smtp.messages  # a temporary failure never falls back to the next channel
    assert ledger_rows(con)[0]["status"] == "sent"


def test_a_doubtful_answer_from_line_is_retried_at_once_by_its_adapter(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=1)
    first, _, servers = _doubtful_answer_scenario(con, "line", "line, email")
    assert [(c.status, c.channel) for c in first.completions] == [("sent", "line")]
    assert len(servers.line.received) == 2 and len(servers.line.deliveries) == 1


def test_a_certain_failure_before_the_provider_took_the_message_is_still_retried(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=1, line=False)
    con.execute("UPDATE customers SET phone = '+819012345678'")

    async def scenario():
        async with ProviderServers() as servers:
            servers.twilio.inject(Fault(kind="throttle", retry_after=1, times=1))
            config = servers.config(twilio={"limits": {"retries": 0}})
            async with Engine(compile_text(DOUBTFUL.format(channels="sms, email")), con, channels=config,
                              environ=servers.environ(), render_settings=SETTINGS) as engine:
                first = await engine.tick(DUE + timedelta(minutes=5))
                second = await engine.tick(DUE + timedelta(minutes=7))
            await servers.twilio.settle()
            return first, second, servers

    first, second, servers = run(scenario())
    assert [(c.status, c.reason) for c in first.completions] == [("retry", "retry")]
    assert [(c.status, c.channel) for c in second.completions] == [("sent", "sms")]
    assert len(servers.twilio.deliveries) == 1 and not servers.smtp.messages


def _suppressed_before_the_retry(con, suppressed_on: str | None, *faults: Fault, retries: int = 0, **line):
    """LINE fails the first try (by `faults`), then the buyer is suppressed before the retry is due."""

    async def scenario():
        async with ProviderServers() as servers:
            for fault in faults:
                servers.line.inject(fault)
            limits = {"retries": retries, "backoff": 0.01, "max_backoff": 0.05, "max_wait": 2}
            config = servers.config(line={**servers.provider_options()["line"], "limits": limits, **line})
            async with Engine(compile_text(DOUBTFUL.format(channels="line, email")), con, channels=config,
                              environ=servers.environ(), render_settings=SETTINGS) as engine:
                first = await engine.tick(DUE + timedelta(minutes=5))
                (retry_at,) = con.execute("SELECT send_at FROM ledger").fetchone()
                con.execute("INSERT INTO suppressions (customer_id, channel, reason, occurred_at, source) "
                            "VALUES ('c0', ?, 'complaint', ?, 'feedback')", [suppressed_on, retry_at])
                second = await engine.tick(retry_at + timedelta(seconds=1))
            return first, second, servers

    return run(scenario())


def _ledger_row(con) -> dict:
    cursor = con.execute("SELECT decision, reason, status, channel, attempts, detail FROM ledger")
    return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))


@pytest.mark.parametrize("suppressed_on, stopped_by", [
    (None, "not retried: suppressed (the customer is suppressed on every channel)"),
    ("line", "not retried: line is no longer the channel to use (via email)"),
])
def test_a_retry_after_a_doubtful_answer_that_a_gate_stops_is_outcome_unknown(tmp_path, suppressed_on, stopped_by):
    from linkstar_dsl.explain import explain, render

    con = make_store(tmp_path / "s.duckdb", n=1)
    first, second, servers = _suppressed_before_the_retry(
        con, suppressed_on, Fault(status=500, message="upstream failed", deliver=True))
    assert [(c.status, c.reason) for c in first.completions] == [("retry", "retry")]
    assert [d.recipient for d in servers.line.deliveries] == [line_id(0)]  # taken, though answered 500
    assert len(servers.line.received) == 1 and not servers.smtp.messages  # nothing after the suppression
    assert [(c.status, c.reason, c.channel) for c in second.completions] == \
        [("unknown", "outcome-unknown", "line")]
    row = _ledger_row(con)
    assert (row["decision"], row["reason"], row["status"], row["channel"], row["attempts"]) == \
        ("send", "outcome-unknown", "unknown", "line", 1)
    attempt = f"an attempt at {iso(DUE + timedelta(minutes=5))} may have reached line (500 after the request was sent)"
    assert json.loads(row["detail"])["detail"] == f"{attempt}; {stopped_by}"
    at = DUE + timedelta(hours=4)
    program = compile_text(DOUBTFUL.format(channels="line, email"))
    text = render(explain(con, list(program.plans), program.schema, "o0", at), "order o0", at)
    assert "ledger: send (outcome-unknown)" in text and "unknown via line" in text
    assert "the line provider may have taken the message, so it is left for a person to check" in text
    assert attempt in text and "the runner stopped" not in text


def test_a_doubtful_answer_is_not_settled_by_a_later_throttle_within_the_adapters_retries(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=1)
    first, second, servers = _suppressed_before_the_retry(
        con, None, Fault(status=502, deliver=True), Fault(kind="throttle", retry_after=0.01, times=2), retries=2)
    assert len(servers.line.received) == 3 and len(servers.line.deliveries) == 1
    assert [c.status for c in first.completions] == ["retry"]
    assert [(c.status, c.reason) for c in second.completions] == [("unknown", "outcome-unknown")]
    detail = json.loads(_ledger_row(con)["detail"])
    assert detail["doubtful"]["answer"] == "502 after the request was sent"


def test_a_claim_a_stopped_runner_left_is_doubtful_until_its_resend_settles_it(tmp_path):
    from linkstar_dsl.runtime.decide import decide_tick
    from linkstar_dsl.runtime.due_set import DueSet

    con = make_store(tmp_path / "s.duckdb", n=1)
    program = compile_text(DOUBTFUL.format(channels="line, email"))
    claimed_at = DUE + timedelta(minutes=5)
    decided = [d for *_, d in decide_tick(con, DueSet(program.plans, program.schema),
                                          claimed_at - timedelta(hours=1), claimed_at)]
    assert len(ledger.record_and_claim(con, decided, claimed_at, "a-runner-that-was-killed")) == 1

    async def scenario():
        async with ProviderServers() as servers:
            # the killed runner's request may have gone; its successor's resend is throttled
            servers.line.inject(Fault(kind="throttle", retry_after=1))
            config = servers.config(line={"limits": {"retries": 0}})
            async with Engine(program, con, channels=config, environ=servers.environ(), render_settings=SETTINGS,
                              clock=lambda: claimed_at + timedelta(minutes=1)) as engine:
                (retry_at,) = con.execute("SELECT send_at FROM ledger").fetchone()
                con.execute("INSERT INTO suppressions (customer_id, channel, reason, occurred_at, source) "
                            "VALUES ('c0', NULL, 'complaint', ?, 'feedback')", [retry_at])
                later = await engine.tick(retry_at + timedelta(seconds=1))
            return engine.recovered, later, servers

    recovered, later, servers = run(scenario())
    assert recovered == 1 and not servers.line.deliveries and not servers.smtp.messages
    assert [(c.status, c.reason) for c in later.completions] == [("unknown", "outcome-unknown")]
    detail = json.loads(_ledger_row(con)["detail"])["detail"]
    assert detail.startswith(f"an attempt at {iso(claimed_at)} may have reached line "
                             "(the runner stopped before it had the answer); not retried: suppressed")


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("failure", ["throttled", "refused"])
def test_a_retry_after_a_certain_failure_that_a_gate_stops_is_a_plain_skip(tmp_path, failure):
    con = make_store(tmp_path / "s.duckdb", n=1)
    if failure == "throttled":
        first, second, servers = _suppressed_before_the_retry(con, None, Fault(kind="throttle", retry_after=1))
    else:
        first, second, servers = _suppressed_before_the_retry(con, None, base_url=_closed_port())
    assert [(c.status, c.reason) for c in first.completions] == [("retry", "retry")]
    assert not servers.line.deliveries and not servers.smtp.messages
    assert second.completions == ()
    row = _ledger_row(con)
    assert (row["decision"], row["reason"], row["status"], row["attempts"]) == ("skip", "suppressed", "decided", 1)
    assert "doubtful" not in json.loads(row["detail"])


def test_a_doubtful_attempt_is_remembered_through_other_deferrals_until_sent(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=1)

    async def scenario():
        async with ProviderServers() as servers:
            servers.line.inject(Fault(status=503, deliver=True))
            config = servers.config(line={"limits": {"retries": 0}})
            async with Engine(compile_text(DOUBTFUL.format(channels="line, email")), con, channels=config,
                              environ=servers.environ(), render_settings=SETTINGS) as engine:
                await engine.tick(DUE + timedelta(minutes=5))
                # the retry comes after the window closed (20:00 in Tokyo): deferred to its opening
                late = datetime(2026, 9, 3, 11, 30, tzinfo=UTC)
                deferred = await engine.tick(late)
                row = _ledger_row(con)
                reopened = await engine.tick(datetime(2026, 9, 4, 0, 30, tzinfo=UTC))
            return deferred, row, reopened, servers

    deferred, row, reopened, servers = run(scenario())
    assert [(d.decision, d.reason) for d in deferred.decisions] == [("defer", "window")]
    assert json.loads(row["detail"])["doubtful"]["answer"] == "503 after the request was sent"
    assert [(c.status, c.channel) for c in reopened.completions] == [("sent", "line")]
    assert len(servers.line.received) == 2 and len(servers.line.deliveries) == 1  # the repeat kept its key
    assert _ledger_row(con)["status"] == "sent"


def test_pausing_a_flow_holds_its_messages_until_resumed(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=2)
    pause(con, "flow", "thanks", "wrong coupon code", now=DUE - timedelta(hours=1))

    async def scenario():
        async with ProviderServers() as servers:
            program = compile_text(THANKS)
            async with Engine(program, con, channels=servers.config(), environ=servers.environ(), render_settings=SETTINGS) as engine:
                held = await engine.tick(DUE + timedelta(minutes=5))
                resume(con, "flow", "thanks", now=DUE + timedelta(minutes=10))
                sent = await engine.tick(DUE + timedelta(minutes=30))
            return held, sent, servers.line.deliveries

    held, sent, deliveries = run(scenario())
    assert {(d.decision, d.reason) for d in held.decisions} == {("defer", "paused")}
    assert "wrong coupon code" in held.decisions[0].detail
    assert held.sent == 0 and sent.sent == 2 and len(deliveries) == 2


def test_a_paused_channel_is_passed_over_for_the_next(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=1)
    pause(con, "channel", "line", "LINE outage", now=DUE - timedelta(hours=1))

    async def scenario():
        async with ProviderServers() as servers:
            async with Engine(compile_text(THANKS), con, channels=servers.config(),
                              environ=servers.environ(), render_settings=SETTINGS) as engine:
                report = await engine.tick(DUE + timedelta(minutes=5))
            return report, servers

    report, servers = run(scenario())
    assert report.sent == 1 and not servers.line.deliveries and len(servers.smtp.messages) == 1


def test_auto_pause_stops_a_flow_whose_recipients_unsubscribe(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=0)
    now = DUE
    rows = [[f"k{i}", "promo", 0, f"e{i}", None, f"c{i}", "email", None, "marketing", "send", "sent",
             now - timedelta(days=2), now - timedelta(days=2), "sent"] for i in range(300)]
    con.executemany("INSERT INTO ledger (key, flow, step, occurrence, order_id, customer_id, channel, template, "
                    "purpose, decision, reason, due_at, send_at, status) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("INSERT INTO suppressions VALUES ('c0', 'email', 'unsubscribed', ?, 'sendgrid')",
                [now - timedelta(days=1)])
    policy = AutoPausePolicy(threshold=0.005, window=timedelta(days=7), min_sends=200)
    assert auto_pause(con, ["promo"], now, policy) == []  # 1 of 300: 0.33%
    con.execute("INSERT INTO suppressions SELECT 'c' || i, NULL, 'complaint', ?, 'sendgrid' FROM range(1, 3) t(i)",
                [now - timedelta(hours=1)])
    assert auto_pause(con, ["promo"], now, policy) == ["promo"]  # 3 of 300: 1%
    reason = in_force(con, now).flows["promo"]
    assert "3 of 300" in reason and "1.00%" in reason
    assert auto_pause(con, ["promo"], now, policy) == []  # already paused: no second row
    assert con.execute("SELECT count(*) FROM pauses").fetchone()[0] == 1


def test_two_engines_on_one_database_never_send_twice(tmp_path):
    path = tmp_path / "s.duckdb"
    make_store(path, n=30).close()
    con = duckdb.connect(str(path))

    async def scenario():
        async with ProviderServers() as servers:
            program = compile_text(THANKS)
            engines = [Engine(program, con, channels=servers.config(), environ=servers.environ(),
                              render_settings=SETTINGS, settings=EngineSettings(runner=f"r{i}")) for i in range(2)]
            for engine in engines:
                await engine.start()
            try:
                for minute in (5, 6, 20):
                    await asyncio.gather(*(e.tick(DUE + timedelta(minutes=minute)) for e in engines))
            finally:
                for engine in engines:
                    await engine.close()
            return servers.line.deliveries

    deliveries = run(scenario())
    assert sorted(d.recipient for d in deliveries) == sorted(line_id(i) for i in range(30))
    assert con.execute("SELECT count(*) FROM ledger WHERE status = 'sent'").fetchone()[0] == 30


def thanks_store(path, n):
    """A store of `n` buyers with the THANKS send due, a connection to it, its due set and the time."""
    from linkstar_dsl.runtime.due_set import DueSet

    make_store(path, n=n).close()
    program = compile_text(THANKS)
    return duckdb.connect(str(path)), DueSet(program.plans, program.schema), DUE + timedelta(minutes=5)


def test_a_send_decided_by_two_runners_is_claimed_by_one(tmp_path):
    con, due, now = thanks_store(tmp_path / "s.duckdb", 5)
    from linkstar_dsl.runtime.decide import decide_tick

    cursors = [con.cursor(), con.cursor()]
    # both runners decide before either writes: the same five sends
    decided = [[d for *_, d in decide_tick(c, due, now - timedelta(hours=1), now)] for c in cursors]
    assert [len(d) for d in decided] == [5, 5]
    first = ledger.record_and_claim(cursors[0], decided[0], now, "runner-a")
    second = ledger.record_and_claim(cursors[1], decided[1], now, "runner-b")
    assert len(first) == 5 and second == []
    assert {r[0] for r in con.execute("SELECT DISTINCT claimed_by FROM ledger").fetchall()} == {"runner-a"}


def test_claims_racing_in_open_transactions_leave_one_winner(tmp_path):
    con, due, now = thanks_store(tmp_path / "s.duckdb", 3)
    from linkstar_dsl.runtime.decide import decide_tick

    a, b = con.cursor(), con.cursor()
    decisions = [d for *_, d in decide_tick(a, due, now - timedelta(hours=1), now)]
    # runner b is half way through its claim of the first send when runner a claims all three
    b.execute("BEGIN TRANSACTION")
    b.execute("INSERT INTO ledger (key, flow, step, occurrence, customer_id, purpose, decision, reason, due_at, status, "
              "claimed_by) VALUES (?, 'thanks', 0, 'e0', 'c0', 'service', 'send', 'sent', ?, 'claimed', 'runner-b')",
              [decisions[0].key, now])
    assert len(ledger.record_and_claim(a, decisions, now, "runner-a")) == 3
    with pytest.raises(duckdb.TransactionException):
        b.execute("COMMIT")  # what `record_and_claim` turns into ClaimConflict for the runner that lost
    assert con.execute("SELECT DISTINCT claimed_by FROM ledger").fetchall() == [("runner-a",)]


def test_completions_are_written_a_chunk_at_a_time_while_the_tick_goes_on(tmp_path):
    """Answers reach the ledger a chunk at a time during the tick, so a crash leaves little claimed."""
    con, due, now = thanks_store(tmp_path / "s.duckdb", 5)
    from linkstar_dsl.runtime.decide import decide_tick

    decisions = [d for *_, d in decide_tick(con, due, now - timedelta(hours=1), now)]
    claimed = ledger.record_and_claim(con, decisions, now, "runner-a")

    def statuses():
        return dict(con.execute("SELECT status, count(*) FROM ledger GROUP BY status").fetchall())

    async def scenario():
        writer = ledger.CompletionWriter(con, now, "runner-a", chunk=2)
        for d in claimed[:3]:
            writer.add(ledger.Completion(d.key, "sent", "line", "sent", {}, provider_id=f"id-{d.key}"))
        for _ in range(500):  # the first chunk is committed in a worker thread
            if statuses().get("sent") == 2:
                break
            await asyncio.sleep(0.01)
        during = statuses()
        await writer.close()
        return during

    during = run(scenario())
    assert during == {"sent": 2, "claimed": 3}  # the third waits for its chunk, or for close()
    assert statuses() == {"sent": 3, "claimed": 2}
    assert {r["provider_id"] for r in ledger_rows(con) if r["status"] == "sent"} == \
        {f"id-{d.key}" for d in claimed[:3]}


def _cli(*args):
    from click.testing import CliRunner

    from linkstar_dsl.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_run_dry_run_lists_what_it_would_send_and_writes_nothing(tmp_path):
    db = tmp_path / "s.duckdb"
    make_store(db, n=2).close()
    flow = tmp_path / "thanks.flow"
    flow.write_text(THANKS, encoding="utf-8")
    result = _cli("run", str(flow), "--db", str(db), "--dry-run", "--at", (DUE + timedelta(minutes=5)).isoformat())
    assert result.exit_code == 0, result.output
    assert "2 due, 2 sent" in result.output
    assert result.output.count("would send thanks step 1 via line to U") == 2
    assert "ご注文" in result.output or "o0" in result.output or "delivered" in result.output.lower()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM ledger").fetchone()[0] == 0


def test_run_explains_what_is_missing(tmp_path):
    db = tmp_path / "s.duckdb"
    make_store(db, n=1).close()
    flow = tmp_path / "thanks.flow"
    flow.write_text(THANKS, encoding="utf-8")
    no_channels = _cli("run", str(flow), "--db", str(db))
    assert no_channels.exit_code == 2 and "no channels are configured" in no_channels.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[channels.providers.pigeon]\n[render]\nsender_name='S'\nsender_address='A'\n"
                   "shop_url='https://s.example.com'\n", encoding="utf-8")
    unknown = _cli("run", str(flow), "--db", str(db), "--config", str(bad))
    assert unknown.exit_code == 2 and "no provider named 'pigeon'" in unknown.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[channels\n", encoding="utf-8")
    assert "not valid TOML" in _cli("run", str(flow), "--db", str(db), "--config", str(broken)).output
    both = _cli("run", str(flow), "--db", str(db), "--once", "--every", "1m", "--dry-run")
    assert both.exit_code == 2 and "not both" in both.output
    every = _cli("run", str(flow), "--db", str(db), "--every", "soon", "--dry-run")
    assert every.exit_code == 2 and "not an interval" in every.output
    (tmp_path / "bad.flow").write_text("on delivred via line\n", encoding="utf-8")
    errors = _cli("run", str(tmp_path / "bad.flow"), "--db", str(db), "--dry-run")
    assert errors.exit_code == 1 and "did you mean `delivered`" in errors.output


def test_pause_resume_and_list_from_the_command_line(tmp_path):
    db = tmp_path / "s.duckdb"
    make_store(db, n=0).close()
    assert "nothing is paused" in _cli("pauses", "--db", str(db)).output
    paused = _cli("pause", "flow", "thanks", "--db", str(db), "--reason", "coupon typo")
    assert paused.exit_code == 0 and "paused flow thanks: coupon typo" in paused.output
    listed = _cli("pauses", "--db", str(db)).output
    assert "flow thanks" in listed and "by cli" in listed and "coupon typo" in listed
    assert _cli("resume", "flow", "thanks", "--db", str(db)).exit_code == 0
    again = _cli("resume", "flow", "thanks", "--db", str(db))
    assert again.exit_code == 2 and "is not paused" in again.output
    assert _cli("pause", "channel", "sms", "--db", str(db), "--reason", "x", "--until", "2000-01-01").exit_code == 2


def test_explain_after_a_run_shows_the_send_the_pause_and_what_comes_next(tmp_path):
    from linkstar_dsl.explain import explain, render

    con = make_store(tmp_path / "s.duckdb", n=2)
    program = compile_text(THANKS)

    async def scenario():
        async with ProviderServers() as servers:
            async with Engine(program, con, channels=servers.config(), environ=servers.environ(),
                              render_settings=SETTINGS) as engine:
                await engine.tick(DUE + timedelta(minutes=5))

    run(scenario())
    at = DUE + timedelta(minutes=10)
    sent = render(explain(con, list(program.plans), program.schema, "o0", at), "order o0", at)
    assert "ledger: send (sent)" in sent and "sent via line, provider id" in sent
    assert "next: nothing more: sent via line" in sent
    con.execute("INSERT INTO order_events VALUES ('e9', 'o1', 'delivered', ?, NULL)", [DELIVERED + timedelta(hours=1)])
    pause(con, "flow", "thanks", "wrong coupon", now=at)
    later = DUE + timedelta(hours=2)
    held = render(explain(con, list(program.plans), program.schema, "o1", later), "order o1", later)
    assert "✗ pause            the flow is paused: wrong coupon" in held
    assert "DEFER (paused)" in held and "next: the next tick defers it to" in held


def test_the_runner_decides_exactly_what_the_simulation_predicts(tmp_path):
    """A week of the example flows over generated data: every decision of `run` equals `simulate`'s."""
    import shutil

    from linkstar_dsl.demo_data import DEFAULT_DAYS, DEFAULT_START, generate
    from linkstar_dsl.resources import data_dir
    from linkstar_dsl.runtime.program import compile_paths
    from linkstar_dsl.simulate import Simulation, scratch

    store = tmp_path / "run.duckdb"
    con = open_store(store)
    generate(con, orders=800, seed=7)
    con.close()
    shutil.copy(store, tmp_path / "sim.duckdb")
    program = compile_paths([data_dir("examples")])
    end = DEFAULT_START + timedelta(days=DEFAULT_DAYS)
    start, step = end - timedelta(days=7), timedelta(hours=6)
    simulated = Simulation(scratch(str(tmp_path / "sim.duckdb")), list(program.plans), program.schema).run(
        start, end, step)

    async def scenario():
        decisions = []
        async with ProviderServers() as servers:
            fast = {name: {"limits": {"per_second": 500, "burst": 50}} for name in ("amazon", "smtp", "twilio")}
            settings = EngineSettings(lookback=step, auto_pause=None)
            async with Engine(program, str(store), channels=servers.config(**fast), environ=servers.environ(),
                              render_settings=SETTINGS, settings=settings) as engine:
                now = start + step
                while now <= end:
                    report = await engine.tick(now)
                    decisions += report.decisions
                    failed = [c for c in report.completions if c.status != "sent"]
                    assert not failed, failed[:3]
                    now += step
        return decisions

    ran = run(scenario())

    def outline(ds):
        return sorted((d.key, d.decision, d.reason, d.channel, d.send_at) for d in ds)

    assert outline(ran) == outline(simulated)
    reasons = {d.reason for d in ran}
    assert {"sent", "guard", "window", "no-channel"} <= reasons


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(minutes=st.lists(st.integers(min_value=-180, max_value=60 * 30), min_size=1, max_size=6),
       replays=st.integers(min_value=1, max_value=3))
def test_property_replaying_any_clock_sequence_sends_nothing_new(tmp_path_factory, minutes, replays):
    """Whatever clock times a runner is driven through, driving it through them again sends nothing."""
    folder = tmp_path_factory.mktemp("replay")
    con = make_store(folder / "s.duckdb", n=3)
    program = compile_text(THANKS)
    clocks = [DUE + timedelta(minutes=m) for m in minutes]

    async def scenario():
        async with ProviderServers() as servers:
            counts = []
            for round_ in range(1 + replays):
                settings_ = EngineSettings(runner=f"r{round_}", lookback=timedelta(days=3))
                async with Engine(program, con, channels=servers.config(), environ=servers.environ(),
                                  render_settings=SETTINGS, settings=settings_) as engine:
                    for now in clocks:
                        await engine.tick(now)
                counts.append(len(servers.line.deliveries) + len(servers.smtp.messages))
            return counts

    counts = run(scenario())
    assert counts == [counts[0]] * len(counts)  # the replays added nothing
    assert counts[0] <= 3  # and no message went out twice in the first run either
    con.close()


def test_explain_judges_lapsing_consent_at_its_own_clock(tmp_path):
    """CASL: consent implied by a purchase lapses after two years; explain must agree with the gate."""
    from linkstar_dsl.explain import explain, render

    con = make_store(tmp_path / "s.duckdb", n=1, line=False, country="CA", tz="America/Toronto", locale="en")
    con.execute("UPDATE orders SET country = 'CA'")
    con.execute("INSERT INTO consents (customer_id, channel, purpose, level, granted_at, source) "
                "VALUES ('c0', 'email', 'marketing', 'implied', ?, 'purchase')", [DELIVERED - timedelta(days=800)])
    program = compile_text("""
flow offer
  purpose marketing
  market CA
  on delivered + 48h
  via email
  send "delivered"
  between 09:00 and 20:00 local
  cooldown 7d per customer
""")
    at = DUE + timedelta(hours=18)  # 14:00 in Toronto
    text = render(explain(con, list(program.plans), program.schema, "o0", at), "order o0", at)
    assert "✗ channel email" in text and "consent" in text.split("✗ channel email", 1)[1].splitlines()[0]
    assert "SKIP (no-channel)" in text
