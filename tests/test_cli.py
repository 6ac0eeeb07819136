"""The `linkstar` command line: arguments, exit codes, output channels and hostile input.

Most tests drive the real console script in a subprocess, as CI and pre-commit do; the ones that
need to patch a module (an internal error, a smaller size limit) use click's `CliRunner`.  The
contract under test: exit 0/1/2/3, a one-line message on stderr and nothing on stdout for usage
and I/O errors, and never a Python traceback, whatever the input.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from linkstar_dsl import __version__, cli, loader

VALID = 'flow shipping_notice\n  purpose transactional\n  on shipped\n  via email\n  send "shipped"\n'
WARNING_ONLY = "on delivered + 48h via line\n"  # missing-purpose, among other warnings
BROKEN = "flow survey\n  purpose service\n  on delivered + 48 hours\n  via line\n"  # duration-spelling 3:18


def _command() -> list[str]:
    """The console script installed next to this Python, else the same program through `-m`."""
    script = Path(sys.executable).with_name("linkstar")
    return [str(script)] if script.exists() else [sys.executable, "-m", "linkstar_dsl"]


def linkstar(*args: str, cwd: Path | None = None, stdin: bytes | None = None, env: dict | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the console script; stdout and stderr are decoded as UTF-8."""
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full_env.update(env or {})
    done = subprocess.run([*_command(), *args], cwd=cwd, input=stdin if stdin is not None else b"",
                          capture_output=True, env=full_env, timeout=timeout)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))


def invoke(*args: str, stdin: bytes | str | None = None, env: dict | None = None):
    return CliRunner().invoke(cli.main, list(args), input=stdin, env=env, catch_exceptions=False)


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def assert_usage_error(result, fragment: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr containing `fragment`."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("linkstar: error: ")
    assert fragment in lines[0]


def assert_no_traceback(result) -> None:
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


def json_report(result) -> dict:
    document = json.loads(result.stdout)
    assert document["format_version"] == "1"
    return document


# --------------------------------------------------------------------------------- basics


def test_version():
    result = linkstar("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"linkstar, version {__version__}"


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["check", "--help"], ["explain-code", "--help"]])
def test_help(args):
    result = linkstar(*args)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: linkstar")
    assert result.stderr == ""


def test_check_help_lists_formats_and_exit_codes():
    result = invoke("check", "--help")
    assert result.exit_code == 0
    for word in ("text", "json", "sarif", "github", "--strict", "--color", "Exit codes"):
        assert word in result.stdout


def test_no_arguments_prints_help():
    result = linkstar()
    assert result.returncode == 0
    assert "Commands:" in result.stdout


