"""Expected-diagnostic fixtures, in the style of starlark-go's test files.

`tests/data/check/*.flow` are series of chunks separated by a line `---`; each chunk is checked as
a file of its own.  A line ending in `### EXPECTATION …` says that a diagnostic whose span
starts on that line must match it:

    ### "regex"                              the diagnostic's words match the regex
    ### duration-unit: "regex"               … and its code is `duration-unit`
    ### @16 duration-unit: "regex"           … and its span starts in column 16
    ### @16 duration-unit: "regex" -> "48h"  … and its fix writes `48h`
    ### @16 duration-unit -> "48h"           (a code alone matches any words)

The regex is searched in the message, the caret label and the help lines.  Columns are 1-based
and count characters, as in the text output.  One `###` may carry several expectations, and a
code must be one of the registry's.  The annotations (and the blanks before them) are removed
before checking, so an annotated line may end in an unclosed quote.  On a comment line, a `###`
followed by something that is not an annotation is part of the comment (so a header may
describe the format).  Every diagnostic a chunk produces must be expected, so a chunk without
annotations must check clean; and applying a diagnostic's fix must make it go away.

Inputs that cannot be written as text (invalid UTF-8, NUL bytes) and generated ones (very long
lines, twenty-odd errors) are tested below the fixtures, and so is the catalog: one page per code
in `docs/rules/`, whose example really produces that code.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstar_dsl import catalog
from linkstar_dsl.checker import FileReport, check_source, check_text
from linkstar_dsl.codes import CODES
from linkstar_dsl.diagnostics import Diagnostic, Severity
from linkstar_dsl.loader import decode, load
from linkstar_dsl.parser import MAX_SYNTAX_ERRORS
from linkstar_dsl.render import render
from linkstar_dsl.resources import data_dir

FIXTURES = Path(__file__).parent / "data" / "check"

#: The pieces of an annotation: a column, a code, a quoted regex or fix, an arrow, a comma.
_PIECE = re.compile(
    r"\s*(?:(?P<column>@\d+)|(?P<arrow>->)|(?P<code>[a-z][a-z0-9-]*):?"
    r'|"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<comma>,))'
)


@attrs.frozen
class Expectation:
    line: int  # in the chunk, 1-based
    pattern: str = ""
    code: str | None = None
    column: int | None = None
    fix: str | None = None

    def matches(self, diagnostic: Diagnostic) -> bool:
        span = diagnostic.span
        if span is None or span.start_line != self.line:
            return False
        if self.column is not None and span.start_column != self.column:
            return False
        if self.code is not None and diagnostic.code != self.code:
            return False
        if self.fix is not None and (diagnostic.fix is None or diagnostic.fix.replacement != self.fix):
            return False
        return re.search(self.pattern, _words(diagnostic), re.S) is not None

    def __str__(self) -> str:
        column = f"@{self.column} " if self.column is not None else ""
        code = f"{self.code}: " if self.code else ""
        fix = f' -> "{self.fix}"' if self.fix is not None else ""
        return f'line {self.line}: {column}{code}"{self.pattern}"{fix}'


@attrs.frozen
class Chunk:
    path: Path
    first_line: int  # where the chunk starts in its file, 1-based
    text: str  # annotations removed
    expectations: tuple[Expectation, ...]

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.first_line}"

    def check(self) -> FileReport:
        return check_text(self.text, self.id)


def _words(diagnostic: Diagnostic) -> str:
    return "\n".join((diagnostic.message, diagnostic.label, *diagnostic.help))


def _unescape(quoted: str) -> str:
    """A regex as written between quotes: only `\\"` is an escape (others belong to the regex)."""
    return quoted.replace('\\"', '"')


def _unescape_all(quoted: str) -> str:
    """A replacement text as written between quotes: `\\"` and `\\\\` are escapes."""
    return re.sub(r"\\(.)", r"\1", quoted)


def parse_annotation(line_no: int, annotation: str) -> list[Expectation]:
    """The expectations of one `###` annotation: `[@COLUMN] [CODE[:]] ["REGEX"] [-> "FIX"]`, repeated."""
    expectations: list[Expectation] = []
    current: dict = {}

    def close() -> None:
        nonlocal current
        if current:
            if "code" not in current and "pattern" not in current:
                raise ValueError(f"line {line_no}: an expectation needs a code or a regex: {annotation!r}")
            expectations.append(Expectation(line=line_no, **current))
            current = {}

    pos, arrow = 0, False
    while annotation[pos:].strip():
        match = _PIECE.match(annotation, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"unreadable expectation at line {line_no}: {annotation[pos:]!r}")
        pos = match.end()
        if match.group("column"):
            close()
            current["column"] = int(match.group("column")[1:])
        elif match.group("code"):
            if match.group("code") not in CODES:
                raise ValueError(f"line {line_no}: no diagnostic code `{match.group('code')}`")
            if "code" in current or "pattern" in current:
                close()
            current["code"] = match.group("code")
        elif match.group("arrow"):
            arrow = True
        elif match.group("comma"):
            close()
        elif arrow:
            current["fix"], arrow = _unescape_all(match.group("quoted")), False
        else:
            if "pattern" in current:
                close()
            current["pattern"] = _unescape(match.group("quoted"))
    close()
    return expectations


def read_chunks(path: Path) -> list[Chunk]:
    chunks: list[Chunk] = []
    lines: list[str] = []
    expectations: list[Expectation] = []
    first_line = 1

    def close(next_first_line: int) -> None:
        nonlocal lines, expectations, first_line
        text = "\n".join(lines) + ("\n" if lines else "")
        chunks.append(Chunk(path, first_line, text, tuple(expectations)))
        lines, expectations, first_line = [], [], next_first_line

    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if line == "---":
            close(number + 1)
            continue
        code, marker, annotation = line.partition("###")
        if marker:
            try:
                expectations += parse_annotation(number - first_line + 1, annotation)
                line = code.rstrip()
            except ValueError:
                if not code.lstrip().startswith("#"):
                    raise
                # A comment that only mentions `###` is documentation, not an annotation.
        lines.append(line)
    if any(line.strip() for line in lines) or expectations:
        close(0)
    return chunks


def all_chunks() -> list[Chunk]:
    return [chunk for path in sorted(FIXTURES.glob("*.flow")) for chunk in read_chunks(path)]


CHUNKS = all_chunks()


def _show(diagnostic: Diagnostic) -> str:
    return render(diagnostic) + (f"\n  fix: {diagnostic.fix.replacement!r}" if diagnostic.fix else "")


@pytest.mark.parametrize("chunk", CHUNKS, ids=[c.id for c in CHUNKS])
def test_fixture(chunk: Chunk) -> None:
    report = chunk.check()
    missing = list(chunk.expectations)
    unexpected = []
    for diagnostic in report.diagnostics:
        expectation = next((e for e in missing if e.matches(diagnostic)), None)
        if expectation is None:
            unexpected.append(diagnostic)
        else:
            missing.remove(expectation)
    problems = [f"expected but not reported: {e}" for e in missing]
    problems += [f"reported but not expected:\n{_show(d)}" for d in unexpected]
    if problems:
        got = "\n".join(_show(d) for d in report.diagnostics) or "(nothing)"
        pytest.fail("\n".join(problems) + f"\n--- everything reported for {chunk.id}:\n{got}", pytrace=False)


FIXABLE = [(c, i) for c in CHUNKS for i, d in enumerate(c.check().diagnostics) if d.fix is not None]


@pytest.mark.parametrize("chunk,index", FIXABLE, ids=[f"{c.id}#{i}" for c, i in FIXABLE])
def test_fixes_remove_what_they_fix(chunk: Chunk, index: int) -> None:
    """Applying a diagnostic's fix makes that diagnostic go away and adds no syntax error."""
    before = chunk.check().diagnostics
    diagnostic = before[index]
    fix = diagnostic.fix
    fixed = chunk.text[: fix.span.start] + fix.replacement + chunk.text[fix.span.end :]
    after = check_text(fixed, chunk.id).diagnostics
    assert not any(d.code == diagnostic.code and d.span.start == diagnostic.span.start for d in after), fixed
    assert _syntax_errors(after) <= _syntax_errors(before), fixed


