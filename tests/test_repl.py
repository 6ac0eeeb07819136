"""`linkstar repl`: driven through a pseudo-terminal as a person would, through a pipe as a script
would, and through its functions (completion, evaluation, multi-line input) directly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pexpect
import pytest

from linkstar_dsl.render import render
from linkstar_dsl.repl import commands
from linkstar_dsl.repl.completion import complete
from linkstar_dsl.repl.dispatch import handle
from linkstar_dsl.repl.evaluate import tick_for
from linkstar_dsl.repl.history import ENV_VAR, history_path, safe_history
from linkstar_dsl.repl.inputs import check_expression, incomplete, kind_of, should_submit
from linkstar_dsl.repl.lexer import Vocabulary, classify
from linkstar_dsl.repl.state import Session
from linkstar_dsl.schema import standard_schema

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def demo() -> Session:
    return Session.demo()


@pytest.fixture
def session(demo: Session) -> Session:
    """The shared demo store with a fresh clock, selection and set of flows."""
    fresh = Session(demo.con, demo.store_label, demo.clock)
    yield fresh
    assert demo.con.execute("SELECT count(*) FROM ledger").fetchone()[0] == 0, "the store was written"


def an_order(session: Session, where: str = "TRUE") -> tuple:
    return session.con.execute(
        f"SELECT id, customer_id, total, total_currency FROM orders WHERE {where} ORDER BY id LIMIT 1"
    ).fetchone()


# --------------------------------------------------------------------------------- multi-line input


def test_kinds_of_input():
    assert kind_of(":order x") == "command"
    assert kind_of("order.total > 5 USD") == "expression"
    assert kind_of("not refunded") == "expression"
    assert kind_of("on delivered via email") == "items"
    assert kind_of("# a comment\nflow x") == "items"
    assert kind_of("  \n# only a comment") == "empty"


def test_enter_submits_complete_input_and_goes_on_while_indented_or_incomplete():
    assert should_submit("order.total > 5 USD")
    assert should_submit("on delivered + 48h where not refunded via line, email")
    assert not should_submit("order.total >")                 # the parser needs a value
    assert not should_submit("order.country in [JP,")          # an open list
    assert not should_submit("flow survey")                    # a header without its trigger
    assert not should_submit("flow survey\n  on delivered")    # indented: the flow goes on
    assert should_submit("flow survey\n  on delivered\n")      # a blank line ends it
    assert not should_submit("policy house")                   # complete, but its rules follow
    assert should_submit(':load "not a flow')                  # commands are one line
    assert should_submit('order.total > "abc')                 # already wrong: submit to see why
    assert incomplete("on delivered where") and not incomplete("on delivered")


# ------------------------------------------------------------------------------------- expressions


def test_an_expression_gets_the_checkers_diagnostics_with_carets_on_what_was_typed():
    checked = check_expression("order.totl > 5 USD", standard_schema())
    assert not checked.ok
    [diagnostic] = checked.diagnostics
    assert diagnostic.code == "unknown-field"
    text = render(diagnostic)
    assert text.startswith("<repl>:1:7: error[unknown-field]")
    assert "1 | order.totl > 5 USD\n  |       ^^^^ did you mean `total`?" in text
    assert diagnostic.fix is not None
    assert (diagnostic.fix.span.start, diagnostic.fix.replacement) == (6, "total")


def test_any_type_may_be_looked_at_but_a_flow_clause_is_not_an_expression():
    schema = standard_schema()
    assert str(check_expression("order.total", schema).type) == "money"
    assert check_expression("refunded within 30d", schema).type.kind == "bool"
    assert [d.code for d in check_expression("not order.total", schema).diagnostics] == ["not-a-condition"]
    codes = [d.code for d in check_expression("order.total > 50", schema).diagnostics]
    assert codes == ["money-without-currency"]
    clause = check_expression("order.total > 5 USD via email", schema)
    assert clause.expr is None
    assert [(d.code, d.span.start) for d in clause.diagnostics] == [("unexpected-token", 20)]


def test_the_value_for_the_chosen_order_is_the_stores(session):
    order_id, customer_id, total, currency = an_order(session, "status = 'delivered'")
    assert not commands.run(session, f":order {order_id}").error
    assert session.customer_id == customer_id
    reply = handle(session, "order.total")
    assert f"value  {total} {currency}   (order {order_id}" in reply.text
    refunded = session.con.execute("SELECT count(*) > 0 FROM order_events "
                                   "WHERE order_id = ? AND event = 'refunded' "
                                   "AND occurred_at <= ?", [order_id, session.clock]).fetchone()[0]
    reply = handle(session, "order.total > 0.01 USD and not refunded")
    assert "type   bool" in reply.text
    assert f"value  {'false' if refunded or currency != 'USD' else 'true'}" in reply.text
    fulfillment = session.con.execute("SELECT fulfillment FROM orders WHERE id = ?", [order_id]).fetchone()[0]
    assert f"value  {fulfillment}   (order" in handle(session, "order.fulfillment").text


def test_a_condition_without_an_order_is_counted_over_the_orders_placed_by_the_clock(session):
    session.clock = datetime(2026, 9, 1, tzinfo=UTC)
    expected = session.con.execute("SELECT count(*) FILTER (WHERE fulfillment = 'FBA'), count(*) FROM orders "
                                   "WHERE placed_at <= ?", [session.clock]).fetchone()
    reply = handle(session, "order.fulfillment == FBA")
    assert f"true for {expected[0]:,} of {expected[1]:,} orders placed by 2026-09-01T00:00:00Z" in reply.text


def test_a_customer_is_seen_through_their_latest_order(session):
    _, customer_id, _, _ = an_order(session)
    latest = session.con.execute("SELECT arg_max(id, placed_at) FROM orders "
                                 "WHERE customer_id = ? AND placed_at <= ?",
                                 [customer_id, session.clock]).fetchone()[0]
    assert not commands.run(session, f":customer {customer_id}").error
    assert f'value  "{latest}"' in handle(session, "order.id").text


def test_what_the_store_cannot_evaluate_is_said_in_one_line(session):
    order_id = an_order(session)[0]
    commands.run(session, f":order {order_id}")
    reply = handle(session, "order.total + 5 USD")
    assert "type   money" in reply.text and "not evaluated" in reply.text and reply.error
    assert "Traceback" not in reply.text


# ------------------------------------------------------------------------------------------- flows


def test_a_typed_flow_shows_its_decisions_up_to_the_clock_and_leaves_the_store_alone(session):
    session.rows = 5
    reply = handle(session, "on delivered + 48h where not refunded via line, email")
    assert not reply.error
    head = re.search(r"on_delivered_line_1: (\S+) to (\S+) \(window 7d\): (\d+) decisions: (.*)", reply.text)
    assert head, reply.text
    assert head.group(2) == "2026-10-29T00:00:00Z" == f"{session.clock:%Y-%m-%dT%H:%M:%SZ}"
    assert "order  " in reply.text and "decision  channel" in reply.text and "send_at" in reply.text
    decisions = int(head.group(3))
    assert decisions > 5 and f"… {decisions - 5:,} more (5 of {decisions:,} shown" in reply.text
    for line in reply.text.splitlines():
        if re.search(r"\bsend\s+(line|email)\s+sent\s+(\S+)$", line):
            sent_at = datetime.fromisoformat(line.split()[-1])
            assert session.clock - timedelta(days=7) < sent_at <= session.clock
    assert "warning[missing-purpose]" in reply.text  # the same findings as `linkstar check`
    assert list(session.flows) == ["on_delivered_line_1"]


def test_many_flow_steps_are_simulated_with_a_coarser_tick():
    assert tick_for(timedelta(days=7), 1) == timedelta(hours=1)
    assert tick_for(timedelta(days=7), 25) == timedelta(hours=6)
    assert tick_for(timedelta(days=92), 1) == timedelta(hours=3)


def test_a_multi_line_flow_and_a_declaration(session):
    reply = handle(session, "flow survey\n  purpose service\n  on delivered + 48h\n"
                            "  where order.fulfillment != FBA\n  via email\n  between 10:00 and 18:00 local\n")
    assert re.search(r"survey: .* decisions: .*send \d+", reply.text), reply.text
    assert handle(session, "event gift_wrapped on order").text == "declared event gift_wrapped"
    assert "type   event" in handle(session, ":type gift_wrapped").text


def test_a_flow_with_errors_is_not_kept(session):
    reply = handle(session, "on delivered + 48h via line, emial")
    assert reply.error and "error[unknown-channel]" in reply.text and "did you mean `email`?" in reply.text
    assert "^^^^^" in reply.text
    assert not session.flows


# ---------------------------------------------------------------------------------------- commands


def test_time_moves_the_clock(session):
    assert commands.run(session, ":time 2026-09-01T09:30").text == "clock 2026-09-01T09:30:00Z"
    assert commands.run(session, ":time +2d").text == "clock 2026-09-03T09:30:00Z"
    assert commands.run(session, ":time -90m").text == "clock 2026-09-03T08:00:00Z"
    bad = commands.run(session, ":time tomorrow")
    assert bad.error and "is not a time" in bad.text
    assert commands.run(session, ":time +99999999999y").error  # off the calendar: refused, not a crash
    assert session.clock == datetime(2026, 9, 3, 8, tzinfo=UTC)
    assert commands.run(session, ":window 1000d").error and session.window == timedelta(days=7)


def test_commands_explain_list_and_refuse_politely(session):
    assert commands.run(session, ":explain").error  # no flows yet
    assert "did you mean `:flows`?" in commands.run(session, ":flow").text
    missing = commands.run(session, ":order no-such-order")
    assert missing.error and "no order `no-such-order`" in missing.text
    order_id = an_order(session, "status = 'delivered'")[0]
    commands.run(session, f":order {order_id}")
    handle(session, "on delivered + 48h where not refunded via line, email")
    listed = commands.run(session, ":flows").text
    assert "on_delivered_line_1: on delivered + 48h; purpose marketing" in listed
    explained = commands.run(session, ":explain")
    assert f"flow on_delivered_line_1, step 1 (order {order_id}" in explained.text
    assert "✓ trigger" in explained.text
    assert commands.run(session, ":quit").quit
    assert commands.run(session, ":window 2d").text.startswith("flows are simulated over the 2d before")


def test_load_adds_flows_and_reports_errors_as_check_does(session, tmp_path):
    loaded = commands.run(session, f":load {ROOT / 'examples' / 'jp_post_delivery_survey.flow'}")
    assert "jp_post_delivery_survey" in loaded.text
    assert "jp_post_delivery_survey" in session.flows
    broken = tmp_path / "broken.flow"
    broken.write_text("on delivered + 48 hours via email\n", encoding="utf-8")
    reply = commands.run(session, f":load {broken}")
    assert reply.error and "error[duration-spelling]" in reply.text
    assert "1 file checked: 1 error" in reply.text
    assert commands.run(session, f":load {tmp_path / 'missing.flow'}").error


# -------------------------------------------------------------------------------------- completion


def texts(session: Session, before: str) -> list[str]:
    return [c.text for c in complete(session, before)[1]]


def test_completion_of_fields_events_channels_and_values(session):
    assert complete(session, "order.tot")[0] == 3 and texts(session, "order.tot") == ["total"]
    assert "tags" in texts(session, "customer.") and "rating" in texts(session, "review.")
    assert texts(session, "on deli") == ["delivered", "delivery_failed"]
    channels = texts(session, "on delivered + 48h via line, ")
    assert channels == ["email", "sms", "whatsapp", "amazon", "webhook"]
    assert texts(session, "on delivered purpose s") == ["service"]
    assert texts(session, "order.fulfillment == ")[:3] == ["FBA", "FBM", "merchant"]
    assert "order." in texts(session, "ord") and "ordered" in texts(session, "ord")
    assert '"delivered"' in texts(session, 'on delivered send "del')


def test_completion_of_keywords_comes_from_the_grammar(session):
    after_trigger = texts(session, "on delivered ")
    assert {"where", "via", "send", "between", "cooldown", "unless"} <= set(after_trigger)
    assert "and" not in after_trigger
    assert texts(session, "order.total > 5 USD ") == ["and", "or"]
    assert texts(session, "on delivered wh") == ["where"]
    assert texts(session, "fl") == ["flow"] and "on" in texts(session, "o")  # the first word starts anything


def test_completion_of_commands_and_ids(session):
    assert texts(session, ":ex") == [":explain"]
    order_id = an_order(session)[0]
    assert order_id in texts(session, f":order {order_id[:5]}")
    assert texts(session, ":type order.sta") == ["status", "state"]


def test_highlighting_tells_names_apart():
    vocabulary = Vocabulary.of(standard_schema())
    line = 'on delivered + 48h where order.total > 5 USD via line send "survey" # note'
    tokens = classify(line, vocabulary)
    assert "".join(text for _, text in tokens) == line
    kinds = {text: kind for kind, text in tokens if kind}
    assert kinds == {"on": "keyword", "delivered": "event", "+": "operator", "48h": "number",
                     "where": "keyword", "order": "entity", "total": "field", ">": "operator",
                     "5 USD": "number", "via": "keyword",
                     "line": "channel", "send": "keyword", '"survey"': "string", "# note": "comment"}
    assert classify('where "open', vocabulary)[-1] == ("open-string", '"open')


# ----------------------------------------------------------------------------------------- history


def test_history_file_location_and_an_unwritable_one(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "h"))
    assert history_path() == tmp_path / "h"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert history_path() == tmp_path / "linkstar" / "repl_history"
    unwritable = safe_history(tmp_path)  # a folder: neither readable nor writable as a file
    unwritable.store_string("order.total")
    assert list(unwritable.load_history_strings()) == []


# ------------------------------------------------------------------------------------ from a pipe


def run_piped(text: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return subprocess.run([sys.executable, "-m", "linkstar_dsl", "repl", *args], input=text, text=True,
                          capture_output=True, cwd=ROOT, env=env, timeout=120, check=False)


def test_piped_input_is_answered_in_plain_text():
    done = run_piped("order.total > 10 USD\n"
                     "flow piped\n  purpose service\n  on delivered + 48h\n  via email\n\n"
                     ":time +1d\n")
    assert done.returncode == 0, done.stderr
    assert "type   bool\nvalue  true for " in done.stdout
    assert re.search(r"^piped: \S+ to \S+ \(window 7d\): \d+ decisions", done.stdout, re.MULTILINE)
    assert "clock 2026-10-30T00:00:00Z" in done.stdout
    assert "\x1b[" not in done.stdout and done.stderr == ""


def test_piped_errors_are_diagnostics_and_set_the_exit_code():
    done = run_piped("order.totl > 5 USD\norder.total > 5 USD\n")
    assert done.returncode == 1
    assert "<repl>:1:7: error[unknown-field]" in done.stdout and "^^^^ did you mean `total`?" in done.stdout
    assert "type   bool" in done.stdout  # the next input is still answered
    assert "Traceback" not in done.stdout + done.stderr


def test_a_store_file(tmp_path):
    from linkstar_dsl.demo_data import generate
    from linkstar_dsl.store import open_store

    path = tmp_path / "shop.duckdb"
    con = open_store(path)
    generate(con, orders=120, seed=7)
    con.close()
    done = run_piped("order.total > 0.01 USD\n", "--db", str(path))
    assert done.returncode == 0, done.stderr
    assert re.search(r"true for \d+ of \d+ orders", done.stdout)
    assert run_piped("", "--db", str(tmp_path / "missing.duckdb")).returncode == 2


# ---------------------------------------------------------------------------- a pseudo-terminal


class Terminal:
    """The REPL in a pseudo-terminal; `screen` is everything it printed, escape codes removed."""

    def __init__(self, history: Path, extra_env: dict | None = None) -> None:
        env = dict(os.environ, TERM="xterm", NO_COLOR="1", PROMPT_TOOLKIT_NO_CPR="1", LINES="40",
                   COLUMNS="160")
        env[ENV_VAR] = str(history)
        env.update(extra_env or {})
        self.child = pexpect.spawn(sys.executable, ["-m", "linkstar_dsl", "repl"], cwd=str(ROOT), env=env,
                                   dimensions=(40, 160), encoding="utf-8", timeout=60)
        self.seen = ""
        self.wait_for("flow>")

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """Read until `pattern` (a regex) shows in the plain text of the output; the text up to it."""
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, ANSI.sub("", self.seen))):
            if time.monotonic() > deadline:
                screen = ANSI.sub("", self.seen)[-2000:]
                raise AssertionError(f"{pattern!r} not seen; the screen said:\n{screen}")
            try:
                self.seen += self.child.read_nonblocking(4096, timeout=0.2)
            except pexpect.TIMEOUT:
                pass
        plain = ANSI.sub("", self.seen)
        self.seen = plain[found.end():]
        return plain[: found.end()]

    def submit(self, text: str, expect: str) -> str:
        """Send one input; the screen up to the next prompt."""
        self.child.send(text + "\r")
        return self.wait_for(expect) + self.wait_for("flow>")

    def close(self) -> int:
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()
        return self.child.exitstatus


@pytest.fixture
def terminal(tmp_path):
    started = Terminal(tmp_path / "history")
    yield started
    if started.child.isalive():
        started.child.terminate(force=True)


def test_terminal_completion_value_diagnostic_flow_time_and_quit(terminal, demo, tmp_path):
    # Tab completes the field; Enter takes the highlighted completion, the next Enter submits.
    terminal.child.send("order.tot")
    time.sleep(0.3)
    terminal.child.send("\t")
    terminal.wait_for("total")
    terminal.child.send("\r")
    time.sleep(0.3)
    terminal.child.send("\r")
    terminal.wait_for(r"type   money")
    terminal.wait_for("flow>")

    order_id, _, total, currency = an_order(demo, "status = 'delivered'")
    terminal.submit(f":order {order_id}", rf"order {re.escape(order_id)}: customer")
    screen = terminal.submit("order.total", r"value  \S+ [A-Z]{3}")
    assert f"value  {total} {currency}   (order {order_id} at 2026-10-29T00:00:00Z)" in screen

    screen = terminal.submit("order.totl > 5 USD", r"did you mean `total`\?")
    assert "error[unknown-field]" in screen and "^^^^" in screen

    screen = terminal.submit("on delivered + 48h where not refunded via line, email", r"\d+ decisions: ")
    assert re.search(r"on_delivered_line_1: 2026-10-22T00:00:00Z to 2026-10-29T00:00:00Z", screen)

    screen = terminal.submit(":time 2026-10-01T12:00", "clock 2026-10-01T12:00:00Z")
    screen = terminal.submit("refunded", r"value  ")
    assert "at 2026-10-01T12:00:00Z" in screen

    terminal.child.send(":quit\r")
    assert terminal.close() == 0
    history = (tmp_path / "history").read_text(encoding="utf-8")
    assert "+order.total\n" in history and "+:quit\n" in history


def test_terminal_multi_line_flow_interrupt_and_end_of_input(terminal):
    terminal.child.send("flow multi\r")
    terminal.wait_for(r"\.\.\.")              # a continuation line, indented for the clauses
    terminal.child.send("purpose service\r")
    terminal.child.send("on delivered + 48h\r")
    terminal.child.send("via email\r")
    terminal.child.send("\r")                 # the blank line submits
    screen = terminal.wait_for(r"multi: \S+ to \S+ \(window 7d\): \d+ decisions")
    assert "error" not in screen
    terminal.wait_for("flow>")
    terminal.child.send("order.total >")
    terminal.child.sendintr()                 # Ctrl-C drops the input, the REPL goes on
    terminal.wait_for("flow>")
    terminal.submit(":flows", r"multi: on delivered \+ 48h; purpose service")
    terminal.child.sendeof()                  # Ctrl-D leaves
    assert terminal.close() == 0


def test_terminal_with_an_unwritable_history_file(tmp_path):
    terminal = Terminal(tmp_path)  # a folder where the history file should be
    try:
        terminal.submit("48h + 1d", r"value  3d|type   duration")
        terminal.child.send(":quit\r")
        assert terminal.close() == 0
    finally:
        if terminal.child.isalive():
            terminal.child.terminate(force=True)
