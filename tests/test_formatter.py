"""The formatter prints the canonical layout, keeps every comment, and refuses to change meaning.

The fixture pairs in `data/fmt/` (`NAME.in.flow` → `NAME.out.flow`) show the layout on whole
files; the tests below pin down the single rules and the `format_source` contract.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from linkstar_dsl import ast, formatter
from linkstar_dsl.formatter import FormatOutcome, format_source, format_text
from linkstar_dsl.parser import parse
from linkstar_dsl.source import SourceFile

FIXTURES = Path(__file__).parent / "data" / "fmt"
PAIRS = sorted(FIXTURES.glob("*.in.flow"))


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def comment_texts(text: str) -> list[str]:
    return [c.text for c in parse(text).module.comments]


# ------------------------------------------------------------------------- fixture pairs


def test_there_are_fixture_pairs():
    assert len(PAIRS) >= 10
    for source in PAIRS:
        assert source.with_name(source.name.replace(".in.", ".out.")).exists(), source.name


@pytest.mark.parametrize("source", PAIRS, ids=lambda p: p.name.removesuffix(".in.flow"))
def test_fixture_pair(source: Path):
    expected = read(source.with_name(source.name.replace(".in.", ".out.")))
    original = read(source)
    assert format_text(original, source.name) == expected
    assert format_text(expected, source.name) == expected
    assert parse(expected).module == parse(original).module
    assert comment_texts(expected) == comment_texts(original)


@pytest.mark.parametrize("source", PAIRS, ids=lambda p: p.name.removesuffix(".in.flow"))
def test_fixture_output_has_the_canonical_shape(source: Path):
    text = read(source.with_name(source.name.replace(".in.", ".out.")))
    if not text:
        return
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "\r" not in text
    lines = text.split("\n")[:-1]
    assert all(line == line.rstrip() for line in lines)
    assert "\n\n\n" not in text
    assert lines[0] != ""


# ------------------------------------------------------------------------------ contract


def test_format_source_returns_text_and_no_diagnostics():
    outcome = format_source(SourceFile("a.flow", "on   delivered via line"))
    assert outcome == FormatOutcome("on delivered via line\n", ())


def test_syntax_errors_give_no_text_and_the_parse_diagnostics():
    text = "on delivered + 48 via line"
    outcome = format_source(SourceFile("bad.flow", text))
    assert outcome.text is None
    assert [d.code for d in outcome.diagnostics] == [d.code for d in parse(text).diagnostics]
    assert outcome.diagnostics and outcome.diagnostics[0].code == "duration-unit"


def test_format_text_raises_value_error_on_failure():
    with pytest.raises(ValueError, match="stray-comma"):
        format_text("on delivered via line,")


def test_a_printer_that_changes_meaning_is_caught(monkeypatch):
    monkeypatch.setitem(formatter._EXPR_TEXT, ast.IntLit, lambda e: str(e.value + 1))
    outcome = format_source(SourceFile("m.flow", "on x where a > 1 via line"))
    assert outcome.text is None
    (diagnostic,) = outcome.diagnostics
    assert diagnostic.code == "fmt-changed-meaning"
    assert diagnostic.span.text.startswith("on x")


def test_a_printer_that_loses_a_comment_is_caught(monkeypatch):
    monkeypatch.setattr(formatter._Printer, "line_entries",
                        lambda self, line, placed: [formatter._Entry(line.indent, line.text)])
    outcome = format_source(SourceFile("c.flow", "# keep me\non x via line"))
    assert outcome.text is None
    assert outcome.diagnostics[0].code == "fmt-changed-meaning"
    assert "comment" in outcome.diagnostics[0].message


def test_a_printer_that_breaks_the_syntax_is_caught(monkeypatch):
    monkeypatch.setitem(formatter._CLAUSE_TEXT, ast.Via, lambda c: "via")
    outcome = format_source(SourceFile("s.flow", "on x via line"))
    assert outcome.text is None
    assert "does not parse" in outcome.diagnostics[0].message


def test_nesting_too_deep_to_compare_is_refused_not_raised():
    outcome = format_source(SourceFile("deep.flow", "on x where " + "not " * 3000 + "y"))
    assert outcome.text is None
    assert outcome.diagnostics[0].code == "fmt-changed-meaning"


# ------------------------------------------------------------------------ layout rules


def test_empty_and_blank_files_stay_empty():
    assert format_text("") == ""
    assert format_text(" \n\n\t\n") == ""


def test_items_are_separated_by_exactly_one_blank_line():
    text = 'import "a"\nimport "b"\n\n\n\non x via line\npolicy house\n  keep consent 3y\n'
    expected = 'import "a"\n\nimport "b"\n\non x via line\n\npolicy house\n  keep consent 3y\n'
    assert format_text(text) == expected


def one_liner_of_width(width: int) -> str:
    head = "on delivered where name == "
    tail = " via line"
    return head + '"' + "x" * (width - len(head) - len(tail) - 2) + '"' + tail


def test_a_one_liner_of_exactly_100_columns_stays_on_one_line():
    text = one_liner_of_width(100)
    assert len(text) == 100
    assert format_text(text) == text + "\n"


def test_a_one_liner_of_101_columns_takes_the_long_form():
    text = one_liner_of_width(101)
    assert format_text(text).split("\n")[:3] == ["on delivered", "  " + text[13:-9], "  via line"]


def test_wide_characters_count_two_columns():
    text = 'on delivered where name == "' + "日" * 34 + '" via line'
    assert len(text) < 100 < formatter.display_width(text)
    assert format_text(text).count("\n") == 3


def test_a_one_liner_written_over_two_lines_takes_the_long_form():
    assert format_text("on x where a\n via line") == "on x\n  where a\n  via line\n"


def test_a_named_flow_keeps_clause_order():
    text = "flow f via email purpose service on x where a market JP"
    assert format_text(text) == "flow f\n  via email\n  purpose service\n  on x\n  where a\n  market JP\n"


def test_a_condition_written_over_two_lines_is_split_at_top_level_operators():
    text = "flow f\n  on x\n  where a and (b or c)\n   and d\n"
    assert format_text(text) == "flow f\n  on x\n  where a\n    and (b or c)\n    and d\n"


def test_a_condition_written_on_one_line_that_fits_stays_on_one_line():
    text = "flow f\n  on x\n  where\n    a and b\n"
    assert format_text(text) == "flow f\n  on x\n  where a and b\n"


def test_a_condition_that_is_not_and_or_cannot_be_split():
    text = "flow f\n  on x\n  where not (a\n    and b)\n"
    assert format_text(text) == "flow f\n  on x\n  where not (a and b)\n"


def test_step_clauses_join_the_step_line_when_they_fit():
    text = "flow f\n  on x\n  step + 1h\n    via email\n    send \"a\"\n"
    assert format_text(text) == 'flow f\n  on x\n  step + 1h via email send "a"\n'


def test_step_clauses_go_below_the_step_when_a_comment_sits_between_them():
    text = 'flow f\n  on x\n  step + 1h\n    # by mail\n    via email send "a"\n'
    assert format_text(text) == 'flow f\n  on x\n  step + 1h\n    # by mail\n    via email\n    send "a"\n'


def test_step_clauses_go_below_the_step_when_too_wide():
    send = 'send "' + "t" * 80 + '"'
    text = f"flow f\n  on x\n  step + 1h via email {send}\n"
    assert format_text(text) == f"flow f\n  on x\n  step + 1h\n    via email\n    {send}\n"


# --------------------------------------------------------------------------- tokens


@pytest.mark.parametrize(
    "written, canonical",
    [
        ("on x +48h", "on x + 48h"),
        ("on x -  2d at 9:05", "on x - 2d at 09:05"),
        ("on x where a>=5000\tJPY", "on x where a >= 5000 JPY"),
        ("on x where a==-  1", "on x where a == -1"),
        ("on x where f( a,b ,c)", "on x where f(a, b, c)"),
        ("on x where [ a,b ]==[]", "on x where [a, b] == []"),
        ("on x where 007 > 0.50", "on x where 7 > 0.50"),
        ("on x holdout 010%", "on x holdout 10%"),
        ("on x send\"a\"(n=2,m=\"b\")", 'on x send "a" (n = 2, m = "b")'),
        ("on x where a is   missing and b  is present", "on x where a is missing and b is present"),
        ("on x where a not  in b", "on x where a not in b"),
    ],
)
def test_tokens_are_spelled_one_way(written, canonical):
    assert format_text(written) == canonical + "\n"


@pytest.mark.parametrize(
    "written, canonical",
    [
        ("a or (b and c)", "a or b and c"),
        ("(a or b) and c", "(a or b) and c"),
        ("(a and b) and c", "(a and b) and c"),
        ("not (a == b)", "not a == b"),
        ("(not a) == b", "(not a) == b"),
        ("(a < b) < c", "(a < b) < c"),
        ("a - (b + c)", "a - (b + c)"),
        ("(a - b) + c", "a - b + c"),
        ("a * (b / c)", "a * (b / c)"),
        ("-(a * b)", "-(a * b)"),
        ("(-a) * b", "-a * b"),
        ("((a))", "a"),
    ],
)
def test_parentheses_only_where_precedence_needs_them(written, canonical):
    assert format_text(f"on x where {written}") == f"on x where {canonical}\n"


@pytest.mark.parametrize("value", ['say "hi"', "a\\b", "tab\there", "line\nbreak", "bell\x07", "日本語",
                                   "\U000f0000 private use", "\u2028"])
def test_strings_are_re_escaped_from_their_value(value):
    literal = formatter.string_literal(value)
    formatted = format_text(f"on x send {literal}")
    assert parse(formatted).module.items[0].clauses[1].template.value == value
    assert "\n" not in formatted.rstrip("\n")


#: Nodes printed by the node that holds them, condition clauses, and items with their own layout.
PRINTED_BY_PARENT = {
    ast.Node, ast.Where, ast.Exit, ast.Name, ast.Module, ast.Flow, ast.Policy, ast.Entity,
    ast.EnumDecl, ast.Import,
    ast.Offset, ast.AtTime, ast.Param, ast.Arm, ast.Scope, ast.Requirement, ast.TypeRef,
}


def test_the_formatter_knows_every_node_of_the_ast():
    nodes = {obj for obj in vars(ast).values() if isinstance(obj, type) and issubclass(obj, ast.Node)}
    known = set(formatter._EXPR_TEXT) | set(formatter._CLAUSE_TEXT) | PRINTED_BY_PARENT
    assert nodes - known == set(), "add these nodes to the formatter"


def test_keywords_and_names_keep_their_spelling():
    assert format_text("on Delivered_2 via LINE") == "on Delivered_2 via LINE\n"


# ------------------------------------------------------------------------- comments


def test_trailing_comments_are_separated_by_two_spaces():
    assert format_text("on x via line      # note") == "on x via line  # note\n"


def test_comment_text_is_kept_exactly():
    text = "#no space\n#   indented text 日本語 \"quoted\" # hash\non x via line\n"
    assert comment_texts(format_text(text)) == ["#no space", '#   indented text 日本語 "quoted" # hash']


def test_own_line_comments_take_the_indentation_of_the_line_below():
    text = "flow f\n# about on\n        on x\n     # about via\n  via line\n"
    assert format_text(text) == "flow f\n  # about on\n  on x\n  # about via\n  via line\n"


def test_a_comment_inside_a_joined_line_moves_above_it_in_order():
    text = "flow f\n  on x\n  via line,  # one\n    # two\n    email  # three\n"
    assert format_text(text) == "flow f\n  on x\n  # one\n  # two\n  via line, email  # three\n"


def test_a_comment_after_a_closing_parenthesis_stays_trailing():
    text = "flow f\n  on x\n  where (a or b\n  )  # why\n  via line\n"
    assert format_text(text) == "flow f\n  on x\n  where a or b  # why\n  via line\n"


def test_blank_lines_are_kept_once_but_not_at_the_start_of_an_item():
    text = "flow f\n\n\n  on x\n\n\n\n  # c\n\n  via line\n  send \"a\"\n"
    assert format_text(text) == 'flow f\n  on x\n\n  # c\n\n  via line\n  send "a"\n'


def test_indented_comments_right_after_a_multi_line_item_stay_with_it():
    text = "flow f\n  on x\n  # end of f\n\n# before g\non y via line\n# end of file\n"
    assert format_text(text) == "flow f\n  on x\n  # end of f\n\n# before g\non y via line\n# end of file\n"


def test_comment_only_files_keep_their_comments():
    assert format_text("\n\n# a\n\n\n   # b\n") == "# a\n\n# b\n"


# ---------------------------------------------------------------------------- cli


def test_fmt_command_check_mode(tmp_path):
    from click.testing import CliRunner

    from linkstar_dsl.cli import main

    messy = tmp_path / "messy.flow"
    messy.write_text("on   x via line\n", encoding="utf-8")
    tidy = tmp_path / "tidy.flow"
    tidy.write_text("on x via line\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["fmt", "--check", str(tidy)]).exit_code == 0
    result = CliRunner().invoke(main, ["fmt", "--check", str(messy)])
    assert result.exit_code == 1 and "would be reformatted" in result.output


def test_clauses_a_step_owns_from_afar_stay_where_they_were_written():
    text = 'flow f\n  on x\n  step + 1h send "a"\n  exit when done\n  via email\n'
    assert format_text(text) == 'flow f\n  on x\n  step + 1h send "a"\n  exit when done\n  via email\n'
    step = parse(text).module.flows[0].steps[0]
    assert [type(c).__name__ for c in step.clauses] == ["Send", "Via"]


# ------------------------------------------------------------- comments anywhere

EVERY_FORM = '''flow f "t"
  purpose service
  on delivered + 48h at 10:00 local unless refunded or returned
  where not refunded and (a or b) and order.total >= 5000 JPY
  via line, email
  send "s" (coupon = "X", n = 2)
  step + 1h via email split 50% send "a", 50% send "b"
  exit when ordered or unsubscribed
on paid where a via line
policy market US "u"
  marketing via sms requires consent(written) and opt_in "cite"
  pause flow when rate > 0.5% over 7d
enum e "doc": a, b, c
entity order
  total: list[money]? "paid"
'''


def gaps_between_tokens(text: str) -> list[int]:
    return [i for i in range(1, len(text)) if text[i] == " " and text[i - 1] != " "]


@pytest.mark.parametrize("comment", ["  # trailing\n", "\n# own line\n", "\n\n    # after a blank\n\n"])
def test_a_comment_between_any_two_tokens_is_kept_in_order_and_stable(comment):
    for at in gaps_between_tokens(EVERY_FORM):
        text = EVERY_FORM[:at] + comment + EVERY_FORM[at:]
        if not parse(text).ok:  # inside a quoted text the comment would end the line too early
            continue
        formatted = format_text(text)
        assert comment_texts(formatted) == comment_texts(text)
        assert format_text(formatted) == formatted, text