def _syntax_errors(diagnostics) -> int:
    return sum(CODES[d.code].stage == "syntax" and d.severity is Severity.ERROR for d in diagnostics)


# ------------------------------------------------------------------------- the runner itself


def test_annotations_are_read_with_column_code_and_fix() -> None:
    (expectation,) = parse_annotation(3, ' @16 duration-unit: "needs a \\"unit\\"" -> "48h"')
    assert expectation == Expectation(3, 'needs a "unit"', "duration-unit", 16, "48h")
    assert [e.pattern for e in parse_annotation(1, ' "a", @3 "b"')] == ["a", "b"]
    assert parse_annotation(2, ' @3 missing-via -> "via "') == [Expectation(2, "", "missing-via", 3, "via ")]
    with pytest.raises(ValueError):
        parse_annotation(1, " duration-unit needs a unit")
    with pytest.raises(ValueError):
        parse_annotation(1, " @3")


def test_chunks_keep_their_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.flow"
    path.write_text('on shipped\n---\n\n  send "a   ### "x"\n---\n', encoding="utf-8")
    first, second = read_chunks(path)
    assert (first.first_line, first.text, first.expectations) == (1, "on shipped\n", ())
    assert second.first_line == 3 and second.text == '\n  send "a\n'
    assert second.expectations[0].line == 2


