"""One production tick of every example flow, on stores with a long history of orders.

Store: the demo data set grown at a steady 3,500 orders a day, so that the orders due in an hour
stay about the same while the history grows: 1M orders cover 286 days, 10M orders 7.8 years.  It
is generated once, then copied into a new store with its events in time order (the order in which
a store fed by imports receives them; `linkstar_dsl.store.rewrite`), and kept in a cache folder
(`$LINKSTAR_BENCH_CACHE`, else `<tmp>/linkstar-bench`) under its number of orders, seed and days;
the generated store stays there (`.generated`) until its copy has succeeded.  DuckDB is held to
2 threads and `$LINKSTAR_BENCH_MEMORY` (8GB unless set) while it builds one: the 10M store takes
about ten minutes to generate and, on a busy machine, up to an hour to copy.

Tick: what `linkstar run` does before sending, for every example flow at once: the due set over
(now - 1 hour, now] (`DueSet.rows`), the recipients' gate inputs (`gate_inputs.fetch`), every
gate (`runtime.decide.decide_tick`), then the decisions written to the ledger
(`runtime.ledger.record_and_claim`).  Ticks run hour after hour near the end of the history: a
day of them first, as a runner that has been running a while (the parts of the indexes and of
the recent events a tick reads are then in memory), then the measured ones; the ledger is emptied
before and after.  Reported per size: rows due per tick, wall and CPU time per tick (median), and
where the time goes: each statement of the due set, the gate inputs, the gates and the ledger
write; also the first tick after opening the store, and the median of the day before.  Target
(issue 4): under 100 ms with 10M orders.

Run: `python benchmarks/tick.py [--orders 1000000,10000000] [--ticks 6] [--seed 42]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linkstar_dsl.demo_data import DEFAULT_START, generate
from linkstar_dsl.store import open_store
from linkstar_dsl.store.rewrite import copy_in_time_order

ORDERS_PER_DAY = 3_500
#: DuckDB's bounds while a store is built: a 10M-order copy otherwise takes most of the machine.
BUILD_MEMORY, BUILD_THREADS = os.environ.get("LINKSTAR_BENCH_MEMORY", "8GB"), 2


def days_for(orders: int) -> int:
    """Days of history for `orders` at the steady rate (at least the demo's 120, at most 3,660)."""
    return max(120, min(3_660, round(orders / ORDERS_PER_DAY)))


def cache_dir() -> Path:
    folder = Path(os.environ.get("LINKSTAR_BENCH_CACHE") or Path(tempfile.gettempdir()) / "linkstar-bench")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def bench_store(orders: int, seed: int = 42, log=print) -> Path:
    """The path of the benchmark store for `orders` (built on first use, then reused)."""
    days = days_for(orders)
    path = cache_dir() / f"store-{orders}-{seed}-{days}.duckdb"
    if path.exists():
        return path
    raw = path.with_suffix(".generated")  # kept until the copy succeeds: 10M orders take ten minutes
    started = time.perf_counter()
    if not raw.exists():
        generating = path.with_suffix(".generating")
        generating.unlink(missing_ok=True)
        con = open_store(generating)
        try:
            con.execute(f"SET memory_limit = '{BUILD_MEMORY}'")
            con.execute(f"SET threads = {BUILD_THREADS}")
            generate(con, orders=orders, seed=seed, days=days)
        finally:
            con.close()
        generating.rename(raw)
    generated = time.perf_counter()
    building = path.with_suffix(".copying")
    building.unlink(missing_ok=True)
    copy_in_time_order(raw, building, memory_limit=BUILD_MEMORY, threads=BUILD_THREADS)
    raw.unlink()
    building.rename(path)
    log(f"built {path.name}: {orders:,} orders over {days} days generated in {generated - started:.0f} s, "
        f"copied in time order in {time.perf_counter() - generated:.0f} s")
    return path


def history_end(orders: int):
    return DEFAULT_START + timedelta(days=days_for(orders))


def run_ticks(path: Path, orders: int, ticks: int, warm_up: int) -> dict:
    from linkstar_dsl.runtime import decide as decide_module
    from linkstar_dsl.runtime import ledger
    from linkstar_dsl.runtime.decide import decide_tick
    from linkstar_dsl.runtime.due_set import DueSet
    from linkstar_dsl.simulate_cli import load_plans

    plans, schema = load_plans((str(ROOT / "examples"),))
    due_set = DueSet(plans, schema)
    con = open_store(path)
    fetch_time = []
    real_fetch = decide_module.fetch

    def timed_fetch(*args):
        started = time.perf_counter()
        try:
            return real_fetch(*args)
        finally:
            fetch_time.append(time.perf_counter() - started)

    decide_module.fetch = timed_fetch
    con.execute("DELETE FROM ledger")
    base = history_end(orders) - timedelta(days=3) - timedelta(hours=warm_up)
    results = []
    try:
        for k in range(warm_up + ticks):
            now = base + timedelta(hours=k)
            fetch_time.clear()
            wall, cpu = time.perf_counter(), time.process_time()
            made = decide_tick(con, due_set, now - timedelta(hours=1), now)
            decided = time.perf_counter()
            ledger.record_and_claim(con, [d for *_, d in made], now, "bench")
            wall_end, cpu_end = time.perf_counter(), time.process_time()
            statements = dict(due_set.timings)
            due = sum(statements.values())
            results.append({"due": len(made), "decide": decided - wall, "tick": wall_end - wall,
                            "cpu": cpu_end - cpu, "statements": statements, "due_set": due,
                            "gate_inputs": sum(fetch_time), "gates": decided - wall - due - sum(fetch_time),
                            "ledger": wall_end - decided})
    finally:
        decide_module.fetch = real_fetch
        con.execute("DELETE FROM ledger")
        con.close()
    return {"first": results[0], "warm_up": results[:warm_up], "ticks": results[warm_up:]}


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def report(sizes: list[int], measured: dict[int, dict]) -> None:
    print("one tick of all example flows over (now - 1h, now]: median of the measured ticks")
    header = f"{'':28}" + "".join(f"{size:>14,}" for size in sizes)
    print(header + "  orders")
    rows = [("rows due per tick", lambda m: f"{median(m['ticks'], 'due'):,.0f}"),
            ("tick, wall (ms)", lambda m: f"{median(m['ticks'], 'tick') * 1000:.1f}"),
            ("tick, CPU all threads (ms)", lambda m: f"{median(m['ticks'], 'cpu') * 1000:.1f}"),
            ("  due set (ms)", lambda m: f"{median(m['ticks'], 'due_set') * 1000:.1f}"),
            ("  gate inputs (ms)", lambda m: f"{median(m['ticks'], 'gate_inputs') * 1000:.1f}"),
            ("  gates, in Python (ms)", lambda m: f"{median(m['ticks'], 'gates') * 1000:.1f}"),
            ("  ledger write (ms)", lambda m: f"{median(m['ticks'], 'ledger') * 1000:.1f}"),
            ("first tick, wall (ms)", lambda m: f"{m['first']['tick'] * 1000:.1f}"),
            ("day before, wall (ms)", lambda m: f"{median(m['warm_up'], 'tick') * 1000:.1f}")]
    for label, value in rows:
        print(f"{label:28}" + "".join(f"{value(measured[size]):>14}" for size in sizes))
    print("due set, per statement (ms):")
    names = list(measured[sizes[0]]["ticks"][0]["statements"])
    for name in names:
        cells = "".join(f"{statistics.median(t['statements'][name] for t in measured[s]['ticks']) * 1000:>14.2f}"
                        for s in sizes)
        print(f"  {name:26}" + cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="1000000,10000000",
                        help="comma-separated store sizes [default: 1000000,10000000]")
    parser.add_argument("--ticks", type=int, default=6, help="ticks measured [default: 6]")
    parser.add_argument("--warm-up", type=int, default=24, help="ticks run before them [default: 24]")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    sizes = [int(n) for n in args.orders.split(",")]
    measured = {}
    for size in sizes:
        path = bench_store(size, args.seed)
        measured[size] = run_ticks(path, size, args.ticks, max(1, args.warm_up))
    report(sizes, measured)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
