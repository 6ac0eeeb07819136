"""`linkstar lsp` as an editor meets it: a real LSP session over standard input and output.

The client below speaks JSON-RPC with Content-Length framing to `python -m linkstar_dsl lsp` in
a subprocess, as VS Code or Neovim would.  Positions are checked in UTF-16 code units, computed
here independently of the server, on lines holding Japanese text and emoji.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import sys
from pathlib import Path

import pytest

from linkstar_dsl.formatter import format_text

TIMEOUT = 30

BAD_FLOW = """\
# 日本のお客様向け: お届けの二日後にアンケート 🎌
flow jp_survey "お届け後のアンケート 📦"
  purpose service
  market JP
  on delivered + 48h
  where not refunded and order.marketplace != amazon and order.total >= 3000 JPY
  send "survey" (note = "感謝🙏") via lne
  between 10:00 and 18:00 local
  cooldown 30d per customer
"""

UNFORMATTED = """\
# 形式を整える前のフロー 🎉
on   delivered+48h  where not refunded   via line,email purpose service
flow jp_thanks "お礼"
    purpose service   market JP
  on delivered
   via line send "survey"
"""


def utf16_position(text: str, offset: int) -> dict:
    """The LSP position of a character offset, counted the way an editor does."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return {"line": line, "character": len(text[start:offset].encode("utf-16-le")) // 2}


def offset_of(text: str, position: dict) -> int:
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[: position["line"]])
    encoded = lines[position["line"]].encode("utf-16-le")[: 2 * position["character"]]
    return start + len(encoded.decode("utf-16-le"))


def apply_edits(text: str, edits: list[dict]) -> str:
    spans = sorted(((offset_of(text, e["range"]["start"]), offset_of(text, e["range"]["end"]), e["newText"])
                    for e in edits), reverse=True)
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


class Client:
    """A minimal LSP client: requests, notifications, and the server's notifications queued by method."""

    def __init__(self, stderr_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.received: dict[str, list] = {}
        self.arrived = asyncio.Event()
        self.log_path = stderr_path
        self.stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = self.run(asyncio.create_subprocess_exec(
            sys.executable, "-m", "linkstar_dsl", "lsp", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=self.stderr))
        self.reader = self.loop.create_task(self._read())

    def run(self, coroutine, timeout: float = TIMEOUT):
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, timeout))

    def _write(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def _read(self) -> None:
        stdout = self.proc.stdout
        while True:
            length = None
            while True:
                line = await stdout.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(await stdout.readexactly(length))
            if "id" in message and "method" in message:  # a request from the server
                self._write({"id": message["id"], "result": None})
            elif "id" in message:
                future = self.pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                self.received.setdefault(message["method"], []).append(message["params"])
                self.arrived.set()

    def request(self, method: str, params) -> object:
        number = next(self.ids)
        future = self.loop.create_future()
        self.pending[number] = future
        self._write({"id": number, "method": method, "params": params})
        answer = self.run(future)
        assert "error" not in answer, answer
        return answer["result"]

    def notify(self, method: str, params) -> None:
        self._write({"method": method, "params": params})
        self.run(self.proc.stdin.drain())

    def wait_for(self, method: str, accept=lambda params: True):
        """The first notification of `method` that `accept`s, consumed from the queue."""

        async def waiting():
            while True:
                queue = self.received.get(method, [])
                for i, params in enumerate(queue):
                    if accept(params):
                        return queue.pop(i)
                self.arrived.clear()
                await self.arrived.wait()

        return self.run(waiting())

    def close(self) -> int | None:
        code = None
        if self.proc.returncode is None:
            try:
                self.request("shutdown", None)
                self.notify("exit", None)
                code = self.run(self.proc.wait(), timeout=10)
            except (TimeoutError, AssertionError, ConnectionError):
                self.proc.kill()
                self.run(self.proc.wait())
        self.reader.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()
        self.stderr.close()
        return code


def start(tmp_path: Path) -> tuple[Client, dict]:
    client = Client(tmp_path / "server.log")
    result = client.request("initialize", {
        "processId": None,
        "rootUri": tmp_path.as_uri(),
        "capabilities": {"general": {"positionEncodings": ["utf-16"]}},
    })
    client.notify("initialized", {})
    return client, result


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("flows")
    for locale, name, body in (("en", "survey.email.j2", "How was your order? {{ unsubscribe_url }}\n"),
                               ("ja", "survey.line.j2", "ご注文はいかがでしたか？\n")):
        (root / "templates" / locale).mkdir(parents=True, exist_ok=True)
        (root / "templates" / locale / name).write_text(body, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def session(workspace):
    client, result = start(workspace)
    client.capabilities = result["capabilities"]
    yield client
    client.close()


def open_document(client: Client, path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "linkstar", "version": 1, "text": text}})
    return uri


def diagnostics_for(client: Client, uri: str, version: int | None = None) -> list[dict]:
    params = client.wait_for("textDocument/publishDiagnostics",
                             lambda p: p["uri"] == uri and (version is None or p.get("version") == version))
    return params["diagnostics"]


