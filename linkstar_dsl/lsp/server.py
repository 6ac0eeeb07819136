"""The language server: LSP requests in (pygls), answers from the modules beside this one.

Diagnostics are published when a document is opened, changed or saved, and cleared when it is
closed.  Every handler is guarded: whatever a document holds, a failure is logged and answered
with an empty result, never with a crashed server.
"""

from __future__ import annotations

import functools
import logging

from lsprotocol import types as lsp
from pygls.server import LanguageServer

from .. import __version__
from . import completion, convert, definition, formatting, hover
from .documents import Document

log = logging.getLogger("linkstar.lsp")


class FlowServer(LanguageServer):
    """pygls' server, plus the checked snapshot of each open document."""

    def __init__(self) -> None:
        super().__init__("linkstar", __version__)
        self.documents: dict[str, Document] = {}

    def document(self, uri: str, fresh: bool = False) -> Document:
        """The checked snapshot of the document's current text (`fresh`: check it again anyway,
        for files next to it, such as templates, may have changed)."""
        current = self.workspace.get_text_document(uri)
        encoding = str(getattr(self.workspace.position_encoding, "value", self.workspace.position_encoding))
        known = self.documents.get(uri)
        if not fresh and known is not None and known.text == current.source and known.encoding == encoding:
            return known
        doc = Document(uri, current.source, current.version, encoding)
        self.documents[uri] = doc
        return doc


def guarded(empty):
    """Answer `empty()` and log the traceback when the handler fails."""

    def wrap(handler):
        @functools.wraps(handler)
        def run(ls, params):
            try:
                return handler(ls, params)
            except Exception:  # an editor session must survive any document
                log.exception("%s failed", handler.__name__)
                return empty()

        return run

    return wrap


def _publish(ls: FlowServer, uri: str, fresh: bool = False) -> None:
    try:
        doc = ls.document(uri, fresh)
        diagnostics = convert.publishable(doc)
        version = doc.version
    except Exception:  # as above: log it, publish nothing
        log.exception("checking %s failed", uri)
        diagnostics, version = [], None
    ls.publish_diagnostics(uri, diagnostics, version=version)


def build() -> FlowServer:
    server = FlowServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: FlowServer, params: lsp.DidOpenTextDocumentParams) -> None:
        _publish(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: FlowServer, params: lsp.DidChangeTextDocumentParams) -> None:
        _publish(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.SaveOptions(include_text=False))
    def did_save(ls: FlowServer, params: lsp.DidSaveTextDocumentParams) -> None:
        _publish(ls, params.text_document.uri, fresh=True)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: FlowServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.documents.pop(params.text_document.uri, None)
        ls.publish_diagnostics(params.text_document.uri, [])

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @guarded(lambda: None)
    def on_hover(ls: FlowServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.document(params.text_document.uri)
        return hover.hover(doc, doc.offset(params.position))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", '"']))
    @guarded(lambda: lsp.CompletionList(is_incomplete=False, items=[]))
    def on_completion(ls: FlowServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.document(params.text_document.uri)
        return lsp.CompletionList(is_incomplete=False, items=completion.complete(doc, doc.offset(params.position)))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    @guarded(list)
    def on_definition(ls: FlowServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
        doc = ls.document(params.text_document.uri)
        return definition.definition(doc, doc.offset(params.position))

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    @guarded(list)
    def on_formatting(ls: FlowServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
        return formatting.edits(ls.document(params.text_document.uri))

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    @guarded(list)
    def on_code_action(ls: FlowServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return convert.quick_fixes(ls.document(params.text_document.uri), params.range)

    return server


def serve() -> None:
    build().start_io()
