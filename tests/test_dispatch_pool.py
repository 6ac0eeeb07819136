"""Dispatch workers (`EngineSettings(workers=N)`): the same ledger as sending in the engine's own
process, each message received once, rate limits shared out and not multiplied, and the jobs of a
worker killed mid-chunk finished by the recovery path without a second delivery."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections import Counter
from datetime import timedelta

import pytest
from click.testing import CliRunner

from linkstar_dsl.adapters.engine import ChannelEngine, ChannelsConfig, part
from linkstar_dsl.providers.base import Fault
from linkstar_dsl.providers.servers import ProviderServers
from linkstar_dsl.runtime.engine import Engine, EngineSettings
from linkstar_dsl.runtime.program import compile_text

from test_runtime import DUE, SETTINGS, THANKS, ledger_rows, line_id, make_store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
NOW = DUE + timedelta(minutes=5)


def _engine(con, servers, workers: int, **config) -> Engine:
    settings = EngineSettings(workers=workers, worker_threshold=1, concurrency=8)
    return Engine(compile_text(THANKS), con, channels=servers.config(**config), environ=servers.environ(),
                  render_settings=SETTINGS, settings=settings)


def _statuses(con) -> list[tuple]:
    return [(r["key"], r["decision"], r["reason"], r["status"], r["channel"]) for r in ledger_rows(con)]


async def _tick(con, workers: int, **config):
    async with ProviderServers() as servers:
        servers.line.inject(Fault(status=404, message="Not found", recipient=line_id(0), times=-1))
        servers.line.inject(Fault(status=400, message="bad", recipient=line_id(1), times=-1))
        async with _engine(con, servers, workers, **config) as engine:
            report = await engine.tick(NOW)
            handed_out = engine.pool.handed_out if engine.pool else 0
        suppressions = con.execute("SELECT customer_id, channel, reason FROM suppressions ORDER BY 1").fetchall()
        return report, handed_out, servers.line, servers.smtp.messages, suppressions


def test_workers_complete_the_ledger_as_the_engine_alone_does(tmp_path):
    alone, pooled = make_store(tmp_path / "a.duckdb", n=40), make_store(tmp_path / "b.duckdb", n=40)
    one = asyncio.run(_tick(alone, 1))
    two = asyncio.run(_tick(pooled, 2))
    assert one[1] == 0 and two[1] == 40  # every job of the pooled tick went through the workers
    assert _statuses(alone) == _statuses(pooled)
    assert [(c.key, c.status, c.channel, c.reason) for c in one[0].completions] == \
        [(c.key, c.status, c.channel, c.reason) for c in two[0].completions]
    assert one[4] == two[4] == [("c0", "line", "line_unfollow")]  # reported by a worker, written by the engine
    for _, _, line, emails, _ in (one, two):
        assert len(line.received) == 40  # one request each: none repeated, none lost
        per_recipient = Counter(d.recipient for d in line.deliveries)
        assert set(per_recipient) == {line_id(i) for i in range(2, 40)} and max(per_recipient.values()) == 1
        assert sorted(m.recipients[0] for m in emails) == ["c0@example.com", "c1@example.com"]


def test_a_small_tick_is_sent_in_the_engines_own_process(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=3)

    async def scenario():
        async with ProviderServers() as servers:
            settings = EngineSettings(workers=2, worker_threshold=10)
            async with Engine(compile_text(THANKS), con, channels=servers.config(), environ=servers.environ(),
                              render_settings=SETTINGS, settings=settings) as engine:
                report = await engine.tick(NOW)
                return report.sent, engine.pool.handed_out, len(engine.pool.pids)

    assert asyncio.run(scenario()) == (3, 0, 2)


def test_the_workers_share_a_rate_limit_instead_of_multiplying_it(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=30)

    async def scenario():
        # The server refuses (429) any request beyond 15 in a second; each worker alone would stay under it.
        async with ProviderServers(line={"rate_limit": (15, 1.0)}) as servers:
            limits = {"per_second": 15, "burst": None, "concurrency": 8}
            async with _engine(con, servers, 2, line={"limits": limits}) as engine:
                report = await engine.tick(NOW)
            return report, servers.line

    report, line = asyncio.run(scenario())
    assert report.sent == 30
    assert len(line.received) == len(line.deliveries) == 30  # not one request refused for the rate


def test_each_worker_takes_its_part_of_every_limit():
    assert [part(15, (i, 2)) for i in range(2)] == [8, 7]
    assert sum(part(2000, (i, 3)) for i in range(3)) == 2000

    async def limits(share):
        config = ChannelsConfig(providers={"line": {"limits": {"per_second": 15, "concurrency": 5}}})
        engine = ChannelEngine(config, environ={"LINKSTAR_LINE_CHANNEL_TOKEN": "t"}, share=share)
        await engine.start()
        try:
            adapter = engine.adapters["line"]
            return ([limiter.limit for limiter in adapter.limits.limiters], adapter.limits.slots._value,
                    engine.indivisible(6), engine.indivisible(16))
        finally:
            await engine.close()

    assert asyncio.run(limits((0, 2)))[:2] == ([8], 3)
    assert asyncio.run(limits((1, 2)))[:2] == ([7], 2)
    assert asyncio.run(limits((0, 1))) == ([15], 5, "the concurrency cap of line is 5",
                                          "the rate limit of line account line allows 15 request(s) per 1 s")


def test_a_limit_too_small_to_share_keeps_the_sends_in_the_engines_process(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=2)

    async def scenario():
        async with ProviderServers() as servers:
            async with _engine(con, servers, 3, line={"limits": {"concurrency": 2}}) as engine:
                return engine.pool, engine.single_process, (await engine.tick(NOW)).sent

    assert asyncio.run(scenario()) == (
        None, "sending in one process: the concurrency cap of line is 2, too few to share between 3 workers", 2)


def test_a_worker_killed_mid_chunk_loses_nothing_and_sends_nothing_twice(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=60)
    victim = "thanks:0:e5"

    async def scenario():
        async with ProviderServers() as servers:
            # LINE takes the victim's message, then never answers: the worker is mid-request when killed.
            servers.line.inject(Fault(kind="hang", delay=60, deliver=True, recipient=line_id(5)))
            async with _engine(con, servers, 2) as engine:
                tick = asyncio.ensure_future(engine.tick(NOW))
                while not any(d.recipient == line_id(5) for d in servers.line.deliveries):
                    await asyncio.sleep(0.01)
                os.kill(engine.pool.holding(victim), signal.SIGKILL)
                report = await tick
                survivors = len(engine.pool.pids)
            return report, survivors, servers.line

    report, survivors, line = asyncio.run(scenario())
    assert survivors == 1
    per_recipient = Counter(d.recipient for d in line.deliveries)
    assert set(per_recipient) == {line_id(i) for i in range(60)}  # none lost
    assert max(per_recipient.values()) == 1  # none twice: the resend carried the same retry key
    assert len(line.received) > 60
    assert {r["status"] for r in ledger_rows(con)} == {"sent"}
    assert sorted(c.key for c in report.completions) == sorted(r["key"] for r in ledger_rows(con))


@pytest.mark.parametrize("workers", [0, -2, 1.5, "2", True])
def test_a_bad_number_of_workers_is_refused_in_one_line(workers):
    with pytest.raises(ValueError) as caught:
        EngineSettings(workers=workers)
    assert str(caught.value) == f"workers must be a whole number of at least 1, got {workers!r}"


def test_the_command_line_refuses_a_bad_number_of_workers(tmp_path):
    from linkstar_dsl.cli import main

    make_store(tmp_path / "s.duckdb").close()
    (tmp_path / "thanks.flow").write_text(THANKS, encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "thanks.flow"), "--db", str(tmp_path / "s.duckdb"),
                                       "--dry-run", "--workers", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Invalid value for --workers: must be a whole number of at least 1, got 0" in result.output


def test_dry_runs_and_an_embedders_channels_keep_to_the_engines_process(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=2)
    con.close()

    class Channels:
        adapters: dict = {}

        async def send(self, message):
            from linkstar_dsl.adapters.messages import Outcome, SendResult

            return SendResult(Outcome.SENT, "mine", provider_message_id="m")

    async def scenario():
        settings = EngineSettings(workers=2, worker_threshold=1)
        dry = Engine(compile_text(THANKS), str(tmp_path / "s.duckdb"), dry_run=True, settings=settings)
        own = Engine(compile_text(THANKS), str(tmp_path / "s.duckdb"), channels=Channels(),
                     render_settings=SETTINGS, settings=settings)
        sent = []
        for engine in (dry, own):
            async with engine:
                sent.append((engine.pool, (await engine.tick(NOW)).sent))
        return sent

    assert asyncio.run(scenario()) == [(None, 2), (None, 2)]


def test_a_killed_workers_sends_to_a_provider_without_idempotency_keys_end_unknown(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=30)
    flow = THANKS.replace("via line, email", "via email")

    async def scenario():
        async with ProviderServers() as servers:
            servers.sendgrid.inject(Fault(kind="hang", delay=60, deliver=True, recipient="c5@example.com"))
            settings = EngineSettings(workers=2, worker_threshold=1, concurrency=8)
            async with Engine(compile_text(flow), con, channels=servers.config(email="sendgrid"),
                              environ=servers.environ(), render_settings=SETTINGS, settings=settings) as engine:
                tick = asyncio.ensure_future(engine.tick(NOW))
                while not any(d.recipient == "c5@example.com" for d in servers.sendgrid.deliveries):
                    await asyncio.sleep(0.01)
                os.kill(engine.pool.holding("thanks:0:e5"), signal.SIGKILL)
                await tick
            return servers.sendgrid

    sendgrid = asyncio.run(scenario())
    rows = {r["key"]: r for r in ledger_rows(con)}
    assert rows["thanks:0:e5"]["status"] == "unknown" and rows["thanks:0:e5"]["reason"] == "outcome-unknown"
    assert {r["status"] for r in rows.values()} <= {"sent", "unknown"}
    assert len(sendgrid.received) == len(sendgrid.deliveries)  # nothing the dead worker held was sent again
    per_recipient = Counter(d.recipient for d in sendgrid.deliveries)
    assert max(per_recipient.values()) == 1
    sent = {f"c{k.rsplit('e', 1)[1]}@example.com" for k, r in rows.items() if r["status"] == "sent"}
    assert sent <= set(per_recipient)


def test_the_workers_log_lines_reach_the_engines_loggers(tmp_path, caplog):
    con = make_store(tmp_path / "s.duckdb", n=3)
    caplog.set_level(logging.INFO, logger="linkstar")

    async def scenario():
        async with ProviderServers() as servers:
            async with _engine(con, servers, 2) as engine:
                return (await engine.tick(NOW)).sent, engine.pool.handed_out

    assert asyncio.run(scenario()) == (3, 3)
    lines = [r.getMessage() for r in caplog.records if r.name == "linkstar.adapters"]
    assert sorted(line.split(" ")[0] for line in lines) == ["thanks:0:e0", "thanks:0:e1", "thanks:0:e2"]
    assert all(" via line to " in line for line in lines)
    assert not any(line_id(i) in line for line in lines for i in range(3))  # recipients masked, as in-process
