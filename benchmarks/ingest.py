"""Inbound events per second into `linkstar serve`, next to bare aiohttp handlers, and none lost.

Each server runs in its own process (the client and the server each get a core); the client posts
the same canonical order events with the same number of requests in flight to:

1. bare: an aiohttp handler that reads the body and answers 200, nothing else;
2. bare + DuckDB: an aiohttp handler that parses the JSON and inserts the event into DuckDB,
   one transaction per request (what a hand-written endpoint usually does);
3. serve: `linkstar serve` itself: bearer token, body limit, validation against the store's
   schema, the event kept once by its id, committed (in groups) before the answer, metrics, a JSON
   log line per request, and the engine's loop woken after the events;
4. serve, each event with its order record (merged into `orders`, the customer's figures
   recomputed);
5. serve, 50 events per request.

After each run the server is stopped (SIGTERM, gracefully) and the rows in the store are counted:
every event answered 200 must be there exactly once.  For serve, the first events are then posted
again: a replay must be answered 200 and add no row.

Target: at least 1,000 events per second into `linkstar serve` on loopback, nothing lost.

Run: `python benchmarks/ingest.py [--events N] [--in-flight N]`.  Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "benchmark-token-0123456789"
ORDERS = 1000
FLOW = """
flow thanks
  purpose service
  on delivered + 48h
  via email
  send "delivered"
