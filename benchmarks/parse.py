"""Parsing speed, side by side with its baseline, and `linkstar check` start-up time.

1. Full parse + AST (`linkstar_dsl.parser.parse`) of a generated 10,000-line corpus, next to bare
   Lark LALR parsing of the same text with the same grammar (a Lark tree, no positions, no AST).
   Target: at most 2x the baseline.
2. The whole checker (every pass: structure, names, types, compliance) on the same corpus, next to
   parsing alone.  Target: at most 1.5x.
3. Whole-process time of `linkstar check` on one small file, next to a bare `python -c pass`.
   Target: under 300 ms.

Run: `python benchmarks/parse.py [--lines N] [--repeat R]`.  Prints a table; exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import generate  # noqa: E402
from lark import Lark  # noqa: E402

from linkstar_dsl.checker import check_text  # noqa: E402
from linkstar_dsl.parser import parse  # noqa: E402
from linkstar_dsl.resources import grammar_text  # noqa: E402


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def process_time(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    text = generate(args.lines)
    line_count = text.count("\n")
    bare = Lark(grammar_text(), parser="lalr", lexer="contextual")
    result = parse(text, "corpus.flow")
    assert result.ok and result.module is not None, result.diagnostics[:3]

    t_bare = best_of(args.repeat, lambda: bare.parse(text))
    t_ours = best_of(args.repeat, lambda: parse(text, "corpus.flow"))
    report = check_text(text, "corpus.flow")
    assert report.errors == 0, [d.message for d in report.diagnostics[:3]]
    t_check = best_of(args.repeat, lambda: check_text(text, "corpus.flow"))

    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.flow"
        small.write_text("on delivered + 48h where not refunded via line, email purpose service\n")
        linkstar = Path(sys.executable).with_name("linkstar")
        check_cmd = [str(linkstar), "check", str(small)] if linkstar.exists() else \
            [sys.executable, "-m", "linkstar_dsl", "check", str(small)]
        process_time(check_cmd, 2)  # warm the grammar cache and the OS file cache
        t_process = process_time(check_cmd, max(args.repeat * 2, 10))
        t_python = process_time([sys.executable, "-c", "pass"], max(args.repeat * 2, 10))

    rows = [
        ("parse + AST, ours", f"{line_count:,} lines", t_ours, t_ours / t_bare, "≤ 2.00x bare Lark"),
        ("bare Lark LALR (baseline)", f"{line_count:,} lines", t_bare, 1.0, ""),
        ("full check (all passes)", f"{line_count:,} lines", t_check, t_check / t_ours, "≤ 1.50x parse alone"),
        ("`linkstar check` one file", "whole process", t_process, t_process / t_python, "< 300 ms"),
        ("`python -c pass` (baseline)", "whole process", t_python, 1.0, ""),
    ]
    print(f"{'benchmark':<30} {'input':<16} {'time':>10} {'ratio':>8}  target")
    for name, size, seconds, ratio, target in rows:
        print(f"{name:<30} {size:<16} {seconds * 1000:>8.1f}ms {ratio:>7.2f}x  {target}")
    print(f"\nthroughput: {line_count / t_ours:,.0f} lines/s parsed into the AST")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
