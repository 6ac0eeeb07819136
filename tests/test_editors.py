"""Editor and CI integration files: the TextMate grammar, the VS Code manifest, the pre-commit hooks."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = ROOT / "editors" / "textmate" / "linkstar.tmLanguage.json"
VSCODE = ROOT / "editors" / "vscode"

#: Oniguruma syntax Python's `re` does not read; patterns using it are not compiled here.
ONIGURUMA_ONLY = re.compile(r"\\[GhHzK]|\(\?~|\\p\{|\(\?<[a-z]+\)|\[\[:")


def grammar_keywords() -> set[str]:
    text = (ROOT / "grammar" / "flow.lark").read_text(encoding="utf-8")
    return set(re.findall(r'"([a-z]+)"', text))


def rules(node):
    """Every rule object of the grammar, nested ones included."""
    if isinstance(node, dict):
        if any(key in node for key in ("match", "begin", "include")):
            yield node
        for value in node.values():
            yield from rules(value)
    elif isinstance(node, list):
        for item in node:
            yield from rules(item)


@pytest.fixture(scope="module")
def grammar() -> dict:
    return json.loads(GRAMMAR.read_text(encoding="utf-8"))


def test_the_grammar_is_named_and_its_includes_resolve(grammar):
    assert grammar["scopeName"] == "source.linkstar"
    for rule in rules(grammar):
        if "include" in rule:
            assert rule["include"].startswith("#")
            assert rule["include"][1:] in grammar["repository"], rule["include"]


def test_every_regex_compiles(grammar):
    compiled = 0
    for rule in rules(grammar):
        for key in ("match", "begin", "end"):
            pattern = rule.get(key)
            if pattern is None or ONIGURUMA_ONLY.search(pattern):
                continue
            re.compile(pattern)
            compiled += 1
    assert compiled >= 20


def test_every_keyword_of_the_language_is_highlighted(grammar):
    keyword_rules = [re.compile(rule["match"]) for rule in rules(grammar)
                     if "match" in rule and re.match(r"(keyword|storage|constant\.language)", rule.get("name", ""))]
    missing = {word for word in grammar_keywords() if not any(r.fullmatch(word) for r in keyword_rules)}
    assert not missing, f"keywords without a highlighting rule: {sorted(missing)}"
    # and none of those rules mistakes a name for a keyword
    for name in ("flows", "onboarding", "order", "sender", "delivered"):
        assert not any(r.fullmatch(name) for r in keyword_rules), name


def scopes(grammar: dict, line: str) -> dict[str, str]:
    """A small TextMate scanner for one line: each matched text and its outermost scope, the
    first-listed rule winning among matches that start at the same place (as TextMate does)."""
    def flat(patterns):
        for rule in patterns:
            if "include" in rule:
                yield from flat([grammar["repository"][rule["include"][1:]]])
            elif "patterns" in rule and "match" not in rule and "begin" not in rule:
                yield from flat(rule["patterns"])
            else:
                yield rule

    top = list(flat(grammar["patterns"]))
    found: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        best = None
        for rule in top:
            match = re.compile(rule.get("match") or rule["begin"]).search(line, pos)
            if match and match.end() > match.start() and (best is None or match.start() < best[0].start()):
                best = (match, rule)
        if best is None:
            break
        match, rule = best
        end = match.end()
        if "begin" in rule:
            end = _region_end(rule, line, end)
        found[line[match.start():end]] = rule.get("name") or rule["captures"]["1"]["name"]
        for number, capture in rule.get("captures", {}).items():
            if match.group(int(number)):
                found.setdefault(match.group(int(number)), capture["name"])
        pos = end
    return found


def _region_end(rule: dict, line: str, pos: int) -> int:
    """Where a begin/end region closes: its end pattern, unless an inner pattern (an escape)
    starts earlier and takes the text first."""
    closing = re.compile(rule["end"])
    inner = [re.compile(r["match"]) for r in rule.get("patterns", [])]
    while pos <= len(line):
        end = closing.search(line, pos)
        if end is None:
            return len(line)
        first = min((m for m in (r.search(line, pos) for r in inner) if m and m.start() < end.start()),
                    key=lambda m: m.start(), default=None)
        if first is None:
            return end.end()
        pos = first.end()
    return len(line)


def test_literals_comments_and_suppressions_get_their_scopes(grammar):
    found = scopes(grammar, 'on delivered + 48h at 09:00 local where order.total >= 5000 JPY '
                            'send "お礼 \\"ありがとう\\"" holdout 10%  # 日本向け')
    assert found["48h"] == "constant.numeric.duration.linkstar"
    assert found["09:00"] == "constant.numeric.time.linkstar"
    assert found["5000 JPY"] == "constant.numeric.money.linkstar"
    assert found["10%"] == "constant.numeric.percent.linkstar"
    assert found['"お礼 \\"ありがとう\\""'] == "string.quoted.double.linkstar"
    assert found["# 日本向け"] == "comment.line.number-sign.linkstar"
    assert found["order.total"] == "variable.other.object.linkstar"
    assert found["where"] == "keyword.control.clause.linkstar"
    found = scopes(grammar, "  # linkstar: allow never-missing, unused-suppression -- imported orders")
    suppression = "# linkstar: allow never-missing, unused-suppression -- imported orders"
    assert found[suppression] == "comment.line.number-sign.suppression.linkstar"
    assert found["never-missing, unused-suppression"] == "constant.other.diagnostic-code.linkstar"
    found = scopes(grammar, "policy house\n")
    assert found["house"] == "entity.name.type.policy.linkstar"
    found = scopes(grammar, "  pause flow when unsubscribe_rate > 0.5% over 7d")
    assert "when" not in {k for k, v in found.items() if v.startswith("entity.name")}
    assert found["7d"] == "constant.numeric.duration.linkstar"


def test_the_vscode_extension_uses_the_grammar_and_starts_the_server():
    manifest = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    (language,) = manifest["contributes"]["languages"]
    assert language["extensions"] == [".flow"]
    configuration = json.loads((VSCODE / language["configuration"]).read_text(encoding="utf-8"))
    assert configuration["comments"]["lineComment"] == "#"
    assert ["(", ")"] in configuration["brackets"] and ["[", "]"] in configuration["brackets"]
    (grammar_entry,) = manifest["contributes"]["grammars"]
    assert (VSCODE / grammar_entry["path"]).resolve() == GRAMMAR.resolve()
    assert grammar_entry["scopeName"] == "source.linkstar" and grammar_entry["language"] == language["id"]
    command = manifest["contributes"]["configuration"]["properties"]["linkstar.server.command"]["default"]
    assert command == ["linkstar", "lsp"]
    assert (VSCODE / manifest["main"]).is_file()


def test_pre_commit_hooks_run_check_and_fmt_on_flow_files(tmp_path):
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_id = {hook["id"]: hook for hook in hooks}
    assert set(by_id) == {"linkstar-check", "linkstar-fmt"}
    for hook in hooks:
        assert {"id", "name", "entry", "language", "files"} <= set(hook)
        assert hook["language"] == "python"
        files = re.compile(hook["files"])
        assert files.search("flows/jp/survey.flow") and not files.search("survey.flow.bak")
    good = tmp_path / "good.flow"
    good.write_text("on delivered + 48h where not refunded via line, email purpose service\n", encoding="utf-8")
    bad = tmp_path / "bad.flow"
    bad.write_text("on delivered   via lne purpose service\n", encoding="utf-8")
    results = {}
    for hook_id, hook in by_id.items():
        program, *args = shlex.split(hook["entry"])
        assert program == "linkstar"
        for file in (good, bad):
            run = subprocess.run([sys.executable, "-m", "linkstar_dsl", *args, str(file)],
                                 capture_output=True, text=True, timeout=60, check=False)
            results[hook_id, file.name] = run.returncode
    assert results == {("linkstar-check", "good.flow"): 0, ("linkstar-check", "bad.flow"): 1,
                       ("linkstar-fmt", "good.flow"): 0, ("linkstar-fmt", "bad.flow"): 1}