def test_the_server_announces_what_it_can_do(session):
    capabilities = session.capabilities
    assert capabilities["positionEncoding"] == "utf-16"
    assert capabilities["hoverProvider"] and capabilities["definitionProvider"]
    assert capabilities["documentFormattingProvider"]
    assert "." in capabilities["completionProvider"]["triggerCharacters"]
    assert capabilities["codeActionProvider"]["codeActionKinds"] == ["quickfix"]
    assert capabilities["textDocumentSync"]["save"] is not False


def test_a_bad_file_gets_its_diagnostic_at_the_right_utf16_columns(session, workspace):
    uri = open_document(session, workspace / "bad.flow", BAD_FLOW)
    (diagnostic,) = diagnostics_for(session, uri)
    start = BAD_FLOW.index("lne")
    assert diagnostic["code"] == "unknown-channel"
    assert diagnostic["severity"] == 1
    assert diagnostic["source"] == "linkstar"
    assert diagnostic["range"] == {"start": utf16_position(BAD_FLOW, start),
                                   "end": utf16_position(BAD_FLOW, start + 3)}
    # The emoji before the error takes two UTF-16 units: a server counting characters is one short.
    line_start = BAD_FLOW.rfind("\n", 0, start) + 1
    assert diagnostic["range"]["start"]["character"] == start - line_start + 1
    assert "did you mean `line`" in diagnostic["message"]
    page = diagnostic["codeDescription"]["href"]
    assert page.startswith("file://") and page.endswith("/unknown-channel.md")


def test_the_fix_is_offered_as_a_quick_fix(session, workspace):
    uri = (workspace / "bad.flow").as_uri()
    start = BAD_FLOW.index("lne")
    where = {"start": utf16_position(BAD_FLOW, start), "end": utf16_position(BAD_FLOW, start)}
    actions = session.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": where, "context": {"diagnostics": []}})
    (action,) = actions
    assert action["kind"] == "quickfix"
    assert action["diagnostics"][0]["code"] == "unknown-channel"
    fixed = apply_edits(BAD_FLOW, action["edit"]["changes"][uri])
    assert "via line\n" in fixed and "lne" not in fixed


def test_an_edit_that_fixes_the_error_clears_the_diagnostics(session, workspace):
    uri = open_document(session, workspace / "edited.flow", BAD_FLOW)
    assert [d["code"] for d in diagnostics_for(session, uri, 1)] == ["unknown-channel"]
    start = BAD_FLOW.index("lne")
    session.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 2},
        "contentChanges": [{"range": {"start": utf16_position(BAD_FLOW, start),
                                      "end": utf16_position(BAD_FLOW, start + 3)}, "text": "line"}]})
    assert diagnostics_for(session, uri, 2) == []


def test_saving_checks_again_with_the_templates_on_disk(session, workspace):
    text = "on delivered purpose service via email send \"thanks\"\n"
    uri = open_document(session, workspace / "thanks.flow", text)
    assert "unknown-template" in [d["code"] for d in diagnostics_for(session, uri)]
    (workspace / "templates" / "en" / "thanks.email.j2").write_text("Thank you! {{ unsubscribe_url }}\n")
    session.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    assert "unknown-template" not in [d["code"] for d in diagnostics_for(session, uri)]


def test_hover_on_a_field_gives_its_declared_type(session, workspace):
    uri = (workspace / "bad.flow").as_uri()
    at = BAD_FLOW.index("total") + 2
    answer = session.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                    "position": utf16_position(BAD_FLOW, at)})
    assert answer["contents"]["kind"] == "markdown"
    assert "`order.total`: **money**" in answer["contents"]["value"]
    start = BAD_FLOW.index("order.total")
    assert answer["range"]["start"] == utf16_position(BAD_FLOW, start)


def test_hover_on_a_suppressed_code_shows_its_catalog_summary(session, workspace):
    text = ("flow survey\n  purpose service\n  on shipped\n  via email\n"
            "  # linkstar: allow never-missing -- 取り込んだ注文には無いことがある\n"
            "  where customer.locale is present\n")
    uri = open_document(session, workspace / "suppressed.flow", text)
    diagnostics_for(session, uri)
    answer = session.request("textDocument/hover", {
        "textDocument": {"uri": uri}, "position": utf16_position(text, text.index("never-missing") + 3)})
    value = answer["contents"]["value"]
    assert value.startswith("**never-missing** (warning)")
    assert "/never-missing.md" in value


def test_completion_after_order_dot_lists_its_fields(session, workspace):
    text = "on delivered purpose service via email where order.\n"
    uri = open_document(session, workspace / "typing.flow", text)
    answer = session.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": utf16_position(text, text.index("order.") + 6),
        "context": {"triggerKind": 2, "triggerCharacter": "."}})
    items = {item["label"]: item for item in answer["items"]}
    assert {"total", "fulfillment", "marketplace"} <= set(items)
    assert "customer_id" in items and "lifetime_value" not in items  # order's fields, not customer's
    assert items["total"]["detail"] == "money"


