"""`linkstar repl [--db FILE] [FLOWS...]`: the click command.

Only click is imported when the command line starts; the session, prompt_toolkit and DuckDB load
when the REPL runs.
"""

from __future__ import annotations

import os
import sys

import click


@click.command("repl")
@click.argument("flows", nargs=-1)
@click.option("--db", "db", default=None, metavar="FILE",
              help="The store to read (never written). Without it, a small demo store is made in memory.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour; auto: on a terminal, unless NO_COLOR is set.")
def repl_command(flows: tuple[str, ...], db: str | None, color: str) -> None:
    """Try expressions and flows against order data: types, values, matches, what would be sent when.

    On a terminal: history, completion (Tab), highlighting, multi-line flows. From a pipe it reads
    one input per line (a flow goes on while its lines are indented) and prints plain answers;
    the exit code is 1 when any input had an error.
    """
    from .history import history_path, safe_history
    from .loop import interactive, run_lines, run_terminal
    from .state import Session, SessionError

    terminal = interactive()
    try:
        session = Session.open(db) if db else Session.demo()
    except SessionError as exc:
        raise click.UsageError(str(exc)) from None
    session.color = color == "always" or (color == "auto" and terminal and not os.environ.get("NO_COLOR"))
    failed = False
    if flows:
        from .commands import load

        reply = load(session, list(flows))
        failed = reply.error
        click.echo(reply.text)
    if terminal:
        code = run_terminal(session, safe_history(history_path()))
    else:
        code = run_lines(session, sys.stdin, sys.stdout)
    raise SystemExit(1 if failed and not terminal else code)
