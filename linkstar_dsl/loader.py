"""Reading .flow files from disk: paths and folders in, `SourceFile`s or diagnostics out.

Unreadable paths are usage errors (the CLI exits 2); undecodable bytes are diagnostics on the
file, placed at the first bad byte, so one broken file never hides the others.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from .diagnostics import Diagnostic, make
from .source import SourceFile, Span

#: Files larger than this are refused before parsing (see SPEC.md, "Limits").
MAX_FILE_BYTES = 2 * 1024 * 1024


class LoadError(Exception):
    """A path that cannot be read at all: missing, a special file, permission denied."""


@attrs.frozen
class Loaded:
    source: SourceFile
    diagnostics: tuple[Diagnostic, ...] = ()


def decode(name: str, data: bytes) -> Loaded:
    """Bytes → source text, or a source with an `invalid-utf8` diagnostic at the first bad byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return Loaded(SourceFile(name, data.decode("utf-8")))
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8")
        text = data.decode("utf-8", errors="replace")
        source = SourceFile(name, text)
        at = len(good)
        diag = make("invalid-utf8", Span(source, at, at + 1), byte=data[exc.start], offset=exc.start,
                    help=("save the file as UTF-8 (most editors: File → Save with Encoding → UTF-8)",))
        return Loaded(source, (diag,))


def load(path: Path, display: str | None = None) -> Loaded:
    name = display or str(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise LoadError(f"{name}: is a folder, not a file") from None
    except FileNotFoundError:
        raise LoadError(f"{name}: no such file or folder") from None
    except PermissionError:
        raise LoadError(f"{name}: permission denied") from None
    except OSError as exc:
        raise LoadError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise LoadError(f"{name}: {len(data):,} bytes is larger than the {MAX_FILE_BYTES:,}-byte limit for a .flow file")
    return decode(name, data)


def collect(paths: list[str]) -> list[Path]:
    """Files named directly, plus every `*.flow` below each folder named, sorted, no duplicates."""
    seen: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in sorted(path.rglob("*.flow")):
                if found.is_file():
                    seen.setdefault(found, None)
        elif path.exists():
            seen.setdefault(path, None)
        else:
            raise LoadError(f"{raw}: no such file or folder")
    return list(seen)
