"""`linkstar test`: flow tests in `*.test.toml` files, run as ops and CI run them.

The shipped tests of every example flow pass; a flow whose behaviour changes fails them with a
readable diff; JUnit XML carries the failure; bad test files get `file:line` errors and exit 2;
coverage names what no test exercised.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from linkstar_dsl import cli
from linkstar_dsl.flowtest.load import collect, load_suite
from linkstar_dsl.runtime.program import compile_paths

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SURVEY = "jp_post_delivery_survey"


def linkstar(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The console script in a subprocess, as CI runs it."""
    script = Path(sys.executable).with_name("linkstar")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "linkstar_dsl"]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    done = subprocess.run([*command, *args], cwd=cwd, capture_output=True, env=env, timeout=900, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def examples_run(tmp_path_factory):
    """`linkstar test --coverage --format junit -o FILE examples/`, once for the module."""
    report = tmp_path_factory.mktemp("junit") / "examples.xml"
    done = linkstar("test", "--coverage", "--format", "junit", "-o", str(report), str(EXAMPLES))
    return done, report


def copy_survey(tmp_path: Path, change=None) -> Path:
    """The survey flow and its tests in a folder of their own, the flow changed by `change`."""
    (tmp_path / "tests").mkdir()
    flow = tmp_path / f"{SURVEY}.flow"
    text = (EXAMPLES / f"{SURVEY}.flow").read_text(encoding="utf-8")
    if change is not None:
        old, new = change
        assert old in text
        text = text.replace(old, new)
    flow.write_text(text, encoding="utf-8")
    shutil.copy(EXAMPLES / "tests" / f"{SURVEY}.test.toml", tmp_path / "tests")
    return tmp_path


# ---------------------------------------------------------------------- the shipped tests


def test_the_example_flows_pass_their_tests(examples_run):
    done, report = examples_run
    assert done.returncode == 0, done.stdout + done.stderr
    root = ET.parse(report).getroot()
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert int(root.get("tests")) >= 40
    assert "Traceback" not in done.stderr


def test_the_text_report_lists_every_test():
    done = linkstar("test", str(EXAMPLES / "tests" / "shipping_notice.test.toml"))
    assert done.returncode == 0, done.stdout
    assert "✓ shipped at night: the notice waits for 08:00" in done.stdout
    assert "1 file, 5 tests: 5 passed" in done.stdout


def test_every_example_flow_has_tests_with_a_send_and_a_gate_holding_back():
    suites = [load_suite(path) for path in collect([str(EXAMPLES)])]
    tested = {plan.name for suite in suites for case in suite.cases for plan in case.plans}
    flows = {plan.name for path in sorted(EXAMPLES.glob("*.flow")) for plan in compile_paths([path]).plans}
    assert flows <= tested, f"flows without tests: {sorted(flows - tested)}"
    for suite in suites:
        decisions = {e.decision for case in suite.cases for e in case.expectations}
        reasons = {e.reason for case in suite.cases for e in case.expectations if e.reason}
        assert "send" in decisions, suite.path.name
        assert decisions & {"skip", "defer"} and reasons, suite.path.name


def test_example_test_files_are_valid_toml():
    for path in sorted((EXAMPLES / "tests").glob("*.test.toml")):
        with path.open("rb") as handle:
            assert "test" in tomllib.load(handle), path.name


# ---------------------------------------------------------------------- a changed flow


def test_a_later_offset_fails_with_expected_against_actual(tmp_path):
    folder = copy_survey(tmp_path, ("on delivered + 48h", "on delivered + 72h"))
    done = linkstar("test", str(folder))
    assert done.returncode == 1, done.stdout
    out = done.stdout
    assert "✗ a LINE friend gets the survey on LINE two days after delivery" in out
    assert f"{SURVEY}.test.toml:29: order o1" in out
    assert "expected  send via line at 2026-09-03 11:00 +09:00" in out
    assert "actual    send via line at 2026-09-04 11:00 +09:00" in out
    assert "gates of jp_post_delivery_survey step 1 for order o1" in out
    assert "✓ trigger" in out and "due 2026-09-04T02:00:00Z" in out
    assert "failed" in out.splitlines()[-1]


def test_a_dropped_guard_shows_which_gate_let_the_message_through(tmp_path):
    folder = copy_survey(tmp_path, ("where not refunded  #", "where order.total > 0 JPY  #"))
    done = linkstar("test", str(folder / "tests"))
    assert done.returncode == 1
    out = done.stdout
    assert "order refunded" in out
    assert "expected  skip (guard)" in out
    assert "actual    send via line at 2026-09-03 11:00 +09:00" in out
    assert "✓ where            `order.total > 0 JPY` is true" in out
    # The other tests still pass.
    assert "✓ a buyer without LINE gets the email instead" in out


def test_junit_xml_carries_the_failure(tmp_path):
    folder = copy_survey(tmp_path, ("between 10:00 and 18:00 local", "between 06:00 and 23:00 local"))
    done = linkstar("test", "--format", "junit", str(folder))
    assert done.returncode == 1
    root = ET.fromstring(done.stdout)
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert suite.get("tests") == str(len(cases)) == "6"
    failed = [c for c in cases if c.find("failure") is not None]
    evening = "delivered in the evening: the survey waits for 10:00 the next morning"
    assert [c.get("name") for c in failed] == [evening]
    failure = failed[0].find("failure")
    assert suite.get("failures") == "1" and failed[0].get("line") == "49"
    assert "expected defer (window) until 2026-09-04 10:00 +09:00" in failure.get("message")
    assert "actual    send via email at 2026-09-03 22:00 +09:00" in failure.text
    assert "✓ window           local time 2026-09-03 22:00 Asia/Tokyo; open 06:00–23:00" in failure.text


def test_flows_with_errors_make_their_tests_errors(tmp_path):
    folder = copy_survey(tmp_path, ("via line, email", "vai line, email"))
    done = linkstar("test", "--format", "junit", str(folder))
    assert done.returncode == 1
    suite = ET.fromstring(done.stdout).find("testsuite")
    assert suite.get("errors") == "6"
    assert "unknown-keyword" in suite.find("testcase/error").text


# ---------------------------------------------------------------------- expectations


def _one_test(tmp_path: Path, body: str) -> Path:
    (tmp_path / f"{SURVEY}.flow").write_text((EXAMPLES / f"{SURVEY}.flow").read_text(encoding="utf-8"),
                                             encoding="utf-8")
    path = tmp_path / f"{SURVEY}.test.toml"
    path.write_text('timezone = "Asia/Tokyo"\n[[customer]]\nid = "c1"\ncountry = "JP"\n\n'
                    '[[test]]\nname = "t"\n[[test.order]]\nid = "o1"\ncustomer = "c1"\n'
                    'placed_at = "2026-08-28T09:00"\ndelivered = "2026-09-01T11:00"\n' + body,
                    encoding="utf-8")
    return path


def test_a_message_nobody_expected_fails_unless_strict_is_off(tmp_path):
    path = _one_test(tmp_path, '[[test.customer]]\nid = "c2"\ncountry = "JP"\n'
                               '[[test.order]]\nid = "o2"\ncustomer = "c2"\nplaced_at = "2026-08-28T09:00"\n'
                               'delivered = "2026-09-01T12:00"\n'
                               '[[test.expect]]\norder = "o1"\nsend = "email"\n')
    result = invoke("test", str(path))
    assert result.exit_code == 1
    assert "order o2: a message no expectation mentions" in result.output
    assert "send via email at 2026-09-03 12:00 +09:00" in result.output
    path.write_text(path.read_text(encoding="utf-8").replace('name = "t"', 'name = "t"\nstrict = false'),
                    encoding="utf-8")
    assert invoke("test", str(path)).exit_code == 0


def test_nothing_fails_when_a_message_is_decided(tmp_path):
    path = _one_test(tmp_path, '[[test.expect]]\norder = "o1"\nnothing = true\n')
    result = invoke("test", str(path))
    assert result.exit_code == 1
    assert "expected  no message at all" in result.output


def test_k_selects_tests_by_name():
    result = invoke("test", "-k", "evening", str(EXAMPLES / "tests" / f"{SURVEY}.test.toml"))
    assert result.exit_code == 0
    assert "1 test: 1 passed" in result.output and "evening" in result.output


# ---------------------------------------------------------------------- bad test files


BASE = ['[[customer]]', 'id = "c1"', 'country = "JP"', '[[test]]', 'name = "t"', '[[test.order]]',
        'id = "o1"', 'customer = "c1"', 'placed_at = "2026-08-28T09:00"', 'delivered = "2026-09-01T11:00"',
        '[[test.expect]]', 'order = "o1"', 'send = "email"']
#: (line to replace, its new text, what the error says after the file name)
BAD = [
    (10, 'deliverd = "2026-09-01T11:00"',
     ":10: error: unknown field `deliverd` in an `order`; did you mean `delivered`?"),
    (10, 'delivered = "2026-09-31T11:00"', ':10: error: `delivered`: "2026-09-31T11:00" is not a time'),
    (10, 'delivered = "shipped + 2d"', ":10: error: `delivered`: no time named `shipped` to count from"),
    (10, 'delivered = "placed_at + 2days"', ":10: error: `delivered`: `2days` is not a duration"),
    (13, 'send = "emial"', ':13: error: `send`: "emial" is not a channel; did you mean email?'),
    (12, 'order = "o9"', ':12: error: `order`: no order "o9" in this test'),
    (13, 'skip = "gaurd"', ':13: error: `skip`: "gaurd" is not a reason; did you mean guard?'),
    (3, 'country = "Japan"', ':3: error: `country`: "Japan" is not a country'),
    (7, "id = o1", ":7:6: error: not valid TOML"),
    (11, "[test.expect]", ":11: error: write `[[test.expect]]`, with two brackets"),
]


@pytest.mark.parametrize("number, text, message", BAD, ids=[f"line{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_test_files_get_file_and_line(tmp_path, number, text, message):
    lines = list(BASE)
    lines[number - 1] = text
    (tmp_path / f"{SURVEY}.flow").write_text((EXAMPLES / f"{SURVEY}.flow").read_text(encoding="utf-8"),
                                             encoding="utf-8")
    path = tmp_path / f"{SURVEY}.test.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("test", str(path))
    assert result.exit_code == 2
    assert f"{path}{message}" in result.output, result.output
    assert "Traceback" not in result.output


def test_a_bad_test_file_through_the_real_process(tmp_path):
    lines = list(BASE)
    lines[9] = 'deliverd = "2026-09-01T11:00"'
    shutil.copy(EXAMPLES / f"{SURVEY}.flow", tmp_path)
    (tmp_path / f"{SURVEY}.test.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = linkstar("test", ".", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"{SURVEY}.test.toml:10: error: unknown field `deliverd` in an `order`; "
                           "did you mean `delivered`?\n")


def test_a_missing_flow_file_and_a_missing_path(tmp_path):
    path = tmp_path / "orphan.test.toml"
    path.write_text('[[test]]\nname = "t"\n[[test.expect]]\nnothing = true\n', encoding="utf-8")
    result = invoke("test", str(path))
    assert result.exit_code == 2
    assert f"{path}:1: error: which flows does this file test?" in result.output
    result = invoke("test", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no such file or folder" in result.output


# ---------------------------------------------------------------------- coverage


def test_coverage_lists_what_no_test_exercised(examples_run):
    done, _ = examples_run
    coverage = done.stdout  # with -o, the coverage goes to standard output
    assert "coverage of the flows under test" in coverage
    survey = coverage[coverage.index(f"\n{SURVEY}  ("):]
    survey = survey[:survey.index("\n\n")]
    assert "✓ sent" in survey and "✓ guard" in survey and "· expired" in survey
    assert "never exercised: gate expired" in survey
    assert "where `not refunded`" in survey and "✓ true  ✓ false" in survey
    assert "channels" in survey and "✓ line  ✓ email" in survey
    assert "unless `ordered`" in coverage and "· held" in coverage
    assert "branches exercised:" in coverage.splitlines()[-1]


def test_coverage_names_flows_without_tests_and_unreached_branches(tmp_path):
    folder = copy_survey(tmp_path)
    shutil.copy(EXAMPLES / "survey_one_liner.flow", folder)
    result = invoke("test", "--coverage", "-k", "LINE friend", str(folder))
    assert result.exit_code == 0
    out = result.output
    assert "on_paid_line_20  (" in out and "no tests" in out
    assert "never exercised: gate guard;" in out
    assert "where `not refunded` false" in out and "channel email" in out