def test_every_fixture_file_has_chunks() -> None:
    files = sorted(FIXTURES.glob("*.flow"))
    assert files and all(read_chunks(path) for path in files)


# ------------------------------------------------------- inputs that are not plain text


def _check_bytes(data: bytes, name: str = "bytes.flow") -> FileReport:
    loaded = decode(name, data)
    return check_source(loaded.source, prior=loaded.diagnostics)


def test_invalid_utf8_is_reported_at_the_first_bad_byte() -> None:
    report = _check_bytes("on shipped\nvia 線".encode("utf-8") + b"\xff")
    (diagnostic,) = report.diagnostics
    assert diagnostic.code == "invalid-utf8"
    assert (diagnostic.span.start_line, diagnostic.span.start_column) == (2, 6)
    assert "0xff" in diagnostic.message


def test_latin1_text_is_invalid_utf8() -> None:
    (diagnostic,) = _check_bytes("on shipped # café".encode("latin-1")).diagnostics
    assert diagnostic.code == "invalid-utf8"
    assert (diagnostic.span.start_line, diagnostic.span.start_column) == (1, 17)


def test_nul_bytes_mean_binary_data() -> None:
    (diagnostic,) = _check_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").diagnostics
    assert diagnostic.code == "binary-file"


def test_a_byte_order_mark_is_not_an_error() -> None:
    assert _check_bytes(b"\xef\xbb\xbfon shipped purpose transactional via email\n").diagnostics == ()


def test_control_characters_are_reported_readably() -> None:
    (diagnostic,) = check_text("on shipped\x07 purpose transactional").diagnostics
    assert diagnostic.code == "unexpected-character"
    assert "\\x07" in diagnostic.message
    assert (diagnostic.span.start_line, diagnostic.span.start_column) == (1, 11)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_no_bytes_crash_the_checker(data: bytes) -> None:
    for diagnostic in _check_bytes(data).diagnostics:
        render(diagnostic)


# --------------------------------------------------------------------------- generated inputs


def test_a_long_valid_line() -> None:
    text = "on shipped purpose transactional via email where " + " and ".join(["not refunded"] * 800)
    assert len(text) > 10_000
    assert check_text(text).diagnostics == ()


def test_an_error_at_the_end_of_a_long_line() -> None:
    text = "on shipped purpose transactional where " + " or ".join(["refunded"] * 1000) + " vai email"
    (diagnostic,) = check_text(text).diagnostics
    assert diagnostic.code == "unknown-keyword"
    assert diagnostic.span.start_column == len(text) - len("vai email") + 1
    assert diagnostic.fix.replacement == "via"
    assert len(render(diagnostic).splitlines()[2]) < 200  # the snippet is a window, not 10k characters


def test_reporting_stops_after_the_limit_with_a_note() -> None:
    text = "".join(f"on shipped + {n}\n" for n in range(MAX_SYNTAX_ERRORS + 5))
    diagnostics = check_text(text).diagnostics
    assert [d.code for d in diagnostics] == ["duration-unit"] * MAX_SYNTAX_ERRORS + ["too-many-errors"]
    assert diagnostics[-1].severity is Severity.NOTE
    assert diagnostics[-1].span.start_line == MAX_SYNTAX_ERRORS + 1


def test_each_error_of_a_long_file_once() -> None:
    good = "on shipped purpose transactional via email\n"
    text = good * 300 + "on shipped + 48 hours via email\n" + good * 300 + "on shipped vai email\n"
    assert [(d.code, d.span.start_line) for d in check_text(text).diagnostics] == [
        ("duration-spelling", 301), ("unknown-keyword", 602)]


# ------------------------------------------------------------------------------- fuzzing

