"""Suppression comments: `# linkstar: allow <code> -- <reason>`.

A suppression silences diagnostics of that code that start on its own line (a trailing comment)
or, for a comment on a line by itself, on the next line that holds code.  The reason is
mandatory: a suppression without one still works but is reported, and so is a suppression that
silences nothing or names a code that does not exist, so stale ones do not pile up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from . import ast
from .codes import CODES
from .diagnostics import Diagnostic, make
from .suggest import did_you_mean

_PATTERN = re.compile(r"#\s*linkstar:\s*allow\s+(?P<codes>[A-Za-z0-9_,\s-]+?)\s*(?:--\s*(?P<reason>.*))?$")


@attrs.frozen
class Suppression:
    comment: ast.Comment
    codes: tuple[str, ...]
    reason: str
    line: int


def _target_line(comment: ast.Comment) -> int:
    line = comment.span.start_line
    if not comment.own_line:
        return line
    source = comment.span.source
    for candidate in range(line + 1, source.line_count + 1):
        text = source.line_text(candidate).strip()
        if text and not text.startswith("#"):
            return candidate
    return line


def find(module: ast.Module) -> list[Suppression]:
    found = []
    for comment in module.comments:
        match = _PATTERN.match(comment.text)
        if match is None:
            continue
        codes = tuple(c for c in re.split(r"[\s,]+", match.group("codes")) if c)
        found.append(Suppression(comment, codes, (match.group("reason") or "").strip(), _target_line(comment)))
    return found


def apply(module: ast.Module, diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics that remain, plus the reports about the suppressions themselves."""
    suppressions = find(module)
    used: set[tuple[int, str]] = set()
    kept = []
    for diag in diagnostics:
        hit = None
        if diag.span is not None and diag.code not in _UNSUPPRESSIBLE:
            hit = next((s for s in suppressions
                        if diag.code in s.codes and s.line == diag.span.start_line), None)
        if hit is None:
            kept.append(diag)
        else:
            used.add((id(hit), diag.code))
    for s in suppressions:
        span = s.comment.span
        if not s.reason:
            kept.append(make("suppression-without-reason", span, codes=", ".join(s.codes),
                             help=("say why, after `--`: `# linkstar: allow CODE -- the reason`",)))
        for code in s.codes:
            if code not in CODES:
                guess = did_you_mean(code, CODES)
                kept.append(make("unused-suppression", span, name=code, why="there is no such code",
                                 help=(f"did you mean `{guess}`?",) if guess else ()))
            elif (id(s), code) not in used:
                kept.append(make("unused-suppression", span, name=code,
                                 why=f"no `{code}` diagnostic starts on line {s.line}",
                                 help=("remove it, or move it to the line the diagnostic points at",)))
    return kept


#: Syntax and input errors cannot be silenced: the file would not mean anything.
_UNSUPPRESSIBLE = frozenset(code for code, entry in CODES.items() if entry.stage in ("input", "syntax"))
