"""`linkstar check` output formats: text, json, sarif and github.

Each reporter takes the per-file reports and returns the whole output as one string.  Positions
follow one convention everywhere (SPEC.md, "Positions"): lines and columns 1-based and counted in
characters (code points), offsets 0-based, ends exclusive.  Only the text reporter needs the
snippet renderer, so it is imported there and the machine formats start faster.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import __version__
from .diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    from .checker import FileReport
    from .source import Span

INFORMATION_URI = "https://github.com/linkstar/linkstar-flows"
JSON_FORMAT_VERSION = "1"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _each(reports: Sequence[FileReport]) -> Iterator[tuple[str, Diagnostic]]:
    """Every diagnostic with the name of the file it belongs to (also when it has no span)."""
    for report in reports:
        for diagnostic in report.diagnostics:
            yield diagnostic.file or report.source.name, diagnostic


def _counts(reports: Sequence[FileReport]) -> tuple[int, int]:
    return sum(r.errors for r in reports), sum(r.warnings for r in reports)


def _message_with_help(diagnostic: Diagnostic) -> str:
    return diagnostic.message + "".join(f"\nhelp: {line}" for line in diagnostic.help)


# -------------------------------------------------------------------------------- text


def text(reports: Sequence[FileReport], *, color: bool = False) -> str:
    """Diagnostics for people: each with its snippet and help, then a summary line."""
    from .render import render, summary

    blocks = []
    for file, diagnostic in _each(reports):
        block = render(diagnostic, color=color)
        blocks.append(block if diagnostic.span is not None else f"{file}: {block}")
    blocks.append(summary(len(reports), *_counts(reports)))
    return "\n\n".join(blocks) + "\n"


# -------------------------------------------------------------------------------- json


def _point(span: Span | None, which: str) -> dict:
    if span is None:
        return {"line": 1, "column": 1, "offset": 0}
    if which == "start":
        return {"line": span.start_line, "column": span.start_column, "offset": span.start}
    return {"line": span.end_line, "column": span.end_column, "offset": span.end}


def _range(span: Span | None) -> dict:
    return {"start": _point(span, "start"), "end": _point(span, "end")}


def _json_diagnostic(file: str, diagnostic: Diagnostic) -> dict:
    entry = {
        "code": diagnostic.code,
        "severity": str(diagnostic.severity),
        "message": diagnostic.message,
        "file": file,
        "range": _range(diagnostic.span),
        "help": list(diagnostic.help),
    }
    if diagnostic.label:
        entry["label"] = diagnostic.label
    if diagnostic.fix is not None:
        entry["fix"] = {
            "description": diagnostic.fix.description,
            "replacement": diagnostic.fix.replacement,
            "range": _range(diagnostic.fix.span),
        }
    return entry


def as_json(reports: Sequence[FileReport], *, color: bool = False) -> str:
    """One JSON document: validity, counts, the files checked and every diagnostic."""
    errors, warnings = _counts(reports)
    document = {
        "format_version": JSON_FORMAT_VERSION,
        "valid": errors == 0,
        "error_count": errors,
        "warning_count": warnings,
        "files": [r.source.name for r in reports],
        "diagnostics": [_json_diagnostic(file, d) for file, d in _each(reports)],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# ------------------------------------------------------------------------------- sarif

_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def _uri(path: str) -> str:
    """A file name as a SARIF artifact URI: `file://` when absolute, else a relative reference."""
    if os.path.isabs(path):
        return Path(path).as_uri()
    return quote(PurePath(path).as_posix(), safe="/")


def _region(span: Span) -> dict:
    return {
        "startLine": span.start_line,
        "startColumn": span.start_column,
        "endLine": span.end_line,
        "endColumn": span.end_column,
        "charOffset": span.start,
        "charLength": span.end - span.start,
    }


def _sarif_rule(code: str) -> dict:
    from .codes import CODES

    entry = CODES[code]
    return {
        "id": code,
        "name": "".join(part.capitalize() for part in code.split("-")),
        "shortDescription": {"text": entry.title},
        "defaultConfiguration": {"level": _SARIF_LEVEL[entry.severity]},
        "helpUri": f"{INFORMATION_URI}/blob/main/docs/rules/{code}.md",
    }


def _sarif_fix(diagnostic: Diagnostic) -> dict:
    fix = diagnostic.fix
    return {
        "description": {"text": fix.description or "apply the suggested edit"},
        "artifactChanges": [{
            "artifactLocation": {"uri": _uri(fix.span.file)},
            "replacements": [{
                "deletedRegion": _region(fix.span),
                "insertedContent": {"text": fix.replacement},
            }],
        }],
    }


def _sarif_result(file: str, diagnostic: Diagnostic, rule_index: int) -> dict:
    location: dict = {"artifactLocation": {"uri": _uri(file)}}
    if diagnostic.span is not None:
        location["region"] = _region(diagnostic.span)
    result: dict = {
        "ruleId": diagnostic.code,
        "ruleIndex": rule_index,
        "level": _SARIF_LEVEL[diagnostic.severity],
        "message": {"text": _message_with_help(diagnostic)},
        "locations": [{"physicalLocation": location}],
    }
    if diagnostic.fix is not None:
        result["fixes"] = [_sarif_fix(diagnostic)]
    return result


def sarif(reports: Sequence[FileReport], *, color: bool = False) -> str:
    """A SARIF 2.1.0 log with one run: a rule per code used, a result per diagnostic."""
    found = list(_each(reports))
    used = sorted({d.code for _, d in found})
    index = {code: i for i, code in enumerate(used)}
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "linkstar",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_sarif_rule(code) for code in used],
            }},
            "columnKind": "unicodeCodePoints",
            "results": [_sarif_result(file, d, index[d.code]) for file, d in found],
        }],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# ------------------------------------------------------------------------------ github

_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def escape_data(value: str) -> str:
    """Escape a workflow command's message as GitHub's toolkit does (`%`, CR, LF)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a workflow command's property value: the message escapes plus `:` and `,`."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _github_line(file: str, diagnostic: Diagnostic) -> str:
    props = [f"file={escape_property(file)}"]
    span = diagnostic.span
    if span is not None:
        props += [f"line={span.start_line}", f"col={span.start_column}",
                  f"endLine={span.end_line}", f"endColumn={span.end_column}"]
    props.append(f"title={escape_property(diagnostic.code)}")
    command = _GITHUB_COMMAND[diagnostic.severity]
    return f"::{command} {','.join(props)}::{escape_data(_message_with_help(diagnostic))}\n"


def github(reports: Sequence[FileReport], *, color: bool = False) -> str:
    """GitHub Actions workflow commands, one line per diagnostic (annotations on pull requests)."""
    return "".join(_github_line(file, d) for file, d in _each(reports))


REPORTERS: dict[str, Callable[..., str]] = {"text": text, "json": as_json, "sarif": sarif, "github": github}