"""
BASE = datetime(2026, 9, 1, tzinfo=UTC)


# -- the servers (each in a child process) --------------------------------------------------------


def prepare_store(path: str) -> None:
    from linkstar_dsl.store import open_store

    con = open_store(path)
    con.execute("INSERT INTO customers (id, email, country) SELECT 'c' || i, 'c' || i || '@example.com', 'US' "
                "FROM range(?) t(i)", [ORDERS])
    con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, placed_at) "
                "SELECT 'o' || i, 'c' || i, 'shopify', 'paid', 'US', 40, 'USD', ? FROM range(?) t(i)", [BASE, ORDERS])
    con.execute("CHECKPOINT")
    con.close()


async def serve_bare(db: str):
    from aiohttp import web

    async def handle(request):
        await request.read()
        return web.json_response({"stored": 1})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/v1/events/orders", handle)
    return app, None


async def serve_bare_duckdb(db: str):
    import duckdb
    from aiohttp import web

    import linkstar_dsl.runtime  # noqa: F401 - DuckDB's cheap parameter binding

    con = duckdb.connect(db)
    cursor = con.cursor()

    async def handle(request):
        body = await request.json()
        events = body["events"] if isinstance(body, dict) and "events" in body else [body]
        stored = 0
        cursor.execute("BEGIN TRANSACTION")
        for e in events:
            stored += len(cursor.execute(
                "INSERT INTO order_events (id, order_id, event, occurred_at, data) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING RETURNING 1",
                [e["id"], e["order_id"], e["event"], e["occurred_at"], json.dumps(e.get("data"))]).fetchall())
        cursor.execute("COMMIT")
        return web.json_response({"stored": stored})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/v1/events/orders", handle)
    return app, con


class NullChannels:
    """Accepts every message: the benchmark measures what comes in, not what goes out."""

    adapters: ClassVar[dict] = {}

    async def send(self, message):
        from linkstar_dsl.adapters.messages import Outcome, SendResult

        return SendResult(Outcome.SENT, "null", provider_message_id="null")


async def run_server(mode: str, db: str) -> None:
    if mode == "serve":
        from linkstar_dsl.runtime.program import compile_text
        from linkstar_dsl.runtime.render_context import RenderSettings
        from linkstar_dsl.serve.config import ServeConfig
        from linkstar_dsl.serve.logs import install
        from linkstar_dsl.serve.service import Service

        install(open(os.devnull, "w"))  # noqa: SIM115, ASYNC230 - log lines formatted and written, as in production
        config = ServeConfig(port=0, every=timedelta(hours=1), debounce=1.0, secrets={"token": TOKEN})
        service = Service(compile_text(FLOW), db, channels=NullChannels(), render_settings=RenderSettings.demo(),
                          config=config)
        await service.start()
        print("ready", service.url, flush=True)
        await _until_terminated()
        await service.stop()
        return
    from aiohttp import web

    app, con = await (serve_bare if mode == "bare" else serve_bare_duckdb)(db)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print("ready", f"http://{host}:{port}", flush=True)
    await _until_terminated()
    await runner.cleanup()
    if con is not None:
        con.close()


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


# -- the client ------------------------------------------------------------------------------------


def event(n: int, with_order: bool) -> dict:
    order = n % ORDERS
    found = {"id": f"evt-{n}", "order_id": f"o{order}", "event": "shipped",
             "occurred_at": (BASE + timedelta(seconds=n)).isoformat(), "data": {"carrier": "ups", "n": n}}
    if with_order:
        found["order"] = {"status": "shipped", "shipped_at": found["occurred_at"]}
    return found


def bodies(count: int, per_request: int, with_order: bool, start: int = 0) -> list[bytes]:
    found = []
    for first in range(start, start + count, per_request):
        batch = [event(n, with_order) for n in range(first, min(first + per_request, start + count))]
        found.append(json.dumps(batch[0] if per_request == 1 else {"events": batch}).encode())
    return found


async def post_all(url: str, requests: list[bytes], in_flight: int) -> dict:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    latencies, failures, stored, duplicates = [], 0, 0, 0
    queue = list(reversed(requests))
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker():
            nonlocal failures, stored, duplicates
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                async with session.post(url + "/v1/events/orders", data=body, headers=headers) as response:
                    answer = await response.json()
                latencies.append(time.perf_counter() - started)
                if response.status != 200:
                    failures += 1
                    continue
                stored += answer.get("stored", 0)
                duplicates += answer.get("duplicates", 0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {"seconds": seconds, "failures": failures, "stored": stored, "duplicates": duplicates,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]}


def start_server(mode: str, db: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--db", db], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().split()
    if not line or line[0] != "ready":
        process.kill()
        raise SystemExit(f"the {mode} server did not start")
    return process, line[1]


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        raise SystemExit("the server did not stop within 5 minutes of SIGTERM") from None


def count_rows(db: str) -> int:
    import duckdb

    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM order_events").fetchone()[0]
    finally:
        con.close()


def measure(mode: str, label: str, events: int, per_request: int, in_flight: int, with_order: bool,
            workdir: Path) -> dict:
    db = str(workdir / f"{label.replace(' ', '_')}.duckdb")
    prepare_store(db)
    process, url = start_server(mode, db)
    try:
        result = asyncio.run(post_all(url, bodies(events, per_request, with_order), in_flight))
        if mode == "serve":
            replay = asyncio.run(post_all(url, bodies(min(events, 1000), per_request, with_order), in_flight))
            result["replay"] = replay
    finally:
        stop_server(process)
    result.update(label=label, events=events, rate=events / result["seconds"],
                  rows=count_rows(db) if mode != "bare" else None)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--serve", choices=("bare", "bare-duckdb", "serve"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(run_server(args.serve, args.db))
        return 0
    runs = [("bare", "bare aiohttp", 1, False), ("bare-duckdb", "bare aiohttp + DuckDB insert", 1, False),
            ("serve", "linkstar serve", 1, False), ("serve", "linkstar serve + order record", 1, True),
            ("serve", "linkstar serve, 50 per request", 50, False)]
    results = []
    with tempfile.TemporaryDirectory(prefix="linkstar-ingest-") as workdir:
        for mode, label, per_request, with_order in runs:
            print(f"  {label} …", file=sys.stderr, flush=True)
            results.append(measure(mode, label, args.events, per_request, args.in_flight, with_order, Path(workdir)))
    print(f"{args.events:,} events, {args.in_flight} requests in flight, loopback, server in its own process\n")
    print(f"{'server':<34}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}{'rows':>9}  lost  replay")
    ok = True
    for r in results:
        rows = r["rows"]
        lost = "-" if rows is None else str(r["events"] - rows)
        replay = ""
        if "replay" in r:
            again = r["replay"]
            replay = f"200s, {again['duplicates']} duplicates, {again['stored']} stored"
            ok &= again["stored"] == 0 and again["failures"] == 0
        print(f"{r['label']:<34}{r['rate']:>10,.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['failures']:>9}"
              f"{rows if rows is not None else '-':>9}  {lost:>4}  {replay}")
        if r["label"].startswith("linkstar serve"):
            ok &= r["failures"] == 0 and rows == r["events"] and r["rate"] >= 1000
    print("\ntarget (≥ 1,000 events/s into linkstar serve, none lost, replays change nothing):",
          "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
