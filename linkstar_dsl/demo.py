"""`linkstar demo`: the product on its bundled example flows.

Today it checks every example flow and shows what the checker found; the data, simulation and
sending stages join it as they land (see the README's roadmap).
"""

from __future__ import annotations

import sys
import time

from .checker import check_source
from .loader import load
from .render import render, summary
from .resources import data_dir


def run_demo(*, color: bool = False) -> int:
    out = sys.stdout
    examples = sorted(data_dir("examples").glob("*.flow"))
    started = time.perf_counter()
    reports = [check_source(*_loaded(path)) for path in examples]
    elapsed = time.perf_counter() - started
    out.write(f"LinkStar flows demo: checking {len(examples)} example flows\n\n")
    for report in reports:
        module = report.module
        flows = module.flows if module else ()
        status = "ok" if report.errors == 0 else "ERRORS"
        out.write(f"  {report.source.name:<48} {len(flows)} flow(s)  {status}"
                  f"{f', {report.warnings} warning(s)' if report.warnings else ''}\n")
        for flow in flows:
            trigger = flow.trigger
            offset = f" {trigger.offset.sign} {trigger.offset.duration.span.text}" if trigger.offset else ""
            purpose = next((p.name.value for p in flow.find(_purpose())), "marketing (default)")
            out.write(f"      - {flow.display_name}: on {trigger.event.value}{offset}, purpose {purpose}\n")
    shown = [d for r in reports for d in r.diagnostics][:3]
    if shown:
        out.write("\nWhat the checker says, for example:\n\n")
        for diag in shown:
            out.write(render(diag, color=color) + "\n\n")
    errors = sum(r.errors for r in reports)
    warnings = sum(r.warnings for r in reports)
    out.write(f"\n{summary(len(reports), errors, warnings)} in {elapsed * 1000:.0f} ms\n")
    return 0 if errors == 0 else 1


def _loaded(path):
    loaded = load(path)
    return loaded.source, (), loaded.diagnostics


def _purpose():
    from .ast import Purpose

    return Purpose
