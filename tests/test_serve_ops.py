"""`linkstar serve` in operation: /healthz, /metrics, JSON logs, and graceful shutdown.

The last test runs the real command in a child process against local provider servers, sends it
SIGTERM while a message is in flight, and checks that it finished the send and left nothing
claimed.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import aiohttp
from test_serve_support import DELIVERED, TOKEN, Harness, make_store, twilio_headers

from linkstar_dsl.adapters.messages import Outcome, SendResult
from linkstar_dsl.providers.base import Fault
from linkstar_dsl.providers.servers import ProviderServers
from linkstar_dsl.serve.logs import install
from linkstar_dsl.serve.metrics import Counter, Histogram, Registry

SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+]+|\+Inf)$')


def run(coro):
    return asyncio.run(coro)


class SlowChannels:
    """A channel that takes its time: a send is in flight long enough to stop the service under it."""

    adapters: ClassVar[dict] = {}

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = asyncio.Event()
        self.finished: list[str] = []

    async def send(self, message) -> SendResult:
        self.started.set()
        await asyncio.sleep(self.seconds)
        self.finished.append(message.key)
        return SendResult(Outcome.SENT, "slow", provider_message_id=f"slow-{len(self.finished)}")


def test_healthz_and_metrics_describe_the_running_service(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            await h.service.tick(DELIVERED + timedelta(hours=1, minutes=5))
            await h.post("/v1/events/orders", json_body={"id": "x"})  # a 400, counted
            health = await h.get("/healthz")
            metrics = await h.get("/metrics")
            async with h.http.get(h.url("/metrics")) as r:
                content_type = r.headers["Content-Type"]
            await h.service.ticks.stop()
            stopped = await h.get("/healthz")
            return health, metrics, content_type, stopped

    health, (status, text), content_type, stopped = run(scenario())
    assert health[0] == 200 and health[1]["status"] == "ok" and health[1]["db"] == "ok"
    assert health[1]["engine"]["alive"] is True and health[1]["engine"]["last_tick"] == "2026-09-01T01:05:00+00:00"
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    lines = text.splitlines()
    assert all(SAMPLE.match(line) for line in lines if not line.startswith("#")), \
        [line for line in lines if not line.startswith("#") and not SAMPLE.match(line)]
    for wanted in ('linkstar_decisions_total{flow="thanks",decision="send",reason="sent"} 2',
                   'linkstar_sends_total{channel="email",outcome="sent"} 2',
                   'linkstar_completions_total{status="sent"} 2',
                   'linkstar_inbound_requests_total{endpoint="/v1/events/orders",status="400"} 1',
                   'linkstar_inbound_requests_total{endpoint="/healthz",status="200"} 1',
                   "linkstar_queue_depth 0", "# TYPE linkstar_tick_seconds histogram",
                   'linkstar_tick_seconds_bucket{le="+Inf"} 2', "linkstar_up 1"):
        assert wanted in lines, wanted
    assert stopped[0] == 503 and stopped[1]["problems"] == ["engine-stopped"]


def test_the_exposition_format_escapes_labels_and_accumulates_histograms():
    registry = Registry()
    counter = registry.add(Counter("x_total", "help", ("name",)))
    counter.inc('a"b\\c\nd')
    histogram = registry.add(Histogram("h_seconds", "help", buckets=(0.1, 1.0)))
    for value in (0.05, 0.5, 5.0):
        histogram.observe(value)
    text = registry.render()
    assert 'x_total{name="a\\"b\\\\c\\nd"} 1' in text
    assert 'h_seconds_bucket{le="0.1"} 1' in text and 'h_seconds_bucket{le="1"} 2' in text
    assert 'h_seconds_bucket{le="+Inf"} 3' in text and "h_seconds_count 3" in text and "h_seconds_sum 5.55" in text


def test_logs_are_json_lines_with_recipients_masked(tmp_path):
    stream = io.StringIO()
    handler = install(stream)

    async def scenario():
        async with Harness(tmp_path) as h:
            stop = {"MessageSid": "SM-1", "From": "+15550000000", "To": "+15005550006", "Body": "STOP"}
            url = h.url("/v1/webhooks/twilio/inbound")
            from urllib.parse import urlencode

            await h.post("/v1/webhooks/twilio/inbound", data=urlencode(stop), headers=twilio_headers(url, stop),
                         token=None)
            await h.service.tick(DELIVERED + timedelta(hours=1, minutes=5))

    try:
        run(scenario())
    finally:
        import logging

        logging.getLogger("linkstar").removeHandler(handler)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    events = {r["event"] for r in records}
    assert {"listening", "request", "feedback", "tick", "stopping", "stopped"} <= events
    feedback = next(r for r in records if r["event"] == "feedback")
    assert feedback["addresses"] == ["+15*****0000"] and feedback["kinds"] == ["stop"]
    request = next(r for r in records if r["event"] == "request")
    assert request["endpoint"] == "/v1/webhooks/twilio/inbound" and request["status"] == 200
    text = stream.getvalue()
    assert "+15550000000" not in text and "c0@example.com" not in text and TOKEN not in text
    tick = next(r for r in records if r["event"] == "tick" and r["sent"])
    assert tick["sent"] == 2 and tick["counts"]["send"] == 2


def test_graceful_shutdown_finishes_the_send_in_flight_and_stops_accepting(tmp_path):
    async def scenario():
        channels = SlowChannels(0.6)
        async with Harness(tmp_path, channels=channels, debounce=0.01) as h:
            h.clock.now = DELIVERED + timedelta(hours=1, minutes=5)
            h.service.ticks.wake()
            await asyncio.wait_for(channels.started.wait(), 10)
            stopping = asyncio.create_task(h.service.stop())
            await asyncio.sleep(0.1)
            try:
                async with aiohttp.ClientSession() as fresh, fresh.get(h.url("/healthz")) as r:
                    refused = f"answered {r.status}"
            except aiohttp.ClientConnectionError:
                refused = "refused"
            in_flight = len(channels.finished)
            await stopping
            return refused, in_flight, channels.finished, \
                h.rows("SELECT key, status, provider_id FROM ledger ORDER BY key")

    refused, in_flight, finished, rows = run(scenario())
    assert refused == "refused"
    assert in_flight == 0 and sorted(finished) == ["thanks:0:e0", "thanks:0:e1"]
    assert rows == [("thanks:0:e0", "sent", "slow-1"), ("thanks:0:e1", "sent", "slow-2")] or \
        rows == [("thanks:0:e0", "sent", "slow-2"), ("thanks:0:e1", "sent", "slow-1")]


FLOW = """
flow thanks
  purpose service
  on delivered + 1h
  via line
  send "delivered"
