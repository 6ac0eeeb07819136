"""Every benchmark in this folder, run one after the other, summed up in one table of ratios.

    python benchmarks/report.py [--quick] [--only parse,tick,...] [--log-dir DIR] [--from-logs DIR]

Each benchmark runs as its own process (as `python benchmarks/NAME.py …` would), with the sizes
below (`--quick`: small ones, for a look in a few minutes).  Its printed table is read back and
each measurement is set next to its baseline, the thing a user would pick instead:

| benchmark | measured against |
|---|---|
| parse | bare Lark LALR on the same text; the checker against parsing alone; a bare `python -c pass` |
| evaluate | hand-written DuckDB SQL, the `rule-engine` package and a plain Python loop |
| dispatch | a bare aiohttp POST loop to the same local server |
| tick | the 100 ms target for one tick of every example flow |
| generate | the one-minute target for a million orders |
| ingest | bare aiohttp handlers, with and without a DuckDB insert per request |

A benchmark that is not in the folder is listed as absent; one that fails, or whose output cannot
be read, is listed with its exit code, and its whole output is in the log folder.  The table ends
with the machine it ran on and its load, since a loaded machine slows every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    benchmark: str
    measure: str
    result: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


# ------------------------------------------------------------------------------------ readers


def read_parse(out: str) -> list[Row]:
    pattern = re.compile(r"^(?P<name>\S.*?)\s{2,}(?P<input>\S.*?)\s{2,}(?P<ms>[\d,.]+)ms\s+(?P<ratio>[\d.]+)x\s*"
                         r"(?P<target>.*)$")
    found = {m["name"].strip(): m for m in map(pattern.match, out.splitlines()) if m}
    rows = []
    pairs = [("parse + AST, ours", "bare Lark LALR (baseline)"), ("full check (all passes)", "parse + AST, ours"),
             ("`linkstar check` one file", "`python -c pass` (baseline)")]
    for name, base in pairs:
        if name not in found or base not in found:
            continue
        m, b = found[name], found[base]
        target = m["target"].strip()
        ms = _num(m["ms"])
        ratio = ms / _num(b["ms"])
        limit = re.search(r"([\d.]+)\s*(x|ms)", target)
        ok = (ratio <= float(limit[1])) if limit and limit[2] == "x" else (ms < float(limit[1])) if limit else None
        rows.append(Row("parse", f"{name.replace(', ours', '')} ({m['input'].strip()})", f"{ms:,.1f} ms",
                        f"{base.replace(' (baseline)', '')} {_num(b['ms']):,.1f} ms", f"{ratio:.2f}x", target,
                        "" if ok is None else _met(ok)))
    speed = re.search(r"throughput: ([\d,]+) lines/s", out)
    if speed:
        rows.append(Row("parse", "lines parsed into the AST per second", speed[1]))
    return rows


def read_evaluate(out: str) -> list[Row]:
    pattern = re.compile(r"^\s*(?P<orders>[\d,]+)\s+(?P<due>[\d,]+)\s+(?P<ours>[\d.]+)ms\s+(?P<hand>[\d.]+)ms\s+"
                         r"(?P<ratio>[\d.]+)x\s+(?P<loop>[\d.]+)ms\s+(?P<rule>[\d.]+)ms")
    rows = []
    for m in filter(None, map(pattern.match, out.splitlines())):
        ours = _num(m["ours"])
        size = f"{_num(m['orders']):,.0f} orders"
        rows.append(Row("evaluate", f"due set of a day, {size}", f"{ours:,.1f} ms",
                        f"hand-written SQL {_num(m['hand']):,.1f} ms", f"{ours / _num(m['hand']):.2f}x"))
        rows.append(Row("evaluate", f"  the same, {size}", "", f"rule-engine {_num(m['rule']):,.0f} ms",
                        f"{ours / _num(m['rule']):.2f}x"))
        rows.append(Row("evaluate", f"  the same, {size}", "", f"Python loop {_num(m['loop']):,.0f} ms",
                        f"{ours / _num(m['loop']):.2f}x"))
    return rows


def read_dispatch(out: str) -> list[Row]:
    pattern = re.compile(r"^(?P<name>\S.*?)\s{2,}(?P<rate>[\d,]+)\s+(?P<pct>\d+)%\s*$")
    found = [(m["name"].strip(), _num(m["rate"])) for m in map(pattern.match, out.splitlines()) if m]
    if not found:
        return []
    bare = dict(found).get("bare aiohttp POST loop", found[0][1])
    verdicts = dict(re.findall(r"^target for (.+) \(>=.*\): (met|NOT met)$", out, re.M))
    rows = []
    for name, rate in found:
        if name.startswith("bare"):
            continue
        rows.append(Row("dispatch", f"sends/s, {name}", f"{rate:,.0f}/s", f"bare aiohttp {bare:,.0f}/s",
                        f"{rate / bare:.2f}x", "≥ 0.60x and ≥ 2,000/s" if name in verdicts else "",
                        verdicts.get(name, "")))
    return rows


def read_tick(out: str) -> list[Row]:
    header = next((line for line in out.splitlines() if line.rstrip().endswith(" orders")
                   and re.search(r"\d", line)), None)
    wall = re.search(r"^tick, wall \(ms\)\s+(.*)$", out, re.M)
    due = re.search(r"^rows due per tick\s+(.*)$", out, re.M)
    if header is None or wall is None:
        return []
    sizes = re.findall(r"[\d,]+", header)
    values = [_num(v) for v in wall[1].split()]
    dues = due[1].split() if due else [""] * len(sizes)
    return [Row("tick", f"one tick of every example flow, {size} orders ({d} due)", f"{ms:,.1f} ms",
                "target 100 ms", f"{ms / 100:.2f}x", "≤ 1.00x (at 10M orders)",
                _met(ms <= 100) if _num(size) >= 10_000_000 else "")
            for size, ms, d in zip(sizes, values, dues)]


def read_generate(out: str) -> list[Row]:
    pattern = re.compile(r"^\s*(?P<orders>[\d,]+)\s+(?P<rows>[\d,]+)\s+(?P<wall>[\d.]+)\s+(?P<cpu>[\d.]+)\s+"
                         r"(?P<rps>[\d,]+)\s+(?P<ops>[\d,]+)\s+(?P<rss>[\d,]+)\s+(?P<file>[\d,]+)\s*$")
    rows = []
    for m in filter(None, map(pattern.match, out.splitlines())):
        orders, wall = _num(m["orders"]), _num(m["wall"])
        per_million = wall * 1_000_000 / orders
        rows.append(Row("generate", f"{orders:,.0f} orders ({_num(m['rss']):,.0f} MB peak)", f"{wall:,.1f} s",
                        "target 60 s per million", f"{per_million / 60:.2f}x", "≤ 1.00x",
                        _met(per_million <= 60) if orders >= 1_000_000 else ""))
    return rows


def read_ingest(out: str) -> list[Row]:
    pattern = re.compile(r"^(?P<name>\S.*?)\s{2,}(?P<rate>[\d,]+)\s+(?P<p50>[\d.]+)\s+(?P<p99>[\d.]+)\s+"
                         r"(?P<bad>\d+)\s+(?P<rows>[\d-]+)\s+(?P<lost>[\d-]+)")
    found = {m["name"].strip(): m for m in map(pattern.match, out.splitlines()) if m}
    bare, duck = found.get("bare aiohttp"), found.get("bare aiohttp + DuckDB insert")
    rows = []
    for name, m in found.items():
        if not name.startswith("linkstar serve"):
            continue
        rate = _num(m["rate"])
        lost = m["lost"]
        targeted = name == "linkstar serve"  # the benchmark's target is for plain events, one per request
        for base_name, base in (("bare aiohttp", bare), ("aiohttp + DuckDB insert", duck)):
            if base is not None:
                first = targeted and base is bare
                rows.append(Row("ingest", f"events/s, {name} (lost {lost})", f"{rate:,.0f}/s",
                                f"{base_name} {_num(base['rate']):,.0f}/s", f"{rate / _num(base['rate']):.2f}x",
                                "≥ 1,000/s, none lost" if first else "",
                                _met(rate >= 1000 and lost in ("0", "-")) if first else ""))
    return rows


# ------------------------------------------------------------------------------------ the plan


@dataclass
class Benchmark:
    name: str
    full: list[str]
    quick: list[str]
    read: Callable[[str], list[Row]]
    timeout: float = 3600


BENCHMARKS = [
    Benchmark("parse", [], ["--lines", "3000", "--repeat", "3"], read_parse),
    Benchmark("evaluate", ["--orders", "1000000"], ["--orders", "100000", "--repeat", "1"], read_evaluate),
    Benchmark("dispatch", [], ["--sends", "1000", "--repeat", "1"], read_dispatch),
    Benchmark("tick", ["--orders", "1000000"], ["--orders", "100000", "--ticks", "2", "--warm-up", "2"], read_tick),
    Benchmark("generate", ["--sizes", "100000,1000000"], ["--sizes", "20000"], read_generate),
    Benchmark("ingest", [], ["--events", "2000"], read_ingest),
]


def run_one(bench: Benchmark, quick: bool, log_dir: Path) -> tuple[list[Row], float]:
    script = HERE / f"{bench.name}.py"
    if not script.is_file():
        return [Row(bench.name, "absent: no benchmarks/" + script.name + " in this tree", "")], 0.0
    args = [sys.executable, str(script), *(bench.quick if quick else bench.full)]
    started = time.perf_counter()
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=bench.timeout, cwd=HERE.parent)
        out, code = done.stdout, done.returncode
        err = done.stderr
    except subprocess.TimeoutExpired as exc:
        out, code, err = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or ""), \
            "timeout", ""
    seconds = time.perf_counter() - started
    (log_dir / f"{bench.name}.log").write_text(f"$ {' '.join(args)}\n{out}\n{err}", encoding="utf-8")
    rows = bench.read(out)
    log = log_dir / f"{bench.name}.log"
    if not rows:
        why = f"failed (exit {code})" if code != 0 else "ran, but its output could not be read"
        rows = [Row(bench.name, f"{why}; see {log}", "")]
    elif code != 0:  # some benchmarks exit 1 when a target is not met; their figures still count
        rows.append(Row(bench.name, f"exited with {code}; see {log}", ""))
    return rows, seconds


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    try:
        import duckdb
        duck = duckdb.__version__
    except ImportError:
        duck = "absent"
    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, DuckDB {duck}; load average {load}")


def table(rows: list[Row]) -> str:
    head = Row("benchmark", "measure", "result", "baseline", "ratio", "target", "")
    cells = [[r.benchmark, r.measure, r.result, r.baseline, r.ratio, r.target, r.verdict] for r in [head, *rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(7)]
    lines = []
    for n, c in enumerate(cells):
        lines.append("  ".join(v.ljust(w) if i < 4 or i > 4 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths)))
                     .rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a look in a few minutes")
    parser.add_argument("--only", help="comma-separated benchmarks to run (default: all)")
    parser.add_argument("--log-dir", type=Path, help="where each benchmark's full output goes (default: a temp dir)")
    parser.add_argument("--from-logs", type=Path, metavar="DIR",
                        help="run nothing: read the outputs an earlier run left in DIR and print the table again")
    args = parser.parse_args(argv)
    if args.from_logs:
        rows = []
        for bench in BENCHMARKS:
            log = args.from_logs / f"{bench.name}.log"
            rows += bench.read(log.read_text(encoding="utf-8")) if log.is_file() else [Row(bench.name, "no log", "")]
        print(table(rows))
        return 0
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only.split(",")]
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="linkstar-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    before = machine()
    rows, spent = [], []
    for bench in chosen:
        print(f"running {bench.name} …", file=sys.stderr, flush=True)
        found, seconds = run_one(bench, args.quick, log_dir)
        rows += found
        spent.append(f"{bench.name} {seconds:.0f} s")
    print(table(rows))
    print(f"\nratio: result ÷ baseline (lower is faster for times, higher for rates); "
          f"{'quick sizes' if args.quick else 'full sizes'}; {', '.join(spent)}")
    print(f"machine: {before}")
    print(f"full outputs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
