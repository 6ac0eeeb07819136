"""Our diagnostics as LSP diagnostics, and their fixes as quick-fix code actions.

An LSP diagnostic belongs to one document.  A few of ours point into another file (a Jinja2
syntax error in a template, forbidden content in a partial): those are shown on the place in
the document they concern (their label there, else the first line) with the real place as
related information.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from ..diagnostics import Diagnostic, Severity
from .documents import Document
from .rules import page_uri

SEVERITIES = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.NOTE: lsp.DiagnosticSeverity.Information,
}
SOURCE = "linkstar"
#: Codes that mark text which does nothing; editors fade it.
UNNECESSARY = frozenset({"unused-suppression"})

_ORIGIN = lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0))


def to_lsp(doc: Document, diagnostic: Diagnostic) -> lsp.Diagnostic:
    related: list[lsp.DiagnosticRelatedInformation] = []
    span = diagnostic.span
    if span is None:
        where = _ORIGIN
    elif doc.owns(span):
        where = doc.range(span)
    else:
        elsewhere = doc.location(span)
        if elsewhere is not None:
            related.append(lsp.DiagnosticRelatedInformation(location=elsewhere,
                                                            message=diagnostic.label or diagnostic.message))
        here = next((label.span for label in diagnostic.labels if doc.owns(label.span)), None)
        where = doc.range(here) if here is not None else _ORIGIN
    for label in diagnostic.labels:
        location = doc.location(label.span)
        if location is not None and location.range != where:
            related.append(lsp.DiagnosticRelatedInformation(location=location, message=label.text))
    message = diagnostic.message
    if diagnostic.help:
        message += "".join(f"\nhelp: {line}" for line in diagnostic.help)
    href = page_uri(diagnostic.code)
    return lsp.Diagnostic(
        range=where,
        message=message,
        severity=SEVERITIES[diagnostic.severity],
        code=diagnostic.code,
        code_description=lsp.CodeDescription(href=href) if href else None,
        source=SOURCE,
        related_information=related or None,
        tags=[lsp.DiagnosticTag.Unnecessary] if diagnostic.code in UNNECESSARY else None,
    )


def publishable(doc: Document) -> list[lsp.Diagnostic]:
    return [to_lsp(doc, d) for d in doc.report.diagnostics]


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    def key(p: lsp.Position) -> tuple[int, int]:
        return (p.line, p.character)

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def quick_fixes(doc: Document, wanted: lsp.Range) -> list[lsp.CodeAction]:
    """A code action for every fix of a diagnostic that touches `wanted`."""
    actions = []
    for diagnostic in doc.report.diagnostics:
        fix = diagnostic.fix
        if fix is None or not doc.owns(fix.span):
            continue
        shown = to_lsp(doc, diagnostic)
        if not _overlaps(shown.range, wanted) and not _overlaps(doc.range(fix.span), wanted):
            continue
        edit = lsp.TextEdit(range=doc.range(fix.span), new_text=fix.replacement)
        actions.append(lsp.CodeAction(
            title=fix.description or f"replace with `{fix.replacement}`",
            kind=lsp.CodeActionKind.QuickFix,
            diagnostics=[shown],
            edit=lsp.WorkspaceEdit(changes={doc.uri: [edit]}),
            is_preferred=True,
        ))
    return actions
