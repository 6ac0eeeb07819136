"""Sends per second through the LINE adapter, next to a bare aiohttp POST loop.

Both loops push to the same local LINE server, started in its own process (so the client and
the server each get a core), with the same number of requests in flight:

1. bare: a pre-built request body and headers, `session.post`, read the answer, nothing else;
2. adapter: `ChannelEngine.send` for a fresh `OutgoingMessage` each time: the body built from the
   message, the retry key derived, the answer classified, the concurrency cap, the circuit
   breaker and the result log line all included; rate limiting off;
3. adapter with LINE's published limit (2,000 requests per second) switched on;
4. end to end: one `Engine.tick` over a DuckDB store holding N due messages: the due query, the
   gates, rendering each message from its template in the sandbox, the HTTP call through the
   adapter, and the ledger's claim and completion, all counted;
5. the same tick with `EngineSettings(workers=2)`: the engine's process decides and writes the
   ledger, two dispatch worker processes render and send (LINE's concurrency cap shared out
   between them, so no more requests are in flight than in the other loops).  The workers are
   started with the engine, before the clock starts, as they are for a runner that keeps running.

Target: the adapter and the end-to-end tick each at least 60% of the bare loop, and at least
2,000 sends per second on 2 cores.  The end-to-end verdict is given for both ticks: the target
is met when either meets it (workers are a setting a runner chooses).

Other processes share the machine, so the loops of one round run back to back and each ratio is
taken against the bare loop of the same round; the table gives every round, the medians, and the
load average before and after.

Run: `python benchmarks/dispatch.py [--sends N] [--in-flight N] [--repeat R]`.  Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linkstar_dsl.adapters import ChannelEngine, ChannelsConfig, OutgoingMessage, Text  # noqa: E402
from linkstar_dsl.adapters.idempotency import line_retry_key  # noqa: E402

TOKEN = "line-test-token"
USER = "U" + "0123456789abcdef" * 2
TEXT = "ご注文ありがとうございます"


@contextmanager
def line_server():
    process = subprocess.Popen([sys.executable, "-m", "linkstar_dsl.providers", "line"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        ready, url = process.stdout.readline().split()
        assert ready == "ready"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def reset(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/__control/reset") as response:
            await response.read()


async def workers(count: int, in_flight: int, one) -> float:
    """Seconds to run `one(i)` for i in range(count), `in_flight` at a time."""
    next_index = iter(range(count))

    async def worker():
        for i in next_index:
            await one(i)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - started


async def bare(url: str, count: int, in_flight: int, *, tag: str) -> float:
    body = json.dumps({"to": USER, "messages": [{"type": "text", "text": TEXT}]}).encode()
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(i):
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                       "X-Line-Retry-Key": line_retry_key(f"{tag}:0:{i}")}
            async with session.post(url + "/v2/bot/message/push", data=body, headers=headers) as response:
                await response.read()
                assert response.status == 200
        return await workers(count, in_flight, one)


async def adapter(url: str, count: int, in_flight: int, *, rate_limited: bool, tag: str) -> float:
    limits = {"concurrency": in_flight} if rate_limited else {"concurrency": in_flight, "per_second": 0}
    config = ChannelsConfig(providers={"line": {"base_url": url, "limits": limits}})
    async with ChannelEngine(config, environ={"LINKSTAR_LINE_CHANNEL_TOKEN": TOKEN}, plugins=False) as engine:
        async def one(i):
            message = OutgoingMessage(f"{tag}:0:{i}", "line", USER, Text(TEXT))
            result = await engine.send(message)
            assert result.sent, result
        return await workers(count, in_flight, one)


FLOW = """
flow thanks
  purpose service
  on delivered + 48h
  via line
  send "delivered"
