"""`linkstar test PATH...`: run the flow tests in `*.test.toml` files (SPEC.md, "Flow tests").

Exit codes: 0 every test passed, 1 a test failed (or its flows do not compile), 2 a test file
cannot be used (one `file:line: error: …` line per problem on standard error, nothing is run).
Only click is imported at start-up; the engine loads when the command runs.
"""

from __future__ import annotations

import os
import sys
import time

import click


def _write(text: str, stream) -> None:
    """Text for people in the terminal's encoding (`?` for what it cannot show), never a crash."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(encoding, "replace").decode(encoding))
    stream.flush()


def _colour(text: str, stream) -> str:
    """Marks and verdicts in colour on a terminal, unless NO_COLOR is set."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty or os.environ.get("NO_COLOR"):
        return text
    lines = []
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith("✓ "):
            line = line.replace("✓", click.style("✓", fg="green"), 1)
        elif stripped.startswith(("✗ ", "! ")):
            line = click.style(line.rstrip("\n"), fg="red") + "\n"
        lines.append(line)
    return "".join(lines)


@click.command("test")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "junit"]), default="text", show_default=True,
              help="text for people; junit: JUnit XML for CI.")
@click.option("-o", "--output", "output", help="Write the report to this file instead of standard output.")
@click.option("--coverage", is_flag=True,
              help="Also show which gates and branches of each flow the tests exercised.")
@click.option("-k", "select", help="Only the tests whose name contains this text.")
def test_command(paths, fmt, output, coverage, select) -> None:
    """Run flow tests: given these customers, orders and events, expect these sends, deferrals and skips."""
    from .load import collect, load_suite
    from .values import TestFileError

    try:
        files = collect(list(paths))
    except TestFileError as exc:
        raise click.UsageError(str(exc)) from None
    if not files:
        raise click.UsageError("no flow tests (*.test.toml) in " + ", ".join(paths))
    suites, problems = [], []
    for path in files:
        try:
            suites.append(load_suite(path))
        except TestFileError as exc:
            problems.append(exc)
    if problems:
        for exc in problems:
            where = exc.path + (f":{exc.line}" if exc.line else "") + (f":{exc.column}" if exc.column else "")
            click.echo(f"{where}: error: {exc.message}", err=True)
        raise SystemExit(2)
    sys.exit(_run(suites, paths, fmt, output, coverage, select))


def _run(suites, paths, fmt: str, output: str | None, coverage: bool, select: str | None) -> int:
    from .coverage import Coverage
    from .junit import junit_xml
    from .report import render
    from .runner import run_suite

    _pandas_absent()
    observer = Coverage() if coverage else None
    started = time.perf_counter()
    results = []
    for suite in suites:
        results += run_suite(suite, select, observer)
    seconds = time.perf_counter() - started
    if not results:
        raise click.UsageError(f"no test name contains \"{select}\"")
    report = junit_xml(results, seconds) if fmt == "junit" else render(results, seconds, len(suites))
    if output:
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(report)
        except OSError as exc:
            raise click.UsageError(f"{output}: cannot write the report ({exc.strerror or exc})") from None
    elif fmt == "junit":
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:  # XML is UTF-8 whatever the locale says
            sys.stdout.flush()
            buffer.write(report.encode("utf-8"))
        else:
            sys.stdout.write(report)
        sys.stdout.flush()
    else:
        _write(_colour(report, sys.stdout), sys.stdout)
    if observer is not None:
        # Keep standard output a valid XML document when it carries the JUnit report.
        stream = sys.stderr if fmt == "junit" and not output else sys.stdout
        gap = "\n" if fmt == "text" and not output else ""
        _write(gap + observer.render(_untested(paths, observer)), stream)
    return 0 if all(r.status == "pass" for r in results) else 1


def _pandas_absent() -> None:
    """DuckDB looks for pandas on every query with parameters; when pandas is not installed each
    look is a failed import searching the whole path, about a third of a test run.  Recording the
    absence once makes those looks free (and changes nothing else: the import fails either way)."""
    import importlib.util

    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None


def _untested(paths, observer) -> list[tuple[str, str]]:
    """Flows in the folders given that no test ran."""
    from pathlib import Path

    from ..runtime.program import CompileError, compile_paths

    found = []
    for name in paths:
        folder = Path(name)
        if not folder.is_dir():
            continue
        for flow_file in sorted(folder.rglob("*.flow")):
            try:
                program = compile_paths([flow_file])
            except CompileError:
                continue
            found += [(p.name, str(flow_file)) for p in program.plans if p.name not in observer.flows]
    return list(dict.fromkeys(found))
