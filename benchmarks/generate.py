"""Demo data generation: speed and memory of `linkstar generate` as the number of orders grows.

Each size runs in a fresh process (so its peak memory is its own) that does what `linkstar
generate` does: open a new store and generate.  Reported per
size: wall time, CPU time (user + system, all threads), rows written per second, orders per
second, the process's peak resident memory (`resource.getrusage`) and the size of the file.

Targets (issue 4): 1M orders well under a minute on 2 cores; memory flat as orders grow.  The
generator's own work tables are bounded by its chunk size; peak memory still grows with the data
because DuckDB keeps the store's ART indexes (primary keys, event indexes) in memory.

Run: `python benchmarks/generate.py [--sizes 100000,1000000] [--with-10m] [--keep DIR]`.
Prints a table; exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SIZES = (100_000, 1_000_000)


def measure_one(orders: int, db_path: Path) -> dict:
    """Generate `orders` into a new store at `db_path`, in this process; return the figures."""
    from linkstar_dsl.demo_data import generate
    from linkstar_dsl.store import open_store

    db_path.unlink(missing_ok=True)
    con = open_store(db_path)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    counts = generate(con, orders=orders)
    con.execute("CHECKPOINT")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    con.close()
    rows = sum(counts.values())
    return {
        "orders": orders,
        "rows": rows,
        "counts": counts,
        "wall_s": wall,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "rows_per_s": rows / wall,
        "orders_per_s": orders / wall,
        "peak_rss_mb": after.ru_maxrss / 1024,  # kilobytes on Linux
        "file_mb": db_path.stat().st_size / 2**20,
    }


def measure_in_child(orders: int, folder: Path) -> dict:
    db_path = folder / f"demo_{orders}.duckdb"
    done = subprocess.run([sys.executable, __file__, "--one", str(orders), "--db", str(db_path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"generating {orders:,} orders failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(results: list[dict]) -> None:
    print(f"linkstar generate, {os.cpu_count()} CPUs\n")
    header = f"{'orders':>11} {'rows':>12} {'wall s':>8} {'cpu s':>8} {'rows/s':>10} {'orders/s':>10} " \
             f"{'peak RSS MB':>12} {'file MB':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['orders']:>11,} {r['rows']:>12,} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} "
              f"{r['rows_per_s']:>10,.0f} {r['orders_per_s']:>10,.0f} {r['peak_rss_mb']:>12,.0f} "
              f"{r['file_mb']:>8,.0f}")
    if results:
        print("\nrows per table at the largest size:")
        for table, count in results[-1]["counts"].items():
            print(f"  {table:<16} {count:>12,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="comma-separated order counts")
    parser.add_argument("--with-10m", action="store_true", help="also generate 10,000,000 orders (minutes)")
    parser.add_argument("--keep", metavar="DIR", help="keep the generated stores in DIR")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, Path(args.db))))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.with_10m:
        sizes.append(10_000_000)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep) if args.keep else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for orders in sizes:
            results.append(measure_in_child(orders, folder))
            if not args.keep:
                (folder / f"demo_{orders}.duckdb").unlink(missing_ok=True)
    print_table(results)


if __name__ == "__main__":
    main()
