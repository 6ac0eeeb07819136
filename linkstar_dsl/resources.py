"""Where the shipped data folders live.

In a wheel, `grammar/`, `stdlib/` and `channels/` sit inside the `linkstar_dsl` package; in a
source checkout they sit next to it at the top of the repository.  Every reader of those folders
asks this module, so neither layout leaks into the rest of the code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The folder `name` (grammar, stdlib, channels, catalog) of this installation."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"linkstar_dsl is installed without its {name}/ folder")


def grammar_text() -> str:
    return (data_dir("grammar") / "flow.lark").read_text(encoding="utf-8")
