"""Evaluating a flow over order data: our compiled SQL next to what a user would pick instead.

For the Japanese post-delivery survey (`on delivered + 48h where not refunded and not returned and
order.marketplace != amazon`), it times computing the due set of one day, near the end of the
history, on the benchmark stores of `tick.py` (1M and 10M orders, events in time order):

* ours: the flow's due set as a tick computes it (`DueSet.rows`): the occurrences due, the ledger
  checked, the order and customer columns fetched, the guard evaluated;
* hand-written DuckDB SQL: one query for the same rows, as one would write it for this flow;
* the `rule-engine` package, evaluating the rule (time window included) per row over rows fetched
  from DuckDB, in batches of 100,000;
* a plain Python loop over the same fetched rows.

All four must find the same orders.  Each size runs in a fresh process (so its peak memory is its
own) with DuckDB's memory limit at 2 GB for ours and the hand-written query, 8 GB for the per-row
methods' fetch; peak RSS is reported after ours, and for the whole run.
Run: `python benchmarks/evaluate.py [--orders 1000000,10000000] [--repeat 3]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tick import bench_store, history_end

FLOW = "jp_post_delivery_survey"
OFFSET = timedelta(hours=48)
BATCH = 100_000

HAND_WRITTEN = """
SELECT concat('jp_post_delivery_survey:0:', e.id) AS key, e.id AS occurrence, o.id AS order_id,
       c.id AS customer_id, e.occurred_at + INTERVAL 48 HOUR AS due_at, o.country AS ship_country,
       o.state AS ship_state, o.marketplace, c.timezone, c.country, c.locale, c.email, c.phone,
       c.line_user_id, c.whatsapp, c.source,
       NOT EXISTS (SELECT 1 FROM order_events x WHERE x.order_id = o.id AND x.event = 'refunded' AND x.occurred_at <= $3)
       AND NOT EXISTS (SELECT 1 FROM order_events x WHERE x.order_id = o.id AND x.event = 'returned' AND x.occurred_at <= $3)
       AND o.marketplace <> 'amazon' AS guard_ok
FROM order_events e JOIN orders o ON o.id = e.order_id JOIN customers c ON c.id = o.customer_id
WHERE e.event = 'delivered' AND e.occurred_at > $1 AND e.occurred_at <= $2
  AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.key = concat('jp_post_delivery_survey:0:', e.id))
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


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: str, orders: int, repeat: int) -> dict:
    """Every method on one store, in this process; the figures as a dict."""
    import duckdb
    import rule_engine

    from linkstar_dsl.runtime.due_set import DueSet
    from linkstar_dsl.simulate_cli import load_plans
    from linkstar_dsl.store import key_lookups

    plans, schema = load_plans((str(ROOT / "examples"),))
    due_set = DueSet([p for p in plans if p.name == FLOW], schema)
    con = duckdb.connect(path, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '2GB'")
    now = history_end(orders) - timedelta(days=3)
    since = now - timedelta(days=1)
    lo, hi = since - OFFSET, now - OFFSET

    def ours():
        return {row["order_id"] for _, _, row in due_set.rows(con, since, now) if row["guard_ok"]}

    def hand():
        with key_lookups(con):
            return {r[2] for r in con.execute(HAND_WRITTEN, [lo, hi, now]).fetchall() if r[-1]}

    t_ours, found = timed(repeat, ours)
    rss_ours = rss_mib()
    t_hand, by_hand = timed(repeat, hand)
    assert found == by_hand, (len(found), len(by_hand))

    # The per-row methods' fetch joins every delivered order with its events: more room.
    con.execute("SET memory_limit = '8GB'")
    rule = rule_engine.Rule("not refunded and not returned and marketplace != 'amazon' "
                            "and delivered_at > lo and delivered_at <= hi")

    def per_row(keep) -> tuple[float, set]:
        """Fetch every delivered order in batches and keep those `keep` accepts; the time includes the fetch."""
        started = time.perf_counter()
        cursor = con.execute(FETCH_ALL, [now, now])
        kept = set()
        while batch := cursor.fetchmany(BATCH):
            kept |= keep(batch)
        return time.perf_counter() - started, kept

    t_loop, looped = per_row(lambda rows: {r[0] for r in rows if lo < r[2] <= hi and not r[3] and not r[4]
                                           and r[1] != "amazon"})
    t_rule, ruled = per_row(lambda rows: {r[0] for r in rows if rule.matches(
        {"marketplace": r[1], "delivered_at": r[2], "refunded": r[3], "returned": r[4], "lo": lo, "hi": hi})})
    assert found == looped == ruled, (len(found), len(looped), len(ruled))
    con.close()
    return {"orders": orders, "due": len(found), "ours": t_ours, "hand": t_hand, "loop": t_loop, "rule": t_rule,
            "rss_ours": rss_ours, "rss": rss_mib()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="1000000,10000000",
                        help="comma-separated store sizes [default: 1000000,10000000]")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, int(args.orders), args.repeat)))
        return 0
    results = []
    for size in (int(n) for n in args.orders.split(",")):
        path = bench_store(size, args.seed)
        out = subprocess.run([sys.executable, __file__, "--child", str(path), "--orders", str(size),
                              "--repeat", str(args.repeat)], check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"due set of one day for {FLOW} (best of {args.repeat}; per-row methods include fetching)")
    print(f"{'orders':>12} {'due':>6} {'ours':>9} {'hand SQL':>9} {'ratio':>6} {'loop':>9} {'rule-eng':>9} "
          f"{'vs rule':>8} {'vs loop':>8} {'RSS ours':>9} {'RSS all':>8}")
    for r in results:
        print(f"{r['orders']:>12,} {r['due']:>6,} {r['ours'] * 1000:>7.1f}ms {r['hand'] * 1000:>7.1f}ms "
              f"{r['ours'] / r['hand']:>5.2f}x {r['loop'] * 1000:>7.0f}ms {r['rule'] * 1000:>7.0f}ms "
              f"{r['rule'] / r['ours']:>7.0f}x {r['loop'] / r['ours']:>7.0f}x {r['rss_ours']:>6.0f}MiB {r['rss']:>5.0f}MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
