"""`linkstar check` output formats: text, json, sarif and github.

Each reporter takes the per-file reports and returns the whole output as one string.  Positions
follow one convention everywhere (SPEC.md, "Positions"): lines and columns 1-based and counted in
characters, offsets 0-based, ends exclusive.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from . import __version__
from .checker import FileReport
from .codes import CODES
from .diagnostics import Diagnostic, Severity
from .render import render, summary

INFORMATION_URI = "https://github.com/linkstar/linkstar-flows"


def _all(reports: Sequence[FileReport]) -> list[Diagnostic]:
    return [d for r in reports for d in r.diagnostics]


def _counts(reports: Sequence[FileReport]) -> tuple[int, int]:
    return sum(r.errors for r in reports), sum(r.warnings for r in reports)


def text(reports: Sequence[FileReport], *, color: bool = False) -> str:
    blocks = [render(d, color=color) for d in _all(reports)]
    errors, warnings = _counts(reports)
    blocks.append(summary(len(reports), errors, warnings))
    return "\n\n".join(blocks) + "\n"


def _position(diag: Diagnostic, which: str) -> dict:
    span = diag.span
    if span is None:
        return {"line": 1, "column": 1, "offset": 0}
    if which == "start":
        return {"line": span.start_line, "column": span.start_column, "offset": span.start}
    return {"line": span.end_line, "column": span.end_column, "offset": span.end}


def _fix_json(diag: Diagnostic) -> dict | None:
    if diag.fix is None:
        return None
    s = diag.fix.span
    return {
        "description": diag.fix.description,
        "replacement": diag.fix.replacement,
        "range": {"start": {"line": s.start_line, "column": s.start_column, "offset": s.start},
                  "end": {"line": s.end_line, "column": s.end_column, "offset": s.end}},
    }


def as_json(reports: Sequence[FileReport], *, color: bool = False) -> str:
    errors, warnings = _counts(reports)
    diagnostics = []
    for diag in _all(reports):
        entry = {
            "code": diag.code,
            "severity": str(diag.severity),
            "message": diag.message,
            "file": diag.file,
            "range": {"start": _position(diag, "start"), "end": _position(diag, "end")},
            "help": list(diag.help),
        }
        if diag.label:
            entry["label"] = diag.label
        fix = _fix_json(diag)
        if fix is not None:
            entry["fix"] = fix
        diagnostics.append(entry)
    doc = {
        "format_version": "1",
        "valid": errors == 0,
        "error_count": errors,
        "warning_count": warnings,
        "files": [r.source.name for r in reports],
        "diagnostics": diagnostics,
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def sarif(reports: Sequence[FileReport], *, color: bool = False) -> str:
    diagnostics = _all(reports)
    used = sorted({d.code for d in diagnostics})
    rules = [
        {
            "id": code,
            "name": "".join(part.capitalize() for part in code.split("-")),
            "shortDescription": {"text": CODES[code].title},
            "defaultConfiguration": {"level": _SARIF_LEVEL[CODES[code].severity]},
            "helpUri": f"{INFORMATION_URI}/blob/main/linkstar_dsl/diagnostic_pages/{code}.md",
        }
        for code in used
    ]
    index = {code: i for i, code in enumerate(used)}
    results = []
    for diag in diagnostics:
        message = diag.message + "".join(f"\nhelp: {h}" for h in diag.help)
        result: dict = {
            "ruleId": diag.code,
            "ruleIndex": index[diag.code],
            "level": _SARIF_LEVEL[diag.severity],
            "message": {"text": message},
        }
        if diag.span is not None:
            s = diag.span
            result["locations"] = [{
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(s.file)},
                    "region": {"startLine": s.start_line, "startColumn": s.start_column,
                               "endLine": s.end_line, "endColumn": s.end_column,
                               "charOffset": s.start, "charLength": s.end - s.start},
                }
            }]
        if diag.fix is not None:
            f = diag.fix.span
            result["fixes"] = [{
                "description": {"text": diag.fix.description or "apply the suggested edit"},
                "artifactChanges": [{
                    "artifactLocation": {"uri": _uri(f.file)},
                    "replacements": [{
                        "deletedRegion": {"startLine": f.start_line, "startColumn": f.start_column,
                                          "endLine": f.end_line, "endColumn": f.end_column},
                        "insertedContent": {"text": diag.fix.replacement},
                    }],
                }],
            }]
        results.append(result)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "linkstar", "version": __version__,
                                "informationUri": INFORMATION_URI, "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _uri(path: str) -> str:
    from urllib.parse import quote

    return quote(path.replace("\\", "/"))


def _gh_escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


_GH_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def github(reports: Sequence[FileReport], *, color: bool = False) -> str:
    lines = []
    for diag in _all(reports):
        props = []
        if diag.span is not None:
            s = diag.span
            props += [f"file={_gh_escape(s.file, prop=True)}", f"line={s.start_line}",
                      f"col={s.start_column}", f"endLine={s.end_line}", f"endColumn={s.end_column}"]
        props.append(f"title={_gh_escape(f'{diag.code}', prop=True)}")
        message = diag.message + "".join(f"\nhelp: {h}" for h in diag.help)
        lines.append(f"::{_GH_COMMAND[diag.severity]} {','.join(props)}::{_gh_escape(message)}")
    return "".join(line + "\n" for line in lines)


REPORTERS: dict[str, Callable[..., str]] = {"text": text, "json": as_json, "sarif": sarif, "github": github}
