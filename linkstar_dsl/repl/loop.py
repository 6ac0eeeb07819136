"""The read-answer loop: prompt_toolkit on a terminal, plain lines from a pipe.

On a terminal: history, completion, highlighting, a toolbar with the clock and the chosen order,
and multi-line input (Enter goes on to a new line while the input is indented or incomplete; a
blank line or complete input submits; Esc Enter always starts a new line).  From a pipe the same
rule groups lines into inputs and the answers are printed as plain text, for scripting.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ..gates import iso
from .dispatch import handle
from .inputs import next_indent, should_submit
from .state import Session

PROMPT = "flow> "
CONTINUATION = "...   "


def banner(session: Session) -> str:
    return (f"LinkStar flows REPL: {session.store_label}; clock {iso(session.clock)}\n"
            "Type an expression (order.total > 50 USD and not refunded) or a flow "
            "(on delivered + 48h where not refunded via line, email).\n"
            "Tab completes, :help lists the commands, Ctrl-D quits.")


def run_lines(session: Session, stream: TextIO, out: TextIO) -> int:
    """Answer every input read from `stream`; 1 when any of them was an error, else 0."""
    failed = False
    pending: list[str] = []

    def answer(text: str) -> bool:
        nonlocal failed
        reply = handle(session, text)
        failed = failed or reply.error
        if reply.text:
            _write(out, reply.text + "\n")
        return reply.quit

    for raw in stream:
        pending.append(raw.rstrip("\r\n"))
        text = "\n".join(pending)
        if should_submit(text):
            pending = []
            if answer(text):
                return 1 if failed else 0
    if pending and "\n".join(pending).strip():
        answer("\n".join(pending))
    return 1 if failed else 0


def _write(out: TextIO, text: str) -> None:
    """Write in the stream's encoding, with `?` for what it cannot show, rather than failing."""
    encoding = getattr(out, "encoding", None) or "utf-8"
    out.write(text.encode(encoding, "replace").decode(encoding))
    out.flush()


def run_terminal(session: Session, history) -> int:
    from prompt_toolkit import PromptSession, print_formatted_text
    from prompt_toolkit.formatted_text import ANSI
    from prompt_toolkit.output.color_depth import ColorDepth

    from .completion import prompt_completer
    from .lexer import prompt_lexer, prompt_style

    prompt = PromptSession(
        history=history, multiline=True, key_bindings=_bindings(),
        completer=prompt_completer(session), complete_while_typing=True,
        lexer=prompt_lexer(lambda: session.schema), style=prompt_style(),
        include_default_pygments_style=False,
        color_depth=None if session.color else ColorDepth.MONOCHROME,
        prompt_continuation=lambda width, line, wrapped: CONTINUATION[:width].rjust(width),
        bottom_toolbar=lambda: _toolbar(session),
    )
    print_formatted_text(banner(session))
    while True:
        try:
            text = prompt.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        reply = handle(session, text)
        if reply.text:
            print_formatted_text(ANSI(reply.text) if session.color else reply.text)
        if reply.quit:
            return 0


def _toolbar(session: Session) -> str:
    flows = len(session.flows)
    return (f" clock {iso(session.clock)} | {session.subject_label()} | "
            f"{flows} flow{'s' if flows != 1 else ''} | {session.store_label}")


def _bindings():
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            # Enter on a highlighted completion takes it; a record (`order.`) opens its fields.
            completion = state.current_completion
            buffer.apply_completion(completion)
            if completion.text.endswith("."):
                buffer.start_completion(select_first=False)
            return
        if should_submit(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n" + next_indent(buffer.text))

    @bindings.add("escape", "enter")
    def _newline(event) -> None:
        event.current_buffer.insert_text("\n" + next_indent(event.current_buffer.text))

    return bindings


def interactive() -> bool:
    """True when both ends are a terminal (prompt_toolkit needs both)."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
