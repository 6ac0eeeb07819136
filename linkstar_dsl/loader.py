"""Reading .flow files: paths and folders in, `SourceFile`s or diagnostics out.

Paths that cannot be read at all (missing, a folder where a file is needed, a FIFO or device,
permission denied, over the size limit) raise `LoadError`, which the CLI turns into exit code 2
with a one-line message.  Bytes that are not UTF-8 are not an error of this kind: they become an
`invalid-utf8` diagnostic at the first bad byte, so one broken file never hides the others.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import attrs

from .diagnostics import Diagnostic, make
from .source import SourceFile, Span

#: Files larger than this are refused before parsing (see SPEC.md, "Limits").
MAX_FILE_BYTES = 2 * 1024 * 1024

#: The extension `collect` looks for inside folders.
FLOW_SUFFIX = ".flow"

_BOM = b"\xef\xbb\xbf"


class LoadError(Exception):
    """A path or stream that cannot be read at all; the message is one line, prefixed by the name."""


@attrs.frozen
class Loaded:
    source: SourceFile
    diagnostics: tuple[Diagnostic, ...] = ()


# ----------------------------------------------------------------------------- decoding


def decode(name: str, data: bytes) -> Loaded:
    """Bytes → source text (a leading UTF-8 BOM dropped), or the text with an `invalid-utf8` diagnostic.

    The diagnostic's span is the replacement character standing for the first bad byte, so its
    line and column are those of the byte in the file; the message gives the byte offset in the file.
    Data holding a NUL byte is decoded leniently and left to the checker, which reports it as a
    binary file rather than as text in the wrong encoding.
    """
    skipped = len(_BOM) if data.startswith(_BOM) else 0
    body = data[skipped:]
    if b"\x00" in body:  # binary data, whatever else is wrong with it: the checker says `binary-file`
        return Loaded(SourceFile(name, body.decode("utf-8", errors="replace")))
    try:
        return Loaded(SourceFile(name, body.decode("utf-8")))
    except UnicodeDecodeError as exc:
        return _undecodable(name, body, exc, skipped)


def _undecodable(name: str, body: bytes, exc: UnicodeDecodeError, skipped: int) -> Loaded:
    source = SourceFile(name, body.decode("utf-8", errors="replace"))
    at = len(body[: exc.start].decode("utf-8"))
    diagnostic = make(
        "invalid-utf8",
        Span(source, at, at + 1),
        byte=body[exc.start],
        offset=exc.start + skipped,
        label="not UTF-8",
        help=("save the file as UTF-8 (most editors: File → Save with Encoding → UTF-8)",),
    )
    return Loaded(source, (diagnostic,))


# ------------------------------------------------------------------------------ reading


def load(path: Path, display: str | None = None) -> Loaded:
    """Read and decode one file; `display` is the name diagnostics report (default: the path)."""
    name = display or str(path)
    return decode(name, read_file(path, name))


def read_file(path: Path, name: str) -> bytes:
    """The bytes of a regular file of at most `MAX_FILE_BYTES`, or `LoadError`.

    The file is opened without blocking, so a FIFO named by mistake is refused instead of waiting
    for a writer forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except ValueError:  # a NUL character in the name
        raise LoadError(f"{name!r}: not a valid path") from None
    except OSError as exc:
        raise LoadError(_describe_os_error(name, exc)) from None
    # Looked at before `fdopen`, which itself refuses a folder with an OSError of its own.
    kind = _special_kind(os.fstat(fd).st_mode)
    if kind:
        os.close(fd)
        raise LoadError(f"{name}: is {kind}, not a file")
    with os.fdopen(fd, "rb") as handle:
        return read_limited(handle, name)


def read_stream(name: str, stream: BinaryIO | None) -> Loaded:
    """Read and decode a whole binary stream (standard input), with the same size limit as files."""
    if stream is None:
        raise LoadError(f"{name}: standard input is not available")
    return decode(name, read_limited(stream, name))


def read_limited(stream: BinaryIO, name: str) -> bytes:
    """At most `MAX_FILE_BYTES` from `stream`; `LoadError` if there is more or it cannot be read."""
    try:
        data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise LoadError(_describe_os_error(name, exc)) from None
    if len(data) > MAX_FILE_BYTES:
        raise LoadError(f"{name}: is larger than the {MAX_FILE_BYTES:,}-byte limit for a .flow file")
    return data


def _special_kind(mode: int) -> str:
    """How to name a file that is not a regular file ("" for a regular file)."""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _describe_os_error(name: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{name}: no such file or folder"
    if isinstance(exc, PermissionError):
        return f"{name}: permission denied"
    if isinstance(exc, IsADirectoryError):
        return f"{name}: is a folder, not a file"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{name}: cannot be read ({reason})"


# ---------------------------------------------------------------------------- collecting


def collect(paths: Iterable[str]) -> list[Path]:
    """The files to check: files named directly, plus every `*.flow` below each folder named.

    The result is sorted and holds each path once, however many times it was named.  Folders
    whose names start with `.` (`.git`, `.venv`) are not entered unless named directly.  A
    missing path, or a folder without any `.flow` file, raises `LoadError`.
    """
    found: dict[str, Path] = {}
    for raw in paths:
        if not raw:
            raise LoadError("an empty path was given")
        path = Path(raw)
        if _is_folder(path, raw):
            inside = _flow_files(path, raw)
            if not inside:
                raise LoadError(f"{raw}: no {FLOW_SUFFIX} files in this folder")
        else:
            inside = [path]
        for file in inside:
            found.setdefault(os.path.normcase(os.path.abspath(file)), file)
    return sorted(found.values())


def _is_folder(path: Path, raw: str) -> bool:
    """Whether `path` is a folder; `LoadError` when it does not exist or cannot be looked at."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except ValueError:  # a NUL character in the name
        raise LoadError(f"{raw!r}: not a valid path") from None
    except OSError as exc:
        raise LoadError(_describe_os_error(raw, exc)) from None


def _flow_files(folder: Path, raw: str) -> list[Path]:
    """Every regular `*.flow` file below `folder`, not entering hidden folders or symlinked ones."""

    def refuse(exc: OSError) -> None:
        raise LoadError(_describe_os_error(str(exc.filename or raw), exc))

    result = []
    for root, dirs, files in os.walk(folder, onerror=refuse):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for file in files:
            candidate = Path(root, file)
            if file.endswith(FLOW_SUFFIX) and _is_regular(candidate):
                result.append(candidate)
    return result


def _is_regular(path: Path) -> bool:
    """Whether `path` is a regular file (or a symlink to one); FIFOs and broken links are skipped."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except PermissionError:
        return True  # listed but not inspectable: `load` reports it properly
    except OSError:
        return False
