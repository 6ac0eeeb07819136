"""The `linkstar` command line.

Exit codes (SPEC.md, "Exit codes"): 0 success, 1 problems found (errors, or warnings under
`--strict`; files `fmt --check` would change), 2 usage or I/O error with a one-line message,
3 an internal error (a bug: the message asks for a report).  Heavy modules are imported inside
the commands that need them, so `check` starts fast.
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _use_color(choice: str, stream) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _fail(message: str) -> None:
    click.echo(f"linkstar: error: {message}", err=True)
    raise SystemExit(EXIT_USAGE)


def _read_stdin(name: str):
    from .loader import decode

    return decode(name, sys.stdin.buffer.read())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="linkstar")
def main() -> None:
    """LinkStar flows: write buyer-outreach flows as code, prove them compliant, run them."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]), default="text",
              show_default=True, help="Output format.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
@click.option("--stdin-name", default="<stdin>", help="File name to report for `-` (standard input).")
def check(paths: tuple[str, ...], fmt: str, strict: bool, color: str, stdin_name: str) -> None:
    """Check .flow files and folders (recursing into *.flow); `-` reads standard input."""
    from .checker import check_source
    from .loader import LoadError, collect, load
    from .reporters import REPORTERS

    reports = []
    try:
        files = [p for p in paths if p != "-"]
        targets = collect(files) if files else []
        if "-" in paths:
            loaded = _read_stdin(stdin_name)
            reports.append(check_source(loaded.source, prior=loaded.diagnostics))
        for path in targets:
            loaded = load(path)
            reports.append(check_source(loaded.source, prior=loaded.diagnostics))
    except LoadError as exc:
        _fail(str(exc))
    if not reports:
        _fail("no .flow files found in " + ", ".join(paths))
    output = REPORTERS[fmt](reports, color=_use_color(color, sys.stdout) if fmt == "text" else False)
    sys.stdout.write(output)
    errors = sum(r.errors for r in reports)
    warnings = sum(r.warnings for r in reports)
    raise SystemExit(EXIT_PROBLEMS if errors or (strict and warnings) else EXIT_OK)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--check", "mode", flag_value="check", help="Exit 1 if any file is not formatted; change nothing.")
@click.option("--diff", "mode", flag_value="diff", help="Print a unified diff of the changes; change nothing.")
@click.option("--write", "mode", flag_value="write", help="Rewrite the files in place.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
def fmt(paths: tuple[str, ...], mode: str | None, color: str) -> None:
    """Format .flow files in the canonical layout (comments kept; meaning checked unchanged).

    With no option the formatted text is printed to standard output.
    """
    import difflib

    from .formatter import format_source
    from .loader import LoadError, collect, load
    from .reporters import text as text_report

    changed = failed = 0
    try:
        targets = collect([p for p in paths if p != "-"])
        sources = [load(p) for p in targets]
        if "-" in paths:
            sources.insert(0, _read_stdin("<stdin>"))
    except LoadError as exc:
        _fail(str(exc))
    if not sources:
        _fail("no .flow files found in " + ", ".join(paths))
    use_color = _use_color(color, sys.stderr)
    for loaded in sources:
        source = loaded.source
        outcome = format_source(source) if not loaded.diagnostics else None
        if outcome is None or outcome.text is None:
            from .checker import FileReport

            diags = loaded.diagnostics if outcome is None else outcome.diagnostics
            sys.stderr.write(text_report([FileReport(source, None, tuple(diags))], color=use_color))
            failed += 1
            continue
        if outcome.text != source.text:
            changed += 1
        if mode is None:
            sys.stdout.write(outcome.text)
        elif mode == "check":
            if outcome.text != source.text:
                click.echo(f"{source.name}: would be reformatted")
        elif mode == "diff":
            sys.stdout.writelines(difflib.unified_diff(
                source.text.splitlines(keepends=True), outcome.text.splitlines(keepends=True),
                fromfile=f"{source.name} (original)", tofile=f"{source.name} (formatted)"))
        elif mode == "write" and outcome.text != source.text:
            try:
                with open(source.name, "w", encoding="utf-8", newline="") as handle:
                    handle.write(outcome.text)
            except OSError as exc:
                _fail(f"{source.name}: cannot be written ({exc.strerror or exc})")
            click.echo(f"{source.name}: reformatted", err=True)
    if failed:
        raise SystemExit(EXIT_PROBLEMS)
    if mode in ("check", "diff") and changed:
        raise SystemExit(EXIT_PROBLEMS)
    raise SystemExit(EXIT_OK)


@main.command("explain-code")
@click.argument("code")
def explain_code(code: str) -> None:
    """Print the catalog page of a diagnostic code (for example `linkstar explain-code stray-comma`)."""
    from .catalog import page
    from .codes import CODES
    from .suggest import did_you_mean

    if code not in CODES:
        guess = did_you_mean(code, CODES)
        _fail(f"unknown diagnostic code `{code}`" + (f"; did you mean `{guess}`?" if guess else ""))
    click.echo(page(code))


@main.command()
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
def demo(color: str) -> None:
    """Show the product on its bundled example flows."""
    from .demo import run_demo

    raise SystemExit(run_demo(color=_use_color(color, sys.stdout)))


def run() -> None:
    """Console-script entry point: never lets a Python traceback reach the user."""
    try:
        main(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        click.echo("linkstar: interrupted", err=True)
        raise SystemExit(130) from None
    except BrokenPipeError:
        raise SystemExit(EXIT_OK) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        click.echo(f"linkstar: internal error: {type(exc).__name__}: {exc} "
                   "(this is a bug in linkstar; please report it with the input that caused it)", err=True)
        raise SystemExit(EXIT_INTERNAL) from None
