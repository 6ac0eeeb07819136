"""One submitted input → one `Reply`: a command, an expression, or flows and declarations.

This is the last line of defence of the REPL: whatever goes wrong while answering, the user gets
one line and the prompt back, never a traceback.
"""

from __future__ import annotations

from . import answers, commands
from .inputs import kind_of
from .show import Reply
from .state import Session

BUG = "this is a bug in linkstar; please report it with the input that caused it"


def handle(session: Session, text: str) -> Reply:
    kind = kind_of(text)
    try:
        if kind == "empty":
            return Reply()
        if kind == "command":
            return commands.run(session, text.strip())
        if kind == "expression":
            return answers.expression(session, text.rstrip())
        return answers.items(session, text.rstrip())
    except KeyboardInterrupt:
        return Reply("interrupted", error=True)
    except Exception as exc:  # noqa: BLE001 - the REPL keeps going
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Reply(f"internal error: {' '.join(detail.splitlines())} ({BUG})", error=True)
