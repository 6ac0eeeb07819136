"""The `linkstar` command line.

Exit codes (SPEC.md, "Exit codes"): 0 success, 1 problems found (errors, or warnings under
`--strict`; files `fmt --check` would change), 2 usage or I/O error with a one-line message on
standard error and nothing on standard output, 3 an internal error (a bug: the one-line message
asks for a report).  No input, however broken, produces a Python traceback.

Start-up time matters (pre-commit hooks run `check` on every commit), so heavy modules are
imported inside the commands that need them.
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

FORMATS = ("text", "json", "sarif", "github")
BUG_REPORT = "this is a bug in linkstar; please report it with the input that caused it"


class CheckCrashed(Exception):
    """An unexpected exception while checking one input; `__cause__` holds the original."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# --------------------------------------------------------------------------- small helpers


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters made visible, so it fits one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in " ".join(text.splitlines()))


def _fail(message: str) -> None:
    click.echo(f"linkstar: error: {one_line(message)}", err=True)
    raise SystemExit(EXIT_USAGE)


def _use_color(choice: str, stream) -> bool:
    """`always`/`never` as given; `auto`: only on a terminal, and never when NO_COLOR is set."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _silence_stdout() -> None:
    """After the reader of our output went away, point stdout at /dev/null so exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _emit(output: str, *, machine: bool) -> None:
    """Write the report to stdout.

    Machine formats are always UTF-8, whatever the locale says; text for people uses the
    terminal's encoding, with `?` for characters it cannot show, rather than crashing.
    """
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    try:
        if machine and buffer is not None:
            stream.flush()
            buffer.write(output.encode("utf-8"))
            buffer.flush()
            return
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(output.encode(encoding, "replace").decode(encoding))
        stream.flush()
    except BrokenPipeError:
        _silence_stdout()


def _read_stdin(name: str):
    from .loader import read_stream

    return read_stream(name, getattr(sys.stdin, "buffer", None))


# ------------------------------------------------------------------------------ the group


class LinkstarGroup(click.Group):
    """A click group that keeps the exit-code contract for every way a run can end.

    Usage errors become one line on stderr and exit 2 (click's default prints the usage block);
    unexpected exceptions become one line and exit 3; no traceback ever reaches the user.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Run the command line and exit; `standalone_mode` is accepted for click's API and ignored."""
        try:
            outcome = super().main(args, prog_name or "linkstar", complete_var,
                                   standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            outcome = EXIT_OK
        except click.UsageError as exc:
            outcome = _usage_error(exc)
        except click.ClickException as exc:
            click.echo(f"linkstar: error: {one_line(exc.format_message())}", err=True)
            outcome = EXIT_USAGE
        except (click.Abort, KeyboardInterrupt):
            click.echo("linkstar: interrupted", err=True)
            outcome = EXIT_INTERRUPTED
        except BrokenPipeError:
            _silence_stdout()
            outcome = EXIT_OK
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            click.echo(_internal_error_line(exc), err=True)
            outcome = EXIT_INTERNAL
        sys.exit(outcome if isinstance(outcome, int) else EXIT_OK)


def _usage_error(exc: click.UsageError) -> int:
    command = exc.ctx.command_path if exc.ctx is not None else "linkstar"
    message = one_line(exc.format_message()).rstrip(".")
    click.echo(f"linkstar: error: {message} (see `{command} --help`)", err=True)
    return EXIT_USAGE


def _internal_error_line(exc: BaseException) -> str:
    where = ""
    if isinstance(exc, CheckCrashed) and exc.__cause__ is not None:
        where = f" while checking {exc.name}"
        exc = exc.__cause__
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return one_line(f"linkstar: internal error{where}: {detail} ({BUG_REPORT})")


@click.group(cls=LinkstarGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="linkstar")
def main() -> None:
    """LinkStar flows: write buyer-outreach flows as code, prove them compliant, run them."""


# --------------------------------------------------------------------------------- check

CHECK_EPILOG = """\b
Exit codes:
  0  no errors (warnings allowed)
  1  errors found, or warnings under --strict
  2  usage or I/O error (one line on standard error)
  3  internal error (a bug in linkstar)
"""


@main.command(epilog=CHECK_EPILOG)
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Output format: text for people, json for scripts, sarif for code scanning, "
                   "github for pull-request annotations.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour the text output; auto: only on a terminal and when NO_COLOR is unset.")
@click.option("--stdin-name", default="<stdin>", show_default=True,
              help="File name to report for `-` (standard input).")
