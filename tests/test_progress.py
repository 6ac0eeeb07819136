"""Progress bars show on a terminal and stay out of pipes, logs and NO_COLOR."""

from __future__ import annotations

import sys

import pexpect

from linkstar_dsl.progress import progress_bar


def test_no_bar_when_standard_error_is_not_a_terminal(capsys):
    with progress_bar("working", 10) as advance:
        for _ in range(10):
            advance()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def _import_in_a_terminal(tmp_path, env_extra):
    rows = "\n".join(f"c{i},JP,c{i}@example.com" for i in range(30_000))
    (tmp_path / "customers.csv").write_text("id,country,email\n" + rows + "\n", encoding="utf-8")
    env = {"TERM": "xterm", "COLUMNS": "100", "LINES": "30", "PATH": "/usr/bin:/bin", **env_extra}
    child = pexpect.spawn(sys.executable, ["-m", "linkstar_dsl", "import", str(tmp_path / "customers.csv"), "--db",
                                           str(tmp_path / "s.duckdb")], env=env, encoding="utf-8", timeout=120,
                          dimensions=(30, 100))
    child.expect(pexpect.EOF)
    child.close()
    return child.before, child.exitstatus


def test_import_shows_a_bar_on_a_terminal_and_none_with_no_color(tmp_path):
    shown, status = _import_in_a_terminal(tmp_path, {})
    assert status == 0 and "importing" in shown and "rows read" in shown
    plain, status = _import_in_a_terminal(tmp_path / "again" if (tmp_path / "again").mkdir() is None else tmp_path,
                                          {"NO_COLOR": "1"})
    assert status == 0 and "importing" not in plain and "30,000" in plain.replace("30000", "30,000")
