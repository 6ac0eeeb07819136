"""One open document, checked: its source, the checker's report, and the names it can see.

A document is checked under its file-system path, so templates next to it and its imports
resolve exactly as they do for `linkstar check FILE`.  Spans found while answering requests can
lie in the document, in an imported file or in the standard library; `location` turns any of
them into an LSP location.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from lsprotocol import types as lsp
from pygls import uris

from .. import ast
from ..checker import Env, FileReport, check_source
from ..policies import PolicySet, standard_policies
from ..resources import data_dir
from ..schema import Schema, standard_schema
from ..source import SourceFile, Span
from ..templates import TemplateStore, roots_for, stdlib_root
from .positions import UTF16, LineIndex


def path_of(uri: str) -> str | None:
    """The file-system path of a `file:` URI, or None for other schemes (unsaved buffers)."""
    if uris.uri_scheme(uri) != "file":
        return None
    return uris.to_fs_path(uri)


def uri_of(path: str | Path) -> str:
    return uris.from_fs_path(str(path))


class Document:
    """A snapshot of one open document and everything derived from it, computed on demand."""

    def __init__(self, uri: str, text: str, version: int | None = None, encoding: str = UTF16) -> None:
        self.uri = uri
        self.version = version
        self.encoding = encoding
        self.source = SourceFile(path_of(uri) or uri, text)
        self.lines = LineIndex(text, encoding)

    @property
    def text(self) -> str:
        return self.source.text

    @cached_property
    def report(self) -> FileReport:
        return check_source(self.source)

    @property
    def module(self) -> ast.Module | None:
        """The AST, when the document parses (a file with syntax errors has none)."""
        return self.report.module

    @cached_property
    def env(self) -> Env:
        """The schema and policies in force: the standard ones, the imports' and the document's."""
        module = self.module
        if module is None:
            return Env(standard_schema(), standard_policies())
        from ..imports import resolve

        return Env.for_module(module, imported=resolve(module).modules)

    @property
    def schema(self) -> Schema:
        return self.env.schema

    @property
    def policies(self) -> PolicySet:
        return self.env.policies

    @cached_property
    def templates(self) -> TemplateStore:
        """The templates this document's `send` clauses can name (its folder's, then the standard ones)."""
        return TemplateStore(roots_for(self.source.name) + [stdlib_root()])

    def offset(self, position: lsp.Position) -> int:
        return self.lines.offset(position)

    def range(self, span: Span) -> lsp.Range:
        return self.lines.range(span.start, span.end)

    def owns(self, span: Span) -> bool:
        return span.source is self.source or span.file == self.source.name

    def location(self, span: Span) -> lsp.Location | None:
        """Where a span is, in this document or another file; None when it has no file."""
        if self.owns(span):
            return lsp.Location(uri=self.uri, range=self.range(span))
        path = file_of(span.file)
        if path is None:
            return None
        lines = LineIndex(span.source.text, self.encoding)
        return lsp.Location(uri=uri_of(path), range=lines.range(span.start, span.end))


def file_of(name: str) -> Path | None:
    """The file a source name stands for: standard-library names are relative to the shipped folder."""
    if name.startswith("stdlib/"):
        try:
            path = data_dir("stdlib") / name[len("stdlib/"):]
        except FileNotFoundError:
            return None
    else:
        path = Path(name)
    path = path if path.is_absolute() else path.resolve()
    return path if path.is_file() else None


def whole_file(path: Path) -> lsp.Location:
    """A location at the start of a file."""
    start = lsp.Position(line=0, character=0)
    return lsp.Location(uri=uri_of(path), range=lsp.Range(start=start, end=start))