_PIECES = st.sampled_from([
    "on", "delivered", "shipped", "flow", "f", "+", "-", "48", "48h", "hours", "1.5h", "where", "not",
    "refunded", "and", "or", "via", "line", "email", ",", "send", '"survey"', '"', "'", "(", ")", "[",
    "]", "between", "10:00", "10", "18", "policy", "market", "JP", "purpose", "service", "step",
    "split", "50%", "holdout", "=", "==", "#", "签收", "，", "：", "“", "\t", "\n", " ", "entity",
    "enum", "event", ":", "?", "..", "cap", "per", "customer", "&&", "wehre", "vai", "¥", "\x00",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=30).map(" ".join))
def test_no_text_crashes_the_checker(text: str) -> None:
    report = check_text(text, "fuzz.flow")
    for diagnostic in report.diagnostics:
        assert diagnostic.code in CODES
        assert 0 <= diagnostic.span.start <= diagnostic.span.end <= len(text)
        render(diagnostic)
        if diagnostic.fix is not None:
            assert 0 <= diagnostic.fix.span.start <= diagnostic.fix.span.end <= len(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_no_unicode_crashes_the_checker(text: str) -> None:
    for diagnostic in check_text(text, "fuzz.flow").diagnostics:
        render(diagnostic)


# ------------------------------------------------------------------------------- the catalog

PAGES = data_dir("docs/rules")

#: Codes whose page example is not a file to check, and why.
NOT_FROM_SOURCE = {
    "fmt-changed-meaning": "reported by `linkstar fmt` when its own output would mean something else",
}

_FENCE = re.compile(r"^```(?P<lang>\S*)(?: file=(?P<file>\S+))?\n(?P<body>.*?)\n```$", re.M | re.S)


@attrs.frozen
class Page:
    code: str
    text: str

    def section(self, heading: str) -> str:
        start = self.text.index(f"\n## {heading}\n")
        end = self.text.find("\n## ", start + 1)
        return self.text[start : end if end != -1 else len(self.text)]

    @property
    def example(self) -> tuple[str, str]:
        """(fence language, text) of the example."""
        block = next(m for m in _FENCE.finditer(self.section("Example")) if not m.group("file"))
        return block.group("lang"), block.group("body") + "\n"

    @property
    def files(self) -> list[tuple[str, str]]:
        """Other files the example needs (templates, imported files), as (path, text)."""
        return [(m.group("file"), m.group("body") + "\n")
                for m in _FENCE.finditer(self.section("Example")) if m.group("file")]

    @property
    def printed(self) -> str:
        return next(_FENCE.finditer(self.section("What you see"))).group("body")


def read_page(code: str) -> Page:
    return Page(code, (PAGES / f"{code}.md").read_text(encoding="utf-8"))


def test_every_code_has_a_page_and_every_page_a_code() -> None:
    pages = {path.stem for path in PAGES.glob("*.md")}
    assert sorted(set(CODES) - pages) == [], "codes without a page"
    assert sorted(pages - set(CODES)) == [], "pages without a code"


@pytest.mark.parametrize("code", sorted(CODES))
def test_the_page_explains_the_code(code: str) -> None:
    page = read_page(code)
    assert page.text.startswith(f"# {code}: {CODES[code].title}\n")
    for heading in ("What it means", "Example", "What you see", "How to fix it"):
        assert page.section(heading).strip()
    if CODES[code].stage == "compliance":
        assert page.section("Legal source").strip()
    assert catalog.page(code) == page.text


@pytest.mark.parametrize("code", sorted(CODES))
def test_the_page_example_produces_the_code(code: str, tmp_path: Path, monkeypatch) -> None:
    page = read_page(code)
    language, example = page.example
    if language == "text":
        assert code in NOT_FROM_SOURCE, f"{code}: the example is not checked; say why in NOT_FROM_SOURCE"
        return
    if language == "bytes":
        data = codecs.escape_decode(example.rstrip("\n").encode("latin-1"))[0]
        diagnostics = _check_bytes(data, "example.flow").diagnostics
    elif page.files:
        monkeypatch.chdir(tmp_path)
        for path, text in [("example.flow", example), *page.files]:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        loaded = load(Path("example.flow"), "example.flow")
        diagnostics = check_source(loaded.source, prior=loaded.diagnostics).diagnostics
    else:
        assert language == "flow"
        diagnostics = check_text(example, "example.flow").diagnostics
    produced = [d for d in diagnostics if d.code == code]
    assert produced, f"the example of {code} produces {[d.code for d in diagnostics]}"
    assert page.printed.splitlines()[0] == render(produced[0]).splitlines()[0]
