"""Where the REPL keeps its history, and a history file that never stops the REPL.

`LINKSTAR_HISTORY` names the file; otherwise it is `linkstar/repl_history` in the user's data
folder (`$XDG_DATA_HOME`, by default `~/.local/share`), or `~/.linkstar_history` where there is
no such folder.  A file that cannot be read or written only means no history.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "LINKSTAR_HISTORY"


def history_path() -> Path:
    named = os.environ.get(ENV_VAR)
    if named:
        return Path(named).expanduser()
    data = os.environ.get("XDG_DATA_HOME")
    base = Path(data).expanduser() if data else Path.home() / ".local" / "share"
    if base.is_dir():
        return base / "linkstar" / "repl_history"
    return Path.home() / ".linkstar_history"


def safe_history(path: Path):
    """A prompt_toolkit file history that ignores a file it cannot read or write."""
    from prompt_toolkit.history import FileHistory

    class SafeFileHistory(FileHistory):
        def load_history_strings(self):
            try:
                yield from super().load_history_strings()
            except (OSError, UnicodeDecodeError):
                return

        def store_string(self, string: str) -> None:
            try:
                Path(self.filename).parent.mkdir(parents=True, exist_ok=True)
                super().store_string(string)
            except OSError:
                pass

    return SafeFileHistory(str(path))
