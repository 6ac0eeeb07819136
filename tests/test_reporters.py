"""The four output formats of `linkstar check`, checked against the text they describe.

Positions are verified against the source itself (offsets slice out the offending token; lines
and columns agree with the offsets, counted in characters, also after CJK and emoji on the same
line), SARIF against the official 2.1.0 schema, and GitHub workflow commands by parsing them back
the way the Actions runner does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linkstar_dsl import __version__
from linkstar_dsl.checker import FileReport, check_text
from linkstar_dsl.codes import CODES
from linkstar_dsl.diagnostics import Diagnostic, Fix, Severity
from linkstar_dsl.reporters import REPORTERS, as_json, escape_data, escape_property, github, sarif, text
from linkstar_dsl.source import SourceFile, Span

SARIF_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "specs" / "sarif-schema-2.1.0.json"

#: Three syntax errors, each with a fix; the first sits after CJK text on its line.
CJK = ('flow survey "配達後の調査" on delivered + 48 hours\n'
       "  purpose service\n"
       "  wehre not refunded\n"
       "  line, email\n")
#: An error after characters outside the Basic Multilingual Plane (one character, two UTF-16 units).
EMOJI = 'flow a "🎉🎉" on delivered + 2 days\n  purpose service\n'
CRLF = CJK.replace("\n", "\r\n")
WARNINGS = "on delivered + 48h via line\n"
VALID = 'flow shipping_notice\n  purpose transactional\n  on shipped\n  via email\n  send "shipped"\n'


def report(source: str, name: str = "flows/survey.flow") -> FileReport:
    return check_text(source, name)


def line_and_column(source: str, offset: int) -> tuple[int, int]:
    """1-based line and character column of a 0-based offset, computed independently of SourceFile."""
    line_start = source.rfind("\n", 0, offset) + 1
    return source.count("\n", 0, offset) + 1, offset - line_start + 1


def synthetic(name: str, message: str, *, severity: Severity = Severity.ERROR, code: str = "unexpected-token",
              span: tuple[int, int] | None = (0, 2), help: tuple[str, ...] = (), fix: str | None = None,
              text_: str = "on delivered\n") -> FileReport:
    """A report holding one hand-made diagnostic (for messages no checker would produce)."""
    source = SourceFile(name, text_)
    where = Span(source, *span) if span is not None else None
    repair = Fix(where, fix, "replace it") if fix is not None and where is not None else None
    diagnostic = Diagnostic(code=code, severity=severity, message=message, span=where, help=help, fix=repair)
    return FileReport(source, None, (diagnostic,))


# --------------------------------------------------------------------------------- json


def test_json_document_shape():
    document = json.loads(as_json([report(CJK), report(WARNINGS, "w.flow")]))
    assert document["format_version"] == "1"
    assert document["valid"] is False
    assert document["error_count"] == 3
    assert document["warning_count"] == sum(d["severity"] == "warning" for d in document["diagnostics"]) >= 1
    assert document["files"] == ["flows/survey.flow", "w.flow"]
    for entry in document["diagnostics"]:
        assert {"code", "severity", "message", "file", "range", "help"} <= entry.keys()
        assert entry["code"] in CODES
        assert entry["severity"] in ("error", "warning", "note")
        assert isinstance(entry["help"], list)
        for end in ("start", "end"):
            assert set(entry["range"][end]) == {"line", "column", "offset"}


def test_json_valid_when_only_warnings():
    document = json.loads(as_json([report(WARNINGS)]))
    assert document["valid"] is True
    assert document["error_count"] == 0


def test_json_no_diagnostics():
    document = json.loads(as_json([report(VALID)]))
    assert document == {"format_version": "1", "valid": True, "error_count": 0, "warning_count": 0,
                        "files": ["flows/survey.flow"], "diagnostics": []}


@pytest.mark.parametrize(("source", "tokens"), [
    (CJK, ["48 hours", "wehre", "line"]),
    (EMOJI, ["2 days"]),
    (CRLF, ["48 hours", "wehre", "line"]),
])
def test_json_positions_match_the_text(source, tokens):
    diagnostics = json.loads(as_json([report(source)]))["diagnostics"]
    assert [source[d["range"]["start"]["offset"]:d["range"]["end"]["offset"]] for d in diagnostics] == tokens
    for entry in diagnostics:
        for end in ("start", "end"):
            point = entry["range"][end]
            assert (point["line"], point["column"]) == line_and_column(source, point["offset"])


def test_json_columns_count_characters_not_bytes():
    first = json.loads(as_json([report(CJK)]))["diagnostics"][0]
    prefix = 'flow survey "配達後の調査" on delivered + '
    assert first["range"]["start"] == {"line": 1, "column": len(prefix) + 1, "offset": len(prefix)}
    assert first["range"]["end"] == {"line": 1, "column": len(prefix) + 9, "offset": len(prefix) + 8}
    assert len(prefix.encode()) + 1 != first["range"]["start"]["column"]  # the byte column differs
    emoji = json.loads(as_json([report(EMOJI)]))["diagnostics"][0]
    assert emoji["range"]["start"]["column"] == len('flow a "🎉🎉" on delivered + ') + 1 == 28


def test_json_crlf_columns_equal_lf_columns():
    lf = json.loads(as_json([report(CJK)]))["diagnostics"]
    crlf = json.loads(as_json([report(CRLF)]))["diagnostics"]
    for a, b in zip(lf, crlf, strict=True):
        for end in ("start", "end"):
            assert (a["range"][end]["line"], a["range"][end]["column"]) == \
                   (b["range"][end]["line"], b["range"][end]["column"])


def test_json_fixes_slice_the_text_and_repair_it():
    diagnostics = json.loads(as_json([report(CJK)]))["diagnostics"]
    fixes = [d["fix"] for d in diagnostics]
    replaced = [CJK[f["range"]["start"]["offset"]:f["range"]["end"]["offset"]] for f in fixes]
    assert [(f["replacement"], old) for f, old in zip(fixes, replaced)] == \
           [("48h", "48 hours"), ("where", "wehre"), ("via ", "")]
    repaired = CJK
    for fix in sorted(fixes, key=lambda f: f["range"]["start"]["offset"], reverse=True):
        repaired = (repaired[: fix["range"]["start"]["offset"]] + fix["replacement"]
                    + repaired[fix["range"]["end"]["offset"]:])
    assert repaired == 'flow survey "配達後の調査" on delivered + 48h\n  purpose service\n' \
                       "  where not refunded\n  via line, email\n"


def test_json_keeps_cjk_readable():
    output = as_json([report('on delivered + 48h 配達 via line\n')])
    assert "配達" in output


def test_json_file_of_a_diagnostic_without_span():
    document = json.loads(as_json([synthetic("a.flow", "no position", span=None)]))
    entry = document["diagnostics"][0]
    assert entry["file"] == "a.flow"
    assert entry["range"]["start"] == {"line": 1, "column": 1, "offset": 0}


# -------------------------------------------------------------------------------- sarif


@pytest.fixture(scope="module")
def sarif_validator():
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"the SARIF schema is not available ({SARIF_SCHEMA.name} next to the repository)")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def valid_sarif(validator, reports) -> dict:
    document = json.loads(sarif(reports))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    return document


SARIF_CASES = {
    "errors-with-fixes": lambda: [report(CJK)],
    "several-files": lambda: [report(CJK), report(WARNINGS, "w.flow"), report(EMOJI, "e.flow")],
    "no-diagnostics": lambda: [report(VALID)],
    "crlf": lambda: [report(CRLF)],
    "absolute-and-odd-names": lambda: [report(CJK, "/srv/flows/配達 survey.flow"), report(WARNINGS, "<stdin>"),
                                       report(EMOJI, "a b/c#d?.flow")],
    "span-less": lambda: [synthetic("a.flow", "no position", span=None)],
    "insertion-fix": lambda: [synthetic("a.flow", "insert", span=(3, 3), fix="x ")],
    "note": lambda: [synthetic("a.flow", "stopped", severity=Severity.NOTE, code="too-many-errors")],
}


@pytest.mark.parametrize("case", sorted(SARIF_CASES))
def test_sarif_validates_against_the_schema(sarif_validator, case):
    valid_sarif(sarif_validator, SARIF_CASES[case]())


def test_sarif_no_diagnostics(sarif_validator):
    document = valid_sarif(sarif_validator, [report(VALID)])
    run = document["runs"][0]
    assert document["version"] == "2.1.0"
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert run["tool"]["driver"]["name"] == "linkstar"
    assert run["tool"]["driver"]["version"] == __version__


def test_sarif_rules_are_the_codes(sarif_validator):
    reports = [report(CJK), report(WARNINGS, "w.flow")]
    run = valid_sarif(sarif_validator, reports)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    codes = {d.code for r in reports for d in r.diagnostics}
    assert [rule["id"] for rule in rules] == sorted(codes)
    for rule in rules:
        assert rule["shortDescription"]["text"] == CODES[rule["id"]].title
        assert rule["defaultConfiguration"]["level"] == str(CODES[rule["id"]].severity)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_results_match_the_diagnostics(sarif_validator):
    reports = [report(CJK)]
    run = valid_sarif(sarif_validator, reports)["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    diagnostics = reports[0].diagnostics
    assert len(run["results"]) == len(diagnostics)
    for result, diagnostic in zip(run["results"], diagnostics, strict=True):
        assert result["level"] == str(diagnostic.severity)
        assert result["message"]["text"].startswith(diagnostic.message)
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "flows/survey.flow"
        region = location["region"]
        span = diagnostic.span
        assert (region["startLine"], region["startColumn"], region["endLine"], region["endColumn"]) == \
               (span.start_line, span.start_column, span.end_line, span.end_column)
        assert CJK[region["charOffset"]:region["charOffset"] + region["charLength"]] == span.text
        change = result["fixes"][0]["artifactChanges"][0]
        replacement = change["replacements"][0]
        assert replacement["insertedContent"]["text"] == diagnostic.fix.replacement
        deleted = replacement["deletedRegion"]
        deleted_text = CJK[deleted["charOffset"]:deleted["charOffset"] + deleted["charLength"]]
        assert deleted_text == diagnostic.fix.span.text


def test_sarif_uris(sarif_validator):
    run = valid_sarif(sarif_validator, SARIF_CASES["absolute-and-odd-names"]())["runs"][0]
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]]
    assert "file:///srv/flows/%E9%85%8D%E9%81%94%20survey.flow" in uris
    assert "%3Cstdin%3E" in uris
    assert "a%20b/c%23d%3F.flow" in uris


# ------------------------------------------------------------------------------- github


def unescape_data(value: str) -> str:
    return value.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(value: str) -> str:
    return (value.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",")
            .replace("%25", "%"))


def parse_workflow_command(line: str) -> tuple[str, dict[str, str], str]:
    """Read `::command key=value,…::message` back, the way the GitHub Actions runner does."""
    assert line.startswith("::")
    end = line.index("::", 2)
    command, _, properties = line[2:end].partition(" ")
    pairs = (item.split("=", 1) for item in properties.split(",")) if properties else ()
    return command, {key: unescape_property(value) for key, value in pairs}, unescape_data(line[end + 2:])


def test_github_lines():
    reports = [report(CJK), report(WARNINGS, "w.flow")]
    output = github(reports)
    lines = output.splitlines()
    assert output.endswith("\n")
    first = reports[0].diagnostics[0]
    assert lines[0] == ("::error file=flows/survey.flow,line=1,col=37,endLine=1,endColumn=45,"
                        f"title=duration-spelling::{first.message}%0Ahelp: {first.help[0]}")
    commands = [parse_workflow_command(line)[0] for line in lines]
    assert commands[:3] == ["error", "error", "error"]
    assert "warning" in commands[3:]


def test_github_note_is_a_notice():
    line = github([synthetic("a.flow", "stopped", severity=Severity.NOTE, code="too-many-errors")])
    assert line.startswith("::notice file=a.flow,")


def test_github_span_less_diagnostic_keeps_the_file():
    line = github([synthetic("a.flow", "hm", span=None)]).strip()
    command, properties, message = parse_workflow_command(line)
    assert properties == {"file": "a.flow", "title": "unexpected-token"}
    assert message == "hm"


def test_github_escaping_round_trips():
    message = "100% sure: a, b\nsecond line\r\nthird %0A literal :: done"
    name = "flows/a,b:c%d.flow"
    output = github([synthetic(name, message, help=("one, two: 3%",))])
    assert output.count("\n") == 1  # one command, one line
    line = output.rstrip("\n")
    assert "\r" not in line
    command, properties, parsed = parse_workflow_command(line)
    assert command == "error"
    assert properties == {"file": name, "line": "1", "col": "1", "endLine": "1", "endColumn": "3",
                          "title": "unexpected-token"}
    assert parsed == message + "\nhelp: one, two: 3%"


@pytest.mark.parametrize(("raw", "data", "prop"), [
    ("50%", "50%25", "50%25"),
    ("a\nb\r", "a%0Ab%0D", "a%0Ab%0D"),
    ("x: y, z", "x: y, z", "x%3A y%2C z"),
    ("%0A", "%250A", "%250A"),
])
def test_github_escape_functions(raw, data, prop):
    assert escape_data(raw) == data
    assert escape_property(raw) == prop
    assert unescape_data(data) == raw
    assert unescape_property(prop) == raw


def test_github_no_diagnostics_prints_nothing():
    assert github([report(VALID)]) == ""


# --------------------------------------------------------------------------------- text


def test_text_layout_and_summary():
    output = text([report(CJK), report(VALID, "ok.flow")])
    assert output.startswith("flows/survey.flow:1:37: error[duration-spelling]: ")
    assert "flows/survey.flow:3:3: error[unknown-keyword]: `wehre` is not a keyword here" in output
    assert "  = help: did you mean `where`?" in output
    assert output.endswith("\n\n2 files checked: 3 errors, 0 warnings\n")


def test_text_caret_sits_under_the_token_after_wide_characters():
    from wcwidth import wcswidth

    lines = text([report(CJK)]).splitlines()
    source_line, caret_line = lines[2], lines[3]
    prefix = 'flow survey "配達後の調査" on delivered + '
    assert source_line == "1 | " + CJK.splitlines()[0]
    assert caret_line.index("^") == len("1 | ") + wcswidth(prefix)
    assert caret_line.count("^") == len("48 hours")


def test_text_crlf_has_no_carriage_returns():
    assert "\r" not in text([report(CRLF)])


def test_text_span_less_diagnostic_names_the_file():
    output = text([synthetic("a.flow", "something odd", span=None)])
    assert output.startswith("a.flow: error[unexpected-token]: something odd")


def test_text_colour_only_when_asked():
    assert "\x1b[" not in text([report(CJK)])
    assert "\x1b[1;31merror[duration-spelling]" in text([report(CJK)], color=True)


def test_every_reporter_is_registered():
    assert set(REPORTERS) == {"text", "json", "sarif", "github"}
    for render in REPORTERS.values():
        assert render([report(VALID)], color=False).endswith("\n") or render is github
