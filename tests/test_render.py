"""The text rendering of diagnostics: layout, plain output, and carets under the exact span.

Carets are placed in display cells, so they must stay under their text when the line holds
wide CJK characters, full-width punctuation or tabs before the span.  `text_under_carets` reads a
rendered diagnostic back the way a reader's eye does: it takes the characters of the snippet line
that sit above the carets.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from wcwidth import wcwidth

from linkstar_dsl.checker import check_text
from linkstar_dsl.diagnostics import Fix, Label, Severity, make
from linkstar_dsl.render import TAB_WIDTH, render, summary
from linkstar_dsl.reporters import text as text_report
from linkstar_dsl.source import SourceFile, Span


def diagnostic_at(source_text: str, start: int, end: int, code: str = "unexpected-token", **args):
    source = SourceFile("t.flow", source_text)
    args = args or {"found": "something", "context": ""}
    return make(code, Span(source, start, end), label="here", **args)


def text_under_carets(rendered: str) -> str:
    """The characters of the snippet line above the carets, measured in display cells."""
    lines = rendered.splitlines()
    snippet, carets = lines[2], lines[3]
    gutter = snippet.index("|") + 2
    marks = carets[gutter:]
    first = marks.index("^")
    last = first + len(marks[first:]) - len(marks[first:].lstrip("^"))
    body = snippet[gutter:].ljust(last)  # the snippet line is printed without trailing blanks
    under, cell = [], 0
    for char in body:
        width = max(wcwidth(char), 0)
        if first <= cell < last:
            under.append(char)
        cell += width
    return "".join(under)


def caret_count(rendered: str) -> int:
    return rendered.splitlines()[3].count("^")


# ---------------------------------------------------------------------------------- layout


def test_layout_location_code_message_snippet_help() -> None:
    source = SourceFile("flows/survey.flow", "flow survey\n  on delivered + 48 hours\n")
    span = Span(source, 29, 37)
    diagnostic = make("duration-spelling", span, suggestion="48h", label="write `48h`",
                      help=("units: `m`, `h`, `d`, `w`, `y`",), fix=Fix(span, "48h"))
    assert render(diagnostic) == "\n".join([
        "flows/survey.flow:2:18: error[duration-spelling]: durations are written as a number and a "
        "one-letter unit: `48h`",
        "  |",
        "2 |   on delivered + 48 hours",
        "  |                  ^^^^^^^^ write `48h`",
        "  = help: units: `m`, `h`, `d`, `w`, `y`",
    ])


def test_layout_with_notes_warnings_and_a_wide_gutter() -> None:
    text = "\n" * 11 + "on shipped purpose service purpose review\n"
    source = SourceFile("t.flow", text)
    first, again = Span(source, 11 + 11, 11 + 26), Span(source, 11 + 27, 11 + 41)
    diagnostic = make("duplicate-clause", again, clause="purpose", where="flow", label="given again here",
                      labels=(Label(first, "first given here"),), help=("keep one `purpose`",),
                      severity=Severity.WARNING)
    assert render(diagnostic).splitlines() == [
        "t.flow:12:28: warning[duplicate-clause]: `purpose` is given more than once in this flow",
        "   |",
        "12 | on shipped purpose service purpose review",
        "   |                            ^^^^^^^^^^^^^^ given again here",
        "   = note: first given here (t.flow:12:12)",
        "   = help: keep one `purpose`",
    ]


def test_a_diagnostic_without_a_place_is_one_line() -> None:
    diagnostic = make("empty-file", None)
    assert render(diagnostic) == "warning[empty-file]: this file holds no flows or policies"


def test_plain_output_has_no_colour_codes() -> None:
    report = check_text("on shipped + 48 via email\non shipped vai email\n", "t.flow")
    plain = text_report([report])
    assert "\x1b" not in plain
    assert "\x1b[" in text_report([report], color=True)
    assert plain.endswith(summary(1, 2, 0) + "\n")
    assert plain.count("error[") == 2


def test_the_summary_counts_in_words() -> None:
    assert summary(1, 1, 0) == "1 file checked: 1 error, 0 warnings"
    assert summary(3, 0, 2) == "3 files checked: 0 errors, 2 warnings"


# ---------------------------------------------------------------------------------- carets


def test_carets_under_ascii() -> None:
    text = "on shipped vai email"
    rendered = render(diagnostic_at(text, 11, 14))
    assert text_under_carets(rendered) == "vai"
    assert rendered.splitlines()[3] == "  |            ^^^ here"


def test_carets_after_wide_cjk_characters() -> None:
    text = "on 签收后 via line"
    rendered = render(diagnostic_at(text, 7, 10))
    assert rendered.splitlines()[0].startswith("t.flow:1:8:")  # columns count characters
    assert rendered.splitlines()[3] == "  |" + " " * 11 + "^^^ here"  # carets count cells
    assert text_under_carets(rendered) == "via"


def test_carets_span_wide_characters_two_cells_each() -> None:
    text = "on 签收后 via line"
    rendered = render(diagnostic_at(text, 3, 6, "non-ascii-text", text="签收后"))
    assert caret_count(rendered) == 6
    assert text_under_carets(rendered) == "签收后"


def test_carets_under_fullwidth_punctuation() -> None:
    text = "via line，email"
    rendered = render(diagnostic_at(text, 8, 9, "fullwidth-character", char="，", ascii=","))
    assert caret_count(rendered) == 2
    assert text_under_carets(rendered) == "，"


def test_carets_after_a_leading_tab() -> None:
    text = "on shipped\n\twehre not refunded"
    rendered = render(diagnostic_at(text, 12, 17))
    lines = rendered.splitlines()
    assert lines[0].startswith("t.flow:2:2:")
    assert lines[2] == "2 |" + " " * (1 + TAB_WIDTH) + "wehre not refunded"
    assert text_under_carets(rendered) == "wehre"


def test_carets_after_a_tab_that_does_not_start_the_line() -> None:
    text = "ab\tcd\t签\tvai x"
    start = text.index("vai")
    rendered = render(diagnostic_at(text, start, start + 3))
    assert text_under_carets(rendered) == "vai"


def test_a_zero_width_span_gets_one_caret() -> None:
    text = "on shipped via"
    rendered = render(diagnostic_at(text, len(text), len(text)))
    assert caret_count(rendered) == 1
    assert rendered.splitlines()[3].index("^") == len("  | ") + len(text)


def test_a_span_at_the_end_of_the_file_after_a_newline() -> None:
    text = "on shipped via\n"
    rendered = render(diagnostic_at(text, len(text), len(text)))
    assert rendered.splitlines()[0].startswith("t.flow:2:1:")
    assert caret_count(rendered) == 1


def test_a_multi_line_span_marks_its_first_line_and_says_it_goes_on() -> None:
    text = "on shipped purpose transactional\n  split 50% send \"a\",\n        40% send \"b\"\n"
    start = text.index("split")
    end = text.index('"b"') + 3
    rendered = render(diagnostic_at(text, start, end, "split-total", total="90"))
    lines = rendered.splitlines()
    assert lines[0].startswith("t.flow:2:3:")
    assert lines[2] == '2 |   split 50% send "a",'
    assert text_under_carets(rendered) == 'split 50% send "a",'
    assert lines[3].endswith("^ here …")


def test_carets_stay_under_the_span_in_a_very_long_line() -> None:
    text = "on shipped where " + " or ".join(["refunded"] * 1500) + " vai email"
    start = text.index("vai")
    rendered = render(diagnostic_at(text, start, start + 3))
    assert text_under_carets(rendered) == "vai"
    assert len(rendered.splitlines()[2]) < 200


def test_real_diagnostics_put_their_carets_on_their_text() -> None:
    text = "on 签收后 via line\n\ton shipped + 48 hours\non shipped via line，email\n"
    for diagnostic in check_text(text, "t.flow").diagnostics:
        under = text_under_carets(render(diagnostic))
        assert under == diagnostic.span.text.split("\n")[0], render(diagnostic)


_CHARS = st.sampled_from(["a", "b", " ", "\t", "签", "收", "，", "ｖ", "é", "😀", "_"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_CHARS, min_size=1, max_size=40), st.data())
def test_carets_are_under_the_span_for_any_line(chars: list[str], data) -> None:
    text = "".join(chars)
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    if "\t" in text[start:end]:  # a tab inside the span widens with its column; checked above
        end = start + 1 if text[start] != "\t" else start
    if end == start:
        return
    rendered = render(diagnostic_at(text, start, end))
    assert text_under_carets(rendered) == text[start:end]
