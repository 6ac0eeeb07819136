"""Diagnostics: the one value every stage reports problems with.

A `Diagnostic` is data (code, severity, message, span, labels, help lines, optional fix), never
an exception.  Its words come from the registry in `linkstar_dsl.codes`, keyed by code, so a
message can be offered in another language without touching the stage that raised it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from .source import Span


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Label:
    """A secondary span with a short text, drawn under the snippet."""

    span: Span
    text: str


@attrs.frozen
class Fix:
    """A machine-applicable edit: replace the text of `span` with `replacement`."""

    span: Span
    replacement: str
    description: str = ""


@attrs.frozen
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span | None
    labels: tuple[Label, ...] = ()
    help: tuple[str, ...] = ()
    fix: Fix | None = None
    #: The caret text under the primary span (empty: carets only).
    label: str = ""

    @property
    def file(self) -> str:
        return self.span.file if self.span is not None else ""

    def sort_key(self) -> tuple:
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.file, self.span.start, self.span.end, self.code)


def make(
    code: str,
    span: Span | None,
    *,
    label: str = "",
    labels: Iterable[Label] = (),
    help: Iterable[str] = (),
    fix: Fix | None = None,
    severity: Severity | None = None,
    **args: object,
) -> Diagnostic:
    """Build a diagnostic whose message is the registry template for `code` filled with `args`."""
    from .codes import CODES

    entry = CODES[code]
    return Diagnostic(
        code=code,
        severity=severity or entry.severity,
        message=entry.message.format(**args),
        span=span,
        labels=tuple(labels),
        help=tuple(help),
        fix=fix,
        label=label,
    )


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)
