"""Rich output on a terminal, plain text elsewhere: shared by `linkstar report` and `simulate`.

`auto` means rich tables and colours only when the stream is a terminal and `NO_COLOR` is unset
(https://no-color.org), the same rule as `linkstar check`; plain text is for pipes, files and
CI logs, aligned in columns without any escape sequence.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

COLOR_CHOICES = ("auto", "always", "never")


def wants_rich(choice: str, stream) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return is_terminal(stream)


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def console(stream):
    """A rich console writing to `stream` as a terminal (the caller decided it should)."""
    from rich.console import Console

    return Console(file=stream, force_terminal=True, highlight=False, emoji=False)


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] = frozenset()) -> list[str]:
    """Lines of an aligned table; columns in `right` are right-aligned; two spaces between columns."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    return [line(headers)] + [line(r) for r in rows]