def test_valid_file_exits_0(tmp_path):
    write(tmp_path, "survey.flow", VALID)
    result = linkstar("check", "survey.flow", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout == "1 file checked: 0 errors, 0 warnings\n"
    assert result.stderr == ""


def test_errors_exit_1_with_text_layout(tmp_path):
    write(tmp_path, "survey.flow", BROKEN)
    result = linkstar("check", "survey.flow", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("survey.flow:3:18: error[duration-spelling]: ")
    assert "`48h`" in lines[0]
    assert lines[2] == "3 |   on delivered + 48 hours"
    assert lines[3] == "  |                  ^^^^^^^^ write `48h`"
    assert lines[4].startswith("  = help: units:")
    assert lines[-1] == "1 file checked: 1 error, 0 warnings"
    assert "\x1b[" not in result.stdout
    assert result.stderr == ""


def test_warnings_exit_0_unless_strict(tmp_path):
    write(tmp_path, "w.flow", WARNING_ONLY)
    relaxed = linkstar("check", "w.flow", cwd=tmp_path)
    strict = linkstar("check", "--strict", "w.flow", cwd=tmp_path)
    assert relaxed.returncode == 0
    assert "warning[missing-purpose]" in relaxed.stdout
    assert relaxed.stdout.splitlines()[-1].startswith("1 file checked: 0 errors, ")
    assert strict.returncode == 1
    assert strict.stdout == relaxed.stdout


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_every_format_keeps_the_exit_code(tmp_path, fmt):
    write(tmp_path, "bad.flow", BROKEN)
    write(tmp_path, "good.flow", VALID)
    assert linkstar("check", "--format", fmt, "bad.flow", cwd=tmp_path).returncode == 1
    assert linkstar("check", "--format", fmt, "good.flow", cwd=tmp_path).returncode == 0


def test_json_output_is_one_document(tmp_path):
    write(tmp_path, "bad.flow", BROKEN)
    write(tmp_path, "w.flow", WARNING_ONLY)
    document = json_report(linkstar("check", "--format", "json", "bad.flow", "w.flow", cwd=tmp_path))
    assert document["valid"] is False
    assert document["error_count"] == 1
    assert document["warning_count"] == sum(d["severity"] == "warning" for d in document["diagnostics"])
    assert document["files"] == ["bad.flow", "w.flow"]
    first, *others = document["diagnostics"]
    assert (first["code"], first["file"]) == ("duration-spelling", "bad.flow")
    assert "missing-purpose" in [d["code"] for d in others]
    assert {d["file"] for d in others} == {"w.flow"}


def test_github_output(tmp_path):
    write(tmp_path, "bad.flow", BROKEN)
    write(tmp_path, "w.flow", WARNING_ONLY)
    result = linkstar("check", "--format", "github", "bad.flow", "w.flow", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::error file=bad.flow,line=3,col=18,endLine=3,endColumn=26,"
                               "title=duration-spelling::durations are written")
    assert lines[1].startswith("::warning file=w.flow,line=1,col=1,")
    assert "title=missing-purpose::" in result.stdout
    assert all(line.startswith("::") for line in lines)


# ----------------------------------------------------------------------------- colour


def _run_on_terminal(args: list[str], cwd: Path, env: dict) -> str:
    """Run the console script with stdout on a pseudo-terminal; returns what it printed."""
    pty = pytest.importorskip("pty")
    main_end, child_end = pty.openpty()
    try:
        process = subprocess.Popen([*_command(), *args], cwd=cwd, stdout=child_end, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, env=env)
        os.close(child_end)
        chunks = []
        while True:
            try:
                chunk = os.read(main_end, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
        process.stderr.close()
    finally:
        os.close(main_end)
    return b"".join(chunks).decode("utf-8", "replace")


def test_colour_on_a_terminal_unless_no_color(tmp_path):
    write(tmp_path, "bad.flow", BROKEN)
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = _run_on_terminal(["check", "bad.flow"], tmp_path, env)
    plain = _run_on_terminal(["check", "bad.flow"], tmp_path, {**env, "NO_COLOR": "1"})
    never = _run_on_terminal(["check", "--color", "never", "bad.flow"], tmp_path, env)
    assert "\x1b[1;31merror[duration-spelling]" in coloured
    assert "\x1b[" not in plain
    assert "error[duration-spelling]" in plain
    assert "\x1b[" not in never


def test_colour_only_when_asked_off_a_terminal(tmp_path):
    write(tmp_path, "bad.flow", BROKEN)
    assert "\x1b[" not in linkstar("check", "bad.flow", cwd=tmp_path).stdout
    forced = linkstar("check", "--color", "always", "bad.flow", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert "\x1b[1;31merror[duration-spelling]" in forced.stdout


def test_machine_formats_never_coloured(tmp_path):
    write(tmp_path, "bad.flow", BROKEN)
    for fmt in ("json", "sarif", "github"):
        result = linkstar("check", "--format", fmt, "--color", "always", "bad.flow", cwd=tmp_path)
        assert "\x1b[" not in result.stdout


# ---------------------------------------------------------------------- paths and folders


def test_folders_recurse_sorted_without_duplicates(tmp_path):
    for name in ("b/z.flow", "b/a.flow", "a.flow", "b/deeper/m.flow", "notes.txt", "b/deeper/x.flw"):
        write(tmp_path, name, WARNING_ONLY)
    result = linkstar("check", "--format", "json", "b", "a.flow", "b/a.flow", "./b/../b/z.flow", ".",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = json_report(result)["files"]
    assert files == ["a.flow", "b/a.flow", "b/deeper/m.flow", "b/z.flow"]


def test_hidden_folders_are_not_entered(tmp_path):
    write(tmp_path, "flows/a.flow", VALID)
    write(tmp_path, "flows/.git/hooks/b.flow", BROKEN)
    write(tmp_path, ".venv/c.flow", BROKEN)
    result = linkstar("check", "--format", "json", ".", cwd=tmp_path)
    assert result.returncode == 0
    assert json_report(result)["files"] == ["flows/a.flow"]


def test_file_named_directly_need_not_end_in_flow(tmp_path):
    write(tmp_path, "survey.txt", BROKEN)
    result = linkstar("check", "survey.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("survey.txt:3:18:")


def test_stdin(tmp_path):
    result = linkstar("check", "--format", "json", "-", cwd=tmp_path, stdin=BROKEN.encode())
    document = json_report(result)
    assert result.returncode == 1
    assert document["files"] == ["<stdin>"]
    assert document["diagnostics"][0]["file"] == "<stdin>"


def test_stdin_with_a_name_and_files(tmp_path):
    write(tmp_path, "a.flow", VALID)
    result = linkstar("check", "--format", "json", "--stdin-name", "flows/edited.flow", "a.flow", "-",
                      cwd=tmp_path, stdin=WARNING_ONLY.encode())
    assert result.returncode == 0
    document = json_report(result)
    assert document["files"] == ["flows/edited.flow", "a.flow"]
    assert document["diagnostics"][0]["file"] == "flows/edited.flow"


# ---------------------------------------------------------------- usage and I/O errors (2)


@pytest.mark.parametrize(("args", "fragment"), [
    (["check", "--bogus", "x.flow"], "No such option"),
    (["check"], "Missing argument"),
    (["check", "--format", "xml", "x.flow"], "'xml' is not one of"),
    (["nonsense"], "No such command"),
    (["check", "missing.flow"], "missing.flow: no such file or folder"),
    (["check", "missing-folder/"], "missing-folder/: no such file or folder"),
    (["check", ""], "an empty path was given"),
    (["explain-code"], "give a diagnostic code"),
])
def test_usage_errors_are_one_line(tmp_path, args, fragment):
    assert_usage_error(linkstar(*args, cwd=tmp_path), fragment)


def test_folder_without_flow_files(tmp_path):
    write(tmp_path, "docs/readme.md", "# not a flow\n")
    (tmp_path / "nothing").mkdir()
    assert_usage_error(linkstar("check", "docs", cwd=tmp_path), "docs: no .flow files in this folder")
    assert_usage_error(linkstar("check", "nothing", cwd=tmp_path), "nothing: no .flow files")


def test_one_missing_file_among_good_ones_prints_nothing_on_stdout(tmp_path):
    write(tmp_path, "a.flow", BROKEN)
    assert_usage_error(linkstar("check", "a.flow", "gone.flow", cwd=tmp_path), "gone.flow")


def test_file_over_the_size_limit(tmp_path):
    line = "on delivered + 48h via line purpose service\n"
    write(tmp_path, "huge.flow", line * (3 * 1024 * 1024 // len(line) + 1))
    result = linkstar("check", "huge.flow", cwd=tmp_path)
    assert_usage_error(result, "huge.flow: is larger than the 2,097,152-byte limit")


def test_size_limit_is_the_loader_constant(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", len(VALID))
    write(tmp_path, "exact.flow", VALID)
    write(tmp_path, "over.flow", VALID + "\n")
    assert invoke("check", str(tmp_path / "exact.flow")).exit_code == 0
    over = invoke("check", str(tmp_path / "over.flow"))
    assert over.exit_code == 2
    assert over.stdout == ""
    assert f"larger than the {len(VALID)}-byte limit" in over.stderr


def test_stdin_over_the_size_limit(monkeypatch):
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 10)
    result = invoke("check", "-", stdin=VALID)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "<stdin>: is larger than" in result.stderr


def test_fifo_is_refused_without_blocking(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    os.mkfifo(tmp_path / "pipe.flow")
    assert_usage_error(linkstar("check", "pipe.flow", cwd=tmp_path, timeout=20),
                       "pipe.flow: is a FIFO (named pipe), not a file")


def test_fifo_inside_a_folder_is_skipped(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    os.mkfifo(tmp_path / "pipe.flow")
    write(tmp_path, "a.flow", VALID)
    result = linkstar("check", "--format", "json", ".", cwd=tmp_path, timeout=20)
    assert json_report(result)["files"] == ["a.flow"]


def test_device_is_refused(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    assert_usage_error(linkstar("check", "/dev/zero", cwd=tmp_path, timeout=20), "/dev/zero: is a device")


def _permissions_apply() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() != 0


@pytest.mark.skipif(not _permissions_apply(), reason="file permissions do not apply to root")
def test_unreadable_file(tmp_path):
    path = write(tmp_path, "secret.flow", VALID)
    path.chmod(0)
    try:
        assert_usage_error(linkstar("check", "secret.flow", cwd=tmp_path), "secret.flow: permission denied")
    finally:
        path.chmod(0o644)


@pytest.mark.skipif(not _permissions_apply(), reason="file permissions do not apply to root")
def test_unreadable_folder(tmp_path):
    write(tmp_path, "flows/a.flow", VALID)
    locked = tmp_path / "flows" / "locked"
    write(locked, "b.flow", VALID)
    locked.chmod(0)
    try:
        assert_usage_error(linkstar("check", "flows", cwd=tmp_path), "permission denied")
    finally:
        locked.chmod(0o755)


def test_permission_denied_message_even_as_root(tmp_path, monkeypatch):
    """The same path as `test_unreadable_file`, with the refusal simulated so root runs it too."""
    write(tmp_path, "secret.flow", VALID)

    def refuse(path, flags, *args):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(loader.os, "open", refuse)
    result = invoke("check", str(tmp_path / "secret.flow"))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"linkstar: error: {tmp_path / 'secret.flow'}: permission denied\n"


def test_unlistable_subfolder_message_even_as_root(tmp_path, monkeypatch):
    write(tmp_path, "flows/a.flow", VALID)

    def walk(top, onerror=None, **kwargs):
        yield str(top), ["locked"], ["a.flow"]
        onerror(PermissionError(13, "Permission denied", f"{top}/locked"))

    monkeypatch.setattr(loader.os, "walk", walk)
    result = invoke("check", str(tmp_path / "flows"))
    assert result.exit_code == 2
    assert result.stderr == f"linkstar: error: {tmp_path / 'flows'}/locked: permission denied\n"


class _FailingStream:
    def read(self, size=-1):
        raise OSError(5, "Input/output error")


def test_unreadable_stdin_is_a_load_error():
    with pytest.raises(loader.LoadError, match=r"^<stdin>: cannot be read \(Input/output error\)$"):
        loader.read_stream("<stdin>", _FailingStream())
    with pytest.raises(loader.LoadError, match="standard input is not available"):
        loader.read_stream("<stdin>", None)


# ------------------------------------------------------------------------ hostile input


HOSTILE = {
    "garbage": bytes(random.Random(7).randrange(256) for _ in range(5000)),
    "nul": b"on delivered\x00 + 48h via line\n",
    "latin1": "on delivered + 48h via line  # caf\xe9\n".encode("latin-1"),
    "bom": b"\xef\xbb\xbf" + VALID.encode(),
    "empty": b"",
    "only-bom": b"\xef\xbb\xbf",
    "blank": b"\n\n   \n",
    "long-lines": ("on delivered + 48h via line purpose service # " + "x" * 10_000 + "\n"
                   + "flow " + "y" * 10_000 + "\n").encode(),
    "long-cjk-line": ("# " + "配達" * 5_000 + "\non delivered + 48 hours\n").encode(),
    "crlf": BROKEN.replace("\n", "\r\n").encode(),
    "lone-cr": b"on delivered\r+ 48h\rvia line\r",
    "surrogate-escape": b"on delivered + 48h via line \xed\xa0\x80\n",
    "control-chars": b"on delivered + 48h \x1b[31m via line\x07\n",
    "deep-parentheses": ("on delivered where " + "(" * 200 + "x" + ")" * 200 + "\n").encode(),
    "unclosed": b'flow a "never closed\n  on delivered\n',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_hostile_input_never_crashes(tmp_path, name, fmt):
    write(tmp_path, "input.flow", HOSTILE[name])
    result = linkstar("check", "--format", fmt, "input.flow", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode in (0, 1), result.stderr
    assert result.stderr == ""
    if fmt == "json":
        document = json_report(result)
        assert document["valid"] is (result.returncode == 0)


@pytest.mark.parametrize("prefix", ["not ", "-"])
def test_deeply_nested_expressions_are_refused_politely(tmp_path, prefix):
    body = "not " * 1000 + "refunded" if prefix == "not " else "order.item_count == " + "-" * 1000 + "1"
    write(tmp_path, "deep.flow", f"on delivered where {body} via email purpose service\n")
    result = linkstar("check", "deep.flow", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 1 and "too-deep" in result.stdout, result.stderr


def _first(result, code: str) -> dict:
    return next(d for d in json_report(result)["diagnostics"] if d["code"] == code)


def test_invalid_utf8_position(tmp_path):
    data = "flow 配達\n  on delivered + 48h\n  via li".encode() + b"\xff" + b"ne\n"
    write(tmp_path, "bad.flow", data)
    result = linkstar("check", "--format", "json", "bad.flow", cwd=tmp_path)
    assert result.returncode == 1
    diagnostic = _first(result, "invalid-utf8")
    assert diagnostic["severity"] == "error"
    assert diagnostic["range"]["start"] == {"line": 3, "column": 9, "offset": 37}
    assert diagnostic["range"]["end"] == {"line": 3, "column": 10, "offset": 38}
    assert f"byte offset {data.index(bytes([0xFF]))}" in diagnostic["message"]
    assert "0xff" in diagnostic["message"]


def test_invalid_utf8_after_a_bom_reports_the_file_byte_offset(tmp_path):
    data = b"\xef\xbb\xbfon \xc3delivered\n"
    write(tmp_path, "bad.flow", data)
    diagnostic = _first(linkstar("check", "--format", "json", "bad.flow", cwd=tmp_path), "invalid-utf8")
    assert diagnostic["range"]["start"] == {"line": 1, "column": 4, "offset": 3}
    assert "0xc3 at byte offset 6" in diagnostic["message"]


def test_invalid_utf8_in_text_output_shows_the_line(tmp_path):
    write(tmp_path, "bad.flow", b"on delivered + 48h via l\xe9ne\n")
    result = linkstar("check", "bad.flow", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("bad.flow:1:25: error[invalid-utf8]:")
    assert "1 | on delivered + 48h via l\N{REPLACEMENT CHARACTER}ne" in result.stdout


def test_bom_does_not_shift_columns(tmp_path):
    write(tmp_path, "plain.flow", BROKEN)
    write(tmp_path, "bom.flow", b"\xef\xbb\xbf" + BROKEN.encode())
    plain = _first(linkstar("check", "--format", "json", "plain.flow", cwd=tmp_path), "duration-spelling")
    bom = _first(linkstar("check", "--format", "json", "bom.flow", cwd=tmp_path), "duration-spelling")
    assert plain["range"] == bom["range"]


def test_crlf_positions_match_lf(tmp_path):
    source = BROKEN.replace("\n", "\r\n")
    write(tmp_path, "crlf.flow", source.encode())
    result = linkstar("check", "--format", "json", "crlf.flow", cwd=tmp_path)
    diagnostic = _first(result, "duration-spelling")
    start, end = diagnostic["range"]["start"], diagnostic["range"]["end"]
    assert (start["line"], start["column"], end["line"], end["column"]) == (3, 18, 3, 26)
    assert source[start["offset"]:end["offset"]] == "48 hours"
    text = linkstar("check", "crlf.flow", cwd=tmp_path).stdout
    assert "crlf.flow:3:18: error[duration-spelling]" in text
    assert "\r" not in text


def test_binary_file_diagnostic(tmp_path):
    write(tmp_path, "nul.flow", HOSTILE["nul"])
    diagnostic = _first(linkstar("check", "--format", "json", "nul.flow", cwd=tmp_path), "binary-file")
    assert diagnostic["range"]["start"]["offset"] == HOSTILE["nul"].index(b"\x00")


def test_binary_data_is_binary_even_when_not_utf8(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    write(tmp_path, "image.flow", png)
    result = linkstar("check", "--format", "json", "image.flow", cwd=tmp_path)
    assert result.returncode == 1
    assert [d["code"] for d in json_report(result)["diagnostics"]] == ["binary-file"]


def test_empty_file_is_a_warning(tmp_path):
    write(tmp_path, "empty.flow", b"")
    result = linkstar("check", "empty.flow", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("empty.flow:1:1: warning[empty-file]")
    assert linkstar("check", "--strict", "empty.flow", cwd=tmp_path).returncode == 1


def test_output_survives_an_ascii_only_locale(tmp_path):
    write(tmp_path, "cjk.flow", "on delivered + 48h 配達 via line\n")
    env = {"PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    text = linkstar("check", "cjk.flow", cwd=tmp_path, env=env)
    assert text.returncode == 1
    assert_no_traceback(text)
    assert "error[non-ascii-text]" in text.stdout
    machine = linkstar("check", "--format", "json", "cjk.flow", cwd=tmp_path, env=env)
    assert "配達" in json_report(machine)["diagnostics"][0]["message"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_output_to_a_closed_pipe_is_quiet(tmp_path, fmt):
    """`linkstar check … | head` when the reader has gone: no traceback, the exit code still says 1."""
    write(tmp_path, "bad.flow", BROKEN)
    process = subprocess.Popen([*_command(), "check", "--format", fmt, "bad.flow"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 1, stderr
    assert stderr == ""


# ------------------------------------------------------------------------- internal errors


def _explode(*args, **kwargs):
    raise RuntimeError("boom\nsecond line")


def test_internal_error_exit_3_one_line(tmp_path, monkeypatch):
    import linkstar_dsl.checker

    monkeypatch.setattr(linkstar_dsl.checker, "check_source", _explode)
    write(tmp_path, "a.flow", VALID)
    result = invoke("check", str(tmp_path / "a.flow"))
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"linkstar: internal error while checking {tmp_path / 'a.flow'}: "
                               "RuntimeError: boom second line")
    assert "please report it" in lines[0]


def test_internal_error_through_the_console_entry_point(tmp_path):
    write(tmp_path, "a.flow", VALID)
    program = ("import sys, linkstar_dsl.checker as checker, linkstar_dsl.cli as cli\n"
               "def explode(*a, **k): raise ValueError('kaput')\n"
               "checker.check_source = explode\n"
               "sys.argv = ['linkstar', 'check', 'a.flow']\n"
               "cli.run()\n")
    done = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "linkstar: internal error while checking a.flow: ValueError: kaput "
        f"({cli.BUG_REPORT})"]


def test_keyboard_interrupt_exits_130(tmp_path, monkeypatch):
    import linkstar_dsl.checker

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(linkstar_dsl.checker, "check_source", interrupt)
    write(tmp_path, "a.flow", VALID)
    result = invoke("check", str(tmp_path / "a.flow"))
    assert result.exit_code == 130
    assert "linkstar: interrupted" in result.stderr
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------- explain-code


def test_explain_code_prints_the_page(monkeypatch):
    import linkstar_dsl.catalog

    monkeypatch.setattr(linkstar_dsl.catalog, "page", lambda code: f"# {code}\n\nThe full page.\n")
    result = invoke("explain-code", "stray-comma")
    assert result.exit_code == 0
    assert result.stdout == "# stray-comma\n\nThe full page.\n"


def test_explain_code_falls_back_to_the_title(monkeypatch):
    import linkstar_dsl.catalog

    def missing_folder(name):
        raise FileNotFoundError(name)

    monkeypatch.setattr(linkstar_dsl.catalog, "data_dir", missing_folder)
    result = invoke("explain-code", "stray-comma")
    assert result.exit_code == 0
    assert result.stdout == "# stray-comma\n\nA comma with nothing after it.\n"


def test_explain_code_through_the_console_script():
    result = linkstar("explain-code", "duration-spelling")
    assert result.returncode == 0
    assert result.stdout.startswith("# duration-spelling")
    assert not result.stdout.endswith("\n\n")


@pytest.mark.parametrize(("typed", "meant"), [("stray-coma", "stray-comma"), ("STRAY-COMMA", "stray-comma"),
                                              ("invalid_utf8", "invalid-utf8")])
def test_explain_unknown_code_suggests(typed, meant):
    assert_usage_error(linkstar("explain-code", typed),
                       f"unknown diagnostic code `{typed}`; did you mean `{meant}`?")


def test_explain_unknown_code_without_a_guess():
    assert_usage_error(linkstar("explain-code", "zzzzzzzz"), "`linkstar explain-code --list` shows them all")


def test_explain_code_list():
    from linkstar_dsl.codes import CODES

    result = invoke("explain-code", "--list")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == list(CODES)


# ------------------------------------------------------------------------------- fuzzing

FLOW_WORDS = ["flow", "on", "delivered", "+", "48h", "48", "hours", "where", "not", "refunded", "and", "via",
              "line", ",", "email", "send", '"survey"', "purpose", "service", "between", "10:00", "18:00",
              "local", "cooldown", "30d", "per", "customer", "(", ")", "=", "10%", "配達", "，", "'x'", '"',
              "#", "step", "split", "50%", "policy", "\n", "\r\n", "\t", " ", "\x00", "\ufeff", "🎉"]


def _assert_clean_json_run(stdin: bytes, source: str | None = None) -> None:
    """Exit 0 or 1, nothing on stderr, a JSON report whose positions agree with `source` (if given)."""
    result = invoke("check", "--format", "json", "-", stdin=stdin)
    assert result.exit_code in (0, 1), result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["valid"] is (result.exit_code == 0)
    for entry in document["diagnostics"]:
        start, end = entry["range"]["start"], entry["range"]["end"]
        assert 0 <= start["offset"] <= end["offset"]
        if source is not None:
            for point in (start, end):
                line_start = source.rfind("\n", 0, point["offset"]) + 1
                assert point["line"] == source.count("\n", 0, point["offset"]) + 1
                assert point["column"] == point["offset"] - line_start + 1


def test_fuzz_arbitrary_bytes():
    hypothesis = pytest.importorskip("hypothesis")
    strategies = hypothesis.strategies

    @hypothesis.settings(max_examples=150, deadline=None, derandomize=True)
    @hypothesis.given(strategies.binary(max_size=400))
    def run(data):
        _assert_clean_json_run(data)

    run()


def test_fuzz_flow_like_text():
    hypothesis = pytest.importorskip("hypothesis")
    strategies = hypothesis.strategies

    @hypothesis.settings(max_examples=300, deadline=None, derandomize=True)
    @hypothesis.given(strategies.lists(strategies.sampled_from(FLOW_WORDS), max_size=60))
    def run(words):
        source = " ".join(words)
        _assert_clean_json_run(source.encode("utf-8"), None if source.startswith("\ufeff") else source)

    run()


# ------------------------------------------------------------------------------------ fmt


def test_fmt_write_on_stdin_prints_instead_of_creating_a_file(tmp_path):
    messy = b"on shipped   via email purpose transactional\n"
    result = linkstar("fmt", "--write", "-", cwd=tmp_path, stdin=messy)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("on shipped")
    assert list(tmp_path.iterdir()) == []
