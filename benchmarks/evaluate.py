"""Evaluating a flow over order data: our compiled SQL next to what a user would pick instead.

For the Japanese post-delivery survey's trigger and guards (`on delivered + 48h where not refunded
and not returned and order.marketplace != amazon`), it times computing the set of orders due in
one day over a generated store of N orders:

* ours: the guard compiled by `linkstar_dsl.compiler` into one parameterised DuckDB query;
* hand-written DuckDB SQL for the same set (the physical limit here);
* the `rule-engine` package, evaluating the same rule per row over rows fetched from DuckDB;
* a plain Python loop over the same fetched rows.

It also times one full tick of every example flow (due query with every gate input) on that
store.  Run: `python benchmarks/evaluate.py [--orders 1000000] [--repeat 3]`.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linkstar_dsl.compiler.due import NOW, expr  # noqa: E402
from linkstar_dsl.demo_data import DEFAULT_DAYS, DEFAULT_START, generate  # noqa: E402
from linkstar_dsl.parser import parse  # noqa: E402
from linkstar_dsl.schema import standard_schema  # noqa: E402
from linkstar_dsl.store import open_store  # noqa: E402

GUARD = "not refunded and not returned and order.marketplace != amazon"
OFFSET = timedelta(hours=48)

HAND_WRITTEN = """
SELECT o.id FROM order_events e JOIN orders o ON o.id = e.order_id
WHERE e.event = 'delivered' AND e.occurred_at > ? AND e.occurred_at <= ?
  AND o.marketplace <> 'amazon'
  AND NOT EXISTS (SELECT 1 FROM order_events x WHERE x.order_id = o.id AND x.event = 'refunded' AND x.occurred_at <= ?)
  AND NOT EXISTS (SELECT 1 FROM order_events x WHERE x.order_id = o.id AND x.event = 'returned' AND x.occurred_at <= ?)
"""

FETCH_ALL = """
SELECT o.id, o.marketplace, e.occurred_at,
       EXISTS (SELECT 1 FROM order_events x WHERE x.order_id = o.id AND x.event = 'refunded' AND x.occurred_at <= ?) AS refunded,
       EXISTS (SELECT 1 FROM order_events x WHERE x.order_id = o.id AND x.event = 'returned' AND x.occurred_at <= ?) AS returned
FROM order_events e JOIN orders o ON o.id = e.order_id WHERE e.event = 'delivered'
"""


def timed(repeat: int, fn):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        con = open_store(db)
        started = time.perf_counter()
        generate(con, orders=args.orders)
        t_generate = time.perf_counter() - started

        now = DEFAULT_START + timedelta(days=DEFAULT_DAYS - 3)
        since = now - timedelta(days=1)
        schema = standard_schema()
        condition = parse(f"on delivered where {GUARD} via email purpose service").module.flows[0].clauses[1].expr
        compiled = expr(schema, condition)
        ours_sql = ("SELECT o.id FROM order_events e JOIN orders o ON o.id = e.order_id "
                    "JOIN customers c ON c.id = o.customer_id LEFT JOIN reviews r ON r.order_id = o.id "
                    "LEFT JOIN carts ct ON FALSE WHERE e.event = 'delivered' AND e.occurred_at > ? "
                    f"AND e.occurred_at <= ? AND coalesce({compiled.sql}, FALSE)")
        ours_params = [since - OFFSET, now - OFFSET] + [now if p is NOW else p for p in compiled.params]

        t_ours, ours = timed(args.repeat, lambda: {r[0] for r in con.execute(ours_sql, ours_params).fetchall()})
        t_hand, hand = timed(args.repeat, lambda: {r[0] for r in con.execute(
            HAND_WRITTEN, [since - OFFSET, now - OFFSET, now, now]).fetchall()})
        assert ours == hand, (len(ours), len(hand))

        started = time.perf_counter()
        rows = con.execute(FETCH_ALL, [now, now]).fetchall()
        t_fetch = time.perf_counter() - started
        lo, hi = since - OFFSET, now - OFFSET

        def python_loop():
            return {r[0] for r in rows if lo < r[2] <= hi and not r[3] and not r[4] and r[1] != "amazon"}

        import rule_engine

        rule = rule_engine.Rule("not refunded and not returned and marketplace != 'amazon' "
                                "and delivered_at > lo and delivered_at <= hi")
        records = [{"id": r[0], "marketplace": r[1], "delivered_at": r[2], "refunded": r[3], "returned": r[4],
                    "lo": lo, "hi": hi} for r in rows]

        t_loop, loop = timed(args.repeat, python_loop)
        t_rule, ruled = timed(1, lambda: {rec["id"] for rec in records if rule.matches(rec)})
        assert loop == hand == ruled, (len(loop), len(hand), len(ruled))
        t_loop += t_fetch
        t_rule += t_fetch

        con.close()
        from linkstar_dsl.simulate import Simulation, scratch
        from linkstar_dsl.simulate_cli import load_plans

        plans, plan_schema = load_plans((str(ROOT / "examples"),))
        sim = Simulation(scratch(str(db)), plans, plan_schema)
        tick_at = now
        started = time.perf_counter()
        made = sim.tick(tick_at - timedelta(hours=1), tick_at)
        t_tick = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"store: {args.orders:,} orders generated in {t_generate:.1f} s; due set: {len(hand):,} orders in one day")
    print(f"{'evaluation':<34} {'time':>10} {'ratio':>9}")
    for name, seconds, base in (("hand-written DuckDB SQL (baseline)", t_hand, t_hand),
                                ("ours: compiled to DuckDB SQL", t_ours, t_hand),
                                ("plain Python loop (incl. fetch)", t_loop, t_hand),
                                ("rule-engine per row (incl. fetch)", t_rule, t_hand)):
        print(f"{name:<34} {seconds * 1000:>8.1f}ms {seconds / base:>8.2f}x")
    print(f"ours is {t_rule / t_ours:,.0f}x faster than rule-engine, {t_loop / t_ours:,.0f}x faster than the loop")
    print(f"one tick of all example flows (1 hour, every gate input): {t_tick * 1000:.0f} ms, {len(made)} decisions")
    print(f"peak RSS: {rss:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