def test_completion_offers_only_the_keywords_the_grammar_accepts_there(session, workspace):
    text = "on delivered via line\n  \n"
    uri = open_document(session, workspace / "keywords.flow", text)
    answer = session.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": {"line": 1, "character": 2}})
    labels = {item["label"] for item in answer["items"]}
    assert {"where", "send", "between", "cooldown", "flow", "policy"} <= labels
    assert not labels & {"missing", "within", "local", "requires"}
    text = "on delivered via "
    uri = open_document(session, workspace / "channels.flow", text)
    answer = session.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": utf16_position(text, len(text))})
    assert {item["label"] for item in answer["items"]} == {"line", "email", "sms", "whatsapp", "amazon", "webhook"}


def test_definition_of_a_template_name_is_its_j2_files(session, workspace):
    uri = (workspace / "bad.flow").as_uri()
    at = BAD_FLOW.index('"survey"') + 3
    locations = session.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                            "position": utf16_position(BAD_FLOW, at)})
    uris = [location["uri"] for location in locations]
    assert (workspace / "templates" / "en" / "survey.email.j2").as_uri() in uris
    assert (workspace / "templates" / "ja" / "survey.line.j2").as_uri() in uris


def test_definition_of_a_market_is_its_standard_policy(session, workspace):
    uri = (workspace / "bad.flow").as_uri()
    at = BAD_FLOW.index("market JP") + len("market ")
    (location,) = session.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                               "position": utf16_position(BAD_FLOW, at)})
    assert location["uri"].endswith("/stdlib/policies/jp.flow")
    target = Path(location["uri"].removeprefix("file://")).read_text(encoding="utf-8")
    line = target.splitlines()[location["range"]["start"]["line"]]
    assert line.startswith("policy market JP")


def test_formatting_edits_produce_the_formatted_text(session, workspace):
    uri = open_document(session, workspace / "messy.flow", UNFORMATTED)
    edits = session.request("textDocument/formatting", {
        "textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": True}})
    assert edits
    assert apply_edits(UNFORMATTED, edits) == format_text(UNFORMATTED)


def test_no_formatting_edit_for_a_file_with_syntax_errors(session, workspace):
    text = "on delivered via line,\n  where wher\n"
    uri = open_document(session, workspace / "broken.flow", text)
    assert diagnostics_for(session, uri)
    assert session.request("textDocument/formatting", {
        "textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": True}}) == []


NASTY = [
    "",
    "\x00\x01binary",
    'on delivered send "unclosed 🎌\n  where (((((',
    "on delivered where " + "(" * 300 + "refunded" + ")" * 300,
    "on delivered where " + " and ".join(["not refunded"] * 200),
    "ｏｎ　ｄｅｌｉｖｅｒｅｄ　＃全角\r\n\r  via 🙏 line",
    "policy market JP\n  marketing via email requires consent(\n",
    "entity order\n  extra: list[\n",
    "flow x\n  on delivered\n  where order.",
]


def test_the_server_answers_every_request_on_broken_documents(session, workspace):
    for number, text in enumerate(NASTY):
        uri = open_document(session, workspace / f"nasty{number}.flow", text)
        diagnostics_for(session, uri)
        ends = {0, len(text) // 2, len(text)}
        for at in sorted(ends):
            position = utf16_position(text, at)
            where = {"textDocument": {"uri": uri}, "position": position}
            session.request("textDocument/hover", where)
            assert "items" in session.request("textDocument/completion", where)
            assert isinstance(session.request("textDocument/definition", where), list)
        session.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                    "options": {"tabSize": 2, "insertSpaces": True}})
    assert "Traceback" not in session.log_path.read_text(encoding="utf-8", errors="replace")
    # Still alive, still right.
    assert session.request("textDocument/hover", {
        "textDocument": {"uri": (workspace / "bad.flow").as_uri()},
        "position": utf16_position(BAD_FLOW, BAD_FLOW.index("total"))})


def test_shutdown_and_exit_end_the_process_cleanly(tmp_path):
    client, _ = start(tmp_path)
    assert client.close() == 0


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
def test_positions_round_trip_in_every_encoding(encoding):
    from linkstar_dsl.lsp.positions import LineIndex

    text = "# 注文 🎌 ok\r\n  send \"感謝🙏\" via lne\rx\n\n𠮷野家 end"
    lines = LineIndex(text, encoding)
    codec = {"utf-16": "utf-16-le", "utf-8": "utf-8", "utf-32": "utf-32-le"}[encoding]
    width = {"utf-16": 2, "utf-8": 1, "utf-32": 4}[encoding]
    for offset, char in enumerate(text):
        if char in "\r\n":
            continue
        position = lines.position(offset)
        line_start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
        assert position.line == sum(1 for _ in re.finditer(r"\r\n|\r|\n", text[:line_start]))
        assert position.character == len(text[line_start:offset].encode(codec)) // width
        assert lines.offset(position) == offset
    # Past the end of a line is the end of that line; past the last line, the end of the text.
    end_of_first = text.index("\r\n")
    assert lines.offset(type(lines.position(0))(line=0, character=999)) == end_of_first
    assert lines.position(end_of_first + 1) == lines.position(end_of_first)
    assert lines.offset(type(lines.position(0))(line=99, character=0)) == len(text)
