"""The text report of `linkstar test`: one line per test, and for each failure what was expected,
what the flow decided instead, and the gates behind that decision."""

from __future__ import annotations

from collections.abc import Iterable

from .runner import CaseResult, describe_actual, describe_expected, subject_of
from .values import show_time

MARKS = {"pass": "✓", "fail": "✗", "error": "!"}


def failure_text(result: CaseResult) -> list[str]:
    """The body of a failed or broken test, without indentation."""
    if result.status == "error":
        return (result.error or "").splitlines()
    zone, path = result.suite.zone, result.suite.label
    lines: list[str] = []
    traces: set[tuple[str, ...]] = set()
    for failure in result.failures:
        e = failure.expectation
        if e is None:
            d = failure.actual[-1].decision
            lines.append(f"{subject_of(d)}: a message no expectation mentions "
                         "(list it, or set `strict = false`)")
        else:
            lines.append(f"{path}:{e.line}: {e.subject()}")
            lines.append(f"  expected  {describe_expected(e, zone)}")
        if failure.actual:
            for n, made in enumerate(failure.actual):
                head = "actual" if n == 0 else ""
                lines.append(f"  {head:<8}  {describe_actual(made, zone, result.labelled)}")
        else:
            start, end = result.period or (None, None)
            lines.append("  actual    no decision at all"
                         + (f" from {show_time(start, zone)} to {show_time(end, zone)}" if start else ""))
        if failure.trace and failure.trace not in traces:
            traces.add(failure.trace)
            lines += ["  " + t for t in failure.trace]
        lines.append("")
    return lines[:-1] if lines and lines[-1] == "" else lines


def summary(result: CaseResult) -> str:
    """One line for the first problem of a test, for CI dashboards."""
    if result.status == "error" or not result.failures:
        return next((line for line in failure_text(result) if line.strip()), result.status)
    failure, zone = result.failures[0], result.suite.zone
    got = describe_actual(failure.actual[-1], zone) if failure.actual else "no decision at all"
    if failure.expectation is None:
        return f"unexpected: {got}"
    e = failure.expectation
    return f"line {e.line}, {e.subject()}: expected {describe_expected(e, zone)}; got {got}"


def render(results: Iterable[CaseResult], seconds: float, files: int) -> str:
    out: list[str] = []
    current = None
    results = list(results)
    for r in results:
        if r.suite.label != current:
            current = r.suite.label
            out.append(current)
        where = f"  ({r.suite.label}:{r.line})" if r.status != "pass" else ""
        out.append(f"  {MARKS[r.status]} {r.name}{where}")
        if r.status != "pass":
            out += ["      " + line if line else "" for line in failure_text(r)]
    passed = sum(r.status == "pass" for r in results)
    failed = sum(r.status == "fail" for r in results)
    errors = sum(r.status == "error" for r in results)
    parts = [f"{passed} passed"] + ([f"{failed} failed"] if failed else [])
    parts += [_count(errors, "error")] if errors else []
    out.append("")
    out.append(f"{_count(files, 'file')}, {_count(len(results), 'test')}: "
               + ", ".join(parts) + f" ({seconds:.1f} s)")
    return "\n".join(out) + "\n"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"