"""


def due_store(path: Path, count: int) -> None:
    """A store with `count` JP buyers, each with one order delivered two days before the tick."""
    from linkstar_dsl.store import open_store

    con = open_store(path)
    con.execute("INSERT INTO customers (id, source, name, email, line_user_id, locale, timezone, country) "
                "SELECT 'c' || i, 'shopify', 'Buyer ' || i, 'c' || i || '@example.com', "
                "'U' || lpad(printf('%x', i), 32, '0'), 'ja', 'Asia/Tokyo', 'JP' FROM range(?) t(i)", [count])
    con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, placed_at, "
                "delivered_at) SELECT 'o' || i, 'c' || i, 'shopify', 'delivered', 'JP', 3980, 'JPY', "
                "TIMESTAMPTZ '2026-08-28 00:00:00+00', TIMESTAMPTZ '2026-09-01 00:00:00+00' FROM range(?) t(i)",
                [count])
    con.execute("INSERT INTO order_events SELECT 'e' || i, 'o' || i, 'delivered', "
                "TIMESTAMPTZ '2026-09-01 00:00:00+00', NULL FROM range(?) t(i)", [count])
    con.close()


async def engine_tick(url: str, count: int, in_flight: int, *, tag: str, workers: int = 1) -> float:
    import tempfile
    from datetime import datetime, timezone

    from linkstar_dsl.runtime.engine import Engine, EngineSettings
    from linkstar_dsl.runtime.program import compile_text
    from linkstar_dsl.runtime.render_context import RenderSettings

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{tag}.duckdb"
        due_store(path, count)
        config = ChannelsConfig(providers={"line": {"base_url": url, "limits": {"concurrency": in_flight,
                                                                               "per_second": 0}}})
        settings = EngineSettings(concurrency=in_flight, auto_pause=None, workers=workers)
        async with Engine(compile_text(FLOW), str(path), channels=config, render_settings=RenderSettings.demo(),
                          environ={"LINKSTAR_LINE_CHANNEL_TOKEN": TOKEN}, settings=settings) as engine:
            started = time.perf_counter()
            report = await engine.tick(datetime(2026, 9, 3, 1, 0, tzinfo=timezone.utc))
            seconds = time.perf_counter() - started
        assert report.sent == count, report.counts()
    return seconds


async def measure(url: str, sends: int, in_flight: int, repeat: int) -> list[dict[str, float]]:
    """Sends per second of every loop, one dict per round; each round runs the loops back to back."""
    rounds: list[dict[str, float]] = []
    for round_ in range(repeat + 1):   # round 0 warms up the server and the connection pools
        runs = {BARE: lambda: bare(url, sends, in_flight, tag=f"c{round_}"),
                ADAPTER: lambda: adapter(url, sends, in_flight, rate_limited=False, tag=f"a{round_}"),
                LIMITED: lambda: adapter(url, sends, in_flight, rate_limited=True, tag=f"b{round_}"),
                TICK: lambda: engine_tick(url, sends, in_flight, tag=f"e{round_}"),
                POOL: lambda: engine_tick(url, sends, in_flight, tag=f"w{round_}", workers=2)}
        figures = {}
        for name, run in runs.items():
            await reset(url)
            figures[name] = sends / await run()
        if round_:
            rounds.append(figures)
    return rounds


BARE, ADAPTER, LIMITED, TICK, POOL = ("bare aiohttp POST loop", "LINE adapter (rate limit off)",
                                      "LINE adapter (2,000/s limit on)", "end to end: Engine.tick",
                                      "end to end: Engine.tick, 2 workers")
LOOPS = (BARE, ADAPTER, LIMITED, TICK, POOL)


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    before = load()
    with line_server() as url:
        rounds = asyncio.run(measure(url, args.sends, args.in_flight, args.repeat))
    print(f"dispatch: {args.sends} sends, {args.in_flight} in flight, {args.repeat} rounds after a warm-up, "
          f"local LINE server in its own process, {os.cpu_count()} cores; load average {before} before, "
          f"{load()} after")
    print(f"each round runs the {len(LOOPS)} loops back to back; ratios are against that round's bare loop")
    print(f"{'loop':<34} " + " ".join(f"{'round ' + str(i + 1):>17}" for i in range(len(rounds)))
          + f" {'median ratio':>13}")
    for name in LOOPS:
        cells = [f"{r[name]:>7,.0f} ({r[name] / r[BARE]:>4.0%})" for r in rounds]
        median = statistics.median(r[name] / r[BARE] for r in rounds)
        print(f"{name:<34} " + " ".join(f"{c:>17}" for c in cells) + f" {median:>13.0%}")
    print(f"\nmedians of the rounds\n{'loop':<34} {'sends/s':>9} {'vs bare':>8}")
    for name in LOOPS:
        rate = statistics.median(r[name] for r in rounds)
        print(f"{name:<34} {rate:>9,.0f} {statistics.median(r[name] / r[BARE] for r in rounds):>8.0%}")
    for name in (ADAPTER, TICK, POOL):
        ratio = statistics.median(r[name] / r[BARE] for r in rounds)
        rate = statistics.median(r[name] for r in rounds)
        verdict = "met" if ratio >= 0.6 and rate >= 2000 else "NOT met"
        print(f"target for {name} (>= 60% of bare and >= 2,000 sends/s, medians): {verdict}")
    print("(with the limit on, a run starts with one full window of 2,000, so its average over a short run\n"
          " can exceed 2,000/s; no one-second window at the server holds more than 2,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