"""


def test_sigterm_stops_the_command_after_the_send_in_flight_with_nothing_left_claimed(tmp_path):
    db = tmp_path / "live.duckdb"
    make_store(db, customers=0).close()
    (tmp_path / "flows.flow").write_text(FLOW, encoding="utf-8")
    now = datetime.now(UTC)

    async def scenario():
        async with ProviderServers() as servers:
            servers.line.inject(Fault(kind="hang", delay=1.5, times=1))
            (tmp_path / "linkstar.toml").write_text(
                "[channels.providers.line]\n"
                f'base_url = "{servers.urls["line"]}"\n'
                "[channels.providers.line.limits]\nretries = 0\n"
                '[render]\nsender_name = "Sakura Goods"\nsender_address = "1-2-3 Chiyoda, Tokyo"\n'
                'shop_url = "https://shop.example.com"\n'
                "[serve]\ndebounce = 0.05\n", encoding="utf-8")
            env = {**os.environ, **servers.environ(), "LINKSTAR_SERVE_TOKEN": TOKEN,
                   "LINKSTAR_LINK_SECRET": "link-secret-for-tests-0123456789"}
            process = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "linkstar"), "serve", str(tmp_path / "flows.flow"), "--db", str(db),
                "--config", str(tmp_path / "linkstar.toml"), "--port", "0", "--every", "1h",
                cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            lines = []
            try:
                url = None
                while url is None:
                    line = await asyncio.wait_for(process.stderr.readline(), 60)
                    assert line, "the service exited before listening: " + "".join(lines)
                    lines.append(line.decode())
                    record = json.loads(line)
                    url = record.get("url") if record["event"] == "listening" else None
                event = {"id": "evt-live", "order_id": "o-live", "event": "delivered",
                         "occurred_at": (now - timedelta(hours=1, minutes=1)).isoformat(),
                         "order": {"customer_id": "c-live", "marketplace": "shopify", "status": "delivered",
                                   "country": "JP", "total": 3980, "total_currency": "JPY",
                                   "placed_at": (now - timedelta(days=3)).isoformat()},
                         "customer": {"country": "JP", "line_user_id": "U" + "a" * 32}}
                async with aiohttp.ClientSession() as http:
                    async with http.post(url + "/v1/events/orders", json=event,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                        stored = (r.status, await r.json())
                    async with http.get(url + "/healthz") as r:
                        health = r.status
                for _ in range(500):  # the debounced tick sends; LINE holds the request
                    if servers.line.received:
                        break
                    await asyncio.sleep(0.01)
                process.send_signal(signal.SIGTERM)
                rest = await asyncio.wait_for(process.stderr.read(), 60)
                code = await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            lines += rest.decode().splitlines(keepends=True)
            return stored, health, code, [json.loads(line) for line in lines if line.strip()], len(servers.line.received)

    stored, health, code, records, requests = run(scenario())
    assert stored == (200, {"stored": 1, "duplicates": 0, "duplicate_ids": []})
    assert health == 200 and requests == 1
    assert code == 0
    stopping = next(r for r in records if r["event"] == "stopping")
    assert stopping["in_tick"] is True
    assert next(r for r in records if r["event"] == "stopped")["claimed_left"] == 0
    from linkstar_dsl.store import open_store

    con = open_store(db)
    # the provider gave up on the held request: the send was completed as a retry, not left claimed
    assert con.execute("SELECT key, decision, reason, status FROM ledger").fetchall() == [
        ("thanks:0:evt-live", "defer", "retry", "decided")]
    assert con.execute("SELECT count(*) FROM ledger WHERE status = 'claimed'").fetchone() == (0,)


def test_the_serve_table_and_secrets_are_checked():
    from linkstar_dsl.serve.config import ConfigError, ServeConfig

    env = {"LINKSTAR_SERVE_TOKEN": TOKEN, "LINKSTAR_LINE_CHANNEL_SECRET": "line"}
    config = ServeConfig.load({"debounce": 0.5, "sendgrid_groups": {"42": "marketing"}}, env.get, port=9000)
    assert (config.port, config.debounce, config.sendgrid_groups) == (9000, 0.5, {42: "marketing"})
    assert config.secret("token") == TOKEN and config.secret("twilio_token") is None
    assert "secrets" not in repr(config) and TOKEN not in repr(config)
    for table, lookup, words in (({"debounse": 1}, env.get, "no setting debounse"),
                                 ({"max_body": -1}, env.get, "max_body must be a positive number"),
                                 ({}, {"LINKSTAR_SERVE_TOKEN": "short"}.get, "at least 16 characters")):
        try:
            ServeConfig.load(table, lookup)
        except ConfigError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"{table} was accepted")