def check(paths: tuple[str, ...], fmt: str, strict: bool, color: str, stdin_name: str) -> None:
    """Check .flow files and folders (recursing into *.flow); `-` reads standard input."""
    from .reporters import REPORTERS

    reports = _check_all(paths, stdin_name)
    errors = sum(r.errors for r in reports)
    warnings = sum(r.warnings for r in reports)
    use_color = fmt == "text" and _use_color(color, sys.stdout)
    _emit(REPORTERS[fmt](reports, color=use_color), machine=fmt != "text")
    raise SystemExit(EXIT_PROBLEMS if errors or (strict and warnings) else EXIT_OK)


def _check_all(paths: tuple[str, ...], stdin_name: str) -> list:
    """A report per input: standard input first (if `-` is given), then the files, sorted."""
    from .loader import LoadError, collect, load

    reports = []
    try:
        files = collect(p for p in paths if p != "-")
        if "-" in paths:
            reports.append(_check_loaded(_read_stdin(stdin_name)))
        for path in files:
            reports.append(_check_loaded(load(path)))
    except LoadError as exc:
        _fail(str(exc))
    return reports


def _check_loaded(loaded):
    from .checker import check_source

    try:
        return check_source(loaded.source, prior=loaded.diagnostics)
    except Exception as exc:  # noqa: BLE001 - reported with the file name, exit 3
        raise CheckCrashed(loaded.source.name) from exc


# ----------------------------------------------------------------------------------- fmt


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
    stdin_loaded = None
    try:
        targets = collect([p for p in paths if p != "-"])
        sources = [load(p) for p in targets]
        if "-" in paths:
            stdin_loaded = _read_stdin("<stdin>")
            sources.insert(0, stdin_loaded)
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
        # Standard input has no file to rewrite: `--write -` prints the result instead.
        if mode is None or (mode == "write" and loaded is stdin_loaded):
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


# --------------------------------------------------------------------------- explain-code


@main.command("explain-code")
@click.argument("code", required=False)
@click.option("--list", "list_codes", is_flag=True, help="List every diagnostic code with its title.")
def explain_code(code: str | None, list_codes: bool) -> None:
    """Print the catalog page of a diagnostic code (for example `linkstar explain-code stray-comma`)."""
    from .codes import CODES
    from .suggest import did_you_mean

    if list_codes:
        for entry in CODES.values():
            click.echo(f"{entry.id:<24} {entry.severity!s:<8} {entry.title}")
        return
    if code is None:
        _fail("give a diagnostic code, for example `linkstar explain-code stray-comma`, or --list")
    if code not in CODES:
        guess = did_you_mean(code, CODES)
        hint = f"did you mean `{guess}`?" if guess else "`linkstar explain-code --list` shows them all"
        _fail(f"unknown diagnostic code `{code}`; {hint}")
    page = _catalog_page(code)
    click.echo(page, nl=not page.endswith("\n"))


def _catalog_page(code: str) -> str:
    """The code's Markdown page, or its title when the page (or the whole folder) is missing."""
    from .catalog import page
    from .codes import CODES

    try:
        return page(code)
    except OSError:
        return f"# {code}\n\n{CODES[code].title}.\n"


# ---------------------------------------------------------------------------------- demo


@main.command()
@click.option("--orders", type=click.IntRange(100, 10_000_000), default=5_000, show_default=True,
              help="Orders to generate.")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the generated data.")
@click.option("--db", "db", default=None, help="Keep the demo store at this path (default: a temporary file).")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
def demo(orders: int, seed: int, db: str | None, color: str) -> None:
    """The whole product on generated data: check, generate, simulate a week, explain a decision."""
    from .demo import run_demo

    raise SystemExit(run_demo(color=_use_color(color, sys.stdout), orders=orders, seed=seed, db=db))


def _register_commands() -> None:
    """Commands defined in their own modules (each imports only click at start-up)."""
    from .demo_data import generate_command
    from .flowtest.cli import test_command
    from .importers.cli import import_command
    from .lsp.command import lsp_command
    from .repl.cli import repl_command
    from .report.cli import report_command
    from .runtime.cli import pause_command, pauses_command, resume_command, run_command
    from .serve.cli import consent_group, erase_command, serve_command
    from .simulate_cli import explain_command, simulate_command

    main.add_command(generate_command)
    main.add_command(test_command)
    main.add_command(import_command)
    main.add_command(lsp_command)
    main.add_command(repl_command)
    main.add_command(simulate_command)
    main.add_command(explain_command)
    main.add_command(run_command)
    main.add_command(pause_command)
    main.add_command(resume_command)
    main.add_command(pauses_command)
    main.add_command(report_command)
    main.add_command(serve_command)
    main.add_command(erase_command)
    main.add_command(consent_group)


_register_commands()


def run() -> None:
    """Console-script entry point (`linkstar`); `LinkstarGroup.main` owns every exit path."""
    main(prog_name="linkstar")
