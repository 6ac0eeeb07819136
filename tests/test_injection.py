"""Injection: hostile text in templates, flows, imported data and email fields never takes effect.

* **Templates**: payloads that walk Python's object graph (`__class__.__mro__`, `__subclasses__`,
  `__globals__` through `cycler`, `joiner`, `namespace`, `self`), format-string tricks,
  `|attr`, and denial-of-service (huge `range`, string and list multiplication, padding, format
  widths, loops, doubling) are refused by the rendering sandbox, each in well under a second.
  Text from the store that looks like a template is printed as it is.
* **SQL**: quotes, `'; DROP TABLE …; --` and Unicode in flow strings, `send` parameters, template
  names, pause reasons, REPL commands and imported ids, names and emails travel as data: they
  round-trip literally, compare literally, and no table changes.
* **Email headers**: a line break in a recipient, subject or sender name never starts a header:
  the SMTP and SendGrid adapters refuse such a recipient before any call and fold the others.
* **Paths**: template names, `{% include %}` targets and `import` paths cannot leave their folders.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from linkstar_dsl import Engine, compile_text
from linkstar_dsl.adapters import ChannelEngine, Email, Outcome, OutgoingMessage
from linkstar_dsl.checker import check_text
from linkstar_dsl.cli import main as cli
from linkstar_dsl.importers import ImportOptions, import_paths
from linkstar_dsl.providers import ProviderServers
from linkstar_dsl.runtime.render import Renderer, RenderError
from linkstar_dsl.runtime.render_context import RenderSettings, render_context
from linkstar_dsl.store import open_store

from test_runtime import DUE, make_store

SETTINGS = RenderSettings.demo()
NOW = DUE
DROP = "'; DROP TABLE orders; --"
HOSTILE = [DROP, "x'); DROP TABLE ledger; --", "O'Brien \"Bob\"", "1' OR '1'='1", "\\'; SELECT 1; --",
           "ジョン・スミス", "名前'；DROP", "a\u202eb", "😀'--", "%_*", "$1", "?"]


# ===================================================================================== templates


def write_template(root: Path, text: str, name: str = "evil.sms.j2") -> Renderer:
    path = root / "templates" / "en" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    (root / "f.flow").write_text("on delivered via sms\n", encoding="utf-8")
    return Renderer.for_flow_file(root / "f.flow", SETTINGS)


def context(**customer):
    customer = {"id": "c1", "name": "Emily", "locale": "en", "country": "US", "timezone": "UTC", **customer}
    order = {"id": "o1", "total": Decimal("39.80"), "total_currency": "USD", "placed_at": NOW}
    return render_context(customer, order, None, SETTINGS, "flow:0:e1", "sms", NOW)


WALKING = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ customer.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ customer|attr('__class__') }}",
    "{{ (customer|attr('__class__'))|attr('__mro__') }}",
    "{{ '{0.__class__.__mro__}'.format(customer) }}",
    "{{ '{0.__init__.__globals__}'.format(cycler) }}",
    "{{ '%s'|format(customer.__class__) }}",
    "{{ '{x.__class__}'.format_map({'x': customer}) }}",
    "{{ range.__self__ }}",
    "{{ dict.mro() }}",
    "{{ customer.items.__self__.__class__ }}",
    "{% set x = namespace() %}{{ x.__dict__ }}",
    "{{ config }}{{ request }}",
    "{{ lipsum.__globals__ }}",
]

DENIAL = [
    "{{ 'x' * 1000000000 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 9 ** 999999999 }}",
    "{{ range(10 ** 9)|list|length }}",
    "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "{{ 'a'|center(1000000000) }}",
    "{{ ('x\n' * 1000)|indent(100000) }}",
    "{{ 'x'.ljust(1000000000) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%.999999999f'|format(1) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% set ns = namespace(n=2) %}{% for i in range(60) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
    "{{ ('x' * 200000)|replace('x', 'y' * 1000) }}",
    "{{ ('x' * 200000)|list|join('y' * 1000) }}",
    "{{ ('\t' * 200000).expandtabs(10000) }}",
    "{{ lipsum(100000) }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% for i in range(99999) %}{{ i }}{% endfor %}{% for i in range(99999) %}{{ i }}{% endfor %}",
]


@pytest.mark.parametrize("payload", WALKING)
def test_walking_into_python_internals_is_refused(tmp_path, payload):
    renderer = write_template(tmp_path, "Hi " + payload)
    with pytest.raises(RenderError) as refused:
        renderer.render("evil", "sms", "en", context(), purpose="transactional")
    assert any(word in str(refused.value) for word in ("not allowed", "is not a variable", "does not exist",
                                                       "unsafe", "undefined"))


@pytest.mark.parametrize("payload", DENIAL)
def test_denial_of_service_is_stopped_quickly(tmp_path, payload):
    renderer = write_template(tmp_path, payload)
    started = time.perf_counter()
    with pytest.raises(RenderError):
        renderer.render("evil", "sms", "en", context(), purpose="transactional")
    assert time.perf_counter() - started < 3.0


def test_ordinary_arithmetic_loops_and_formatting_still_work(tmp_path):
    renderer = write_template(tmp_path, "{{ 7 * 6 }} {{ 'ab' * 3 }} {{ 2 ** 10 }} {{ '%05d' % 42 }} "
                                        "{{ '{:>4}'.format('r') }} {% for i in range(3) %}{{ i }}{% endfor %} "
                                        "{{ customer.name ~ '!' }} {{ 'a-b'|replace('-', '+') }} "
                                        "{{ ['x', 'y']|join(', ') }} {{ 'hi'|center(6) }}|")
    text = renderer.render("evil", "sms", "en", context(), purpose="transactional").body
    assert text == "42 ababab 1024 00042    r 012 Emily! a+b x, y   hi  |"


@pytest.mark.parametrize("name", ["{{ 7 * 7 }}", "{% for x in range(9) %}x{% endfor %}", "{{ cycler.__init__ }}",
                                  "${7*7} #{7*7} <%= 7*7 %>", "{#", "{%", "}}"])
def test_text_from_the_store_is_printed_not_run(tmp_path, name):
    renderer = write_template(tmp_path, "Hello {{ customer.name }}!")
    text = renderer.render("evil", "sms", "en", context(name=name), purpose="transactional").body
    assert text.startswith(f"Hello {name}!")


def test_an_email_subject_with_line_breaks_from_the_store_stays_one_line(tmp_path):
    renderer = write_template(tmp_path, "{% block subject %}Hello {{ customer.name }}{% endblock %}"
                                        "{% block text %}Body{% endblock %}", name="mail.email.j2")
    email = renderer.render("mail", "email", "en", context(name="Bob\r\nBcc: evil@example.com"),
                            purpose="transactional")
    assert email.subject == "Hello Bob Bcc: evil@example.com"


# =========================================================================================== SQL


def tables(con) -> dict[str, int]:
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
    return {name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def hostile_store(path: Path) -> None:
    """Three buyers of the test store, one of them named and tagged with each hostile text."""
    con = make_store(path, n=3)
    con.execute("UPDATE customers SET name = ?, tags = ? WHERE id = 'c1'", [DROP, [DROP, "vip"]])
    con.close()


def dry_tick(program, db: Path):
    async def tick():
        async with Engine(program, str(db), dry_run=True, render_settings=SETTINGS) as engine:
            return await engine.tick(DUE + timedelta(minutes=5))
    return asyncio.run(tick())


@pytest.mark.parametrize("condition", [
    f'customer.name == "{DROP}"',
    f'"{DROP}" in customer.tags',
    f'customer.name in ["{DROP}", "{HOSTILE[1]}"]',
    f'not customer.name != "{DROP}"',
])
def test_strings_in_a_flow_compare_literally_and_change_nothing(tmp_path, condition):
    db = tmp_path / "s.duckdb"
    hostile_store(db)
    before = tables(duckdb.connect(str(db), read_only=True))
    program = compile_text("flow thanks\n  purpose service\n  on delivered + 48h\n"
                           f"  where {condition}\n  via line\n  send \"delivered\" (note = \"{HOSTILE[1]}\")\n")
    report = dry_tick(program, db)
    sent = {d.customer_id for d in report.decisions if d.decision == "send"}
    assert sent == {"c1"}
    con = duckdb.connect(str(db), read_only=True)
    assert tables(con) == before
    assert con.execute("SELECT name FROM customers WHERE id = 'c1'").fetchone()[0] == DROP


@pytest.mark.parametrize("name", [DROP, "../../etc/passwd", "survey'; --", "a b"])
def test_a_template_name_is_never_a_path_or_sql(tmp_path, name):
    (tmp_path / "templates" / "en").mkdir(parents=True)
    (tmp_path / "a.flow").write_text(f'on delivered via line send "{name}" purpose service\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--format", "json", str(tmp_path / "a.flow")])
    assert result.exit_code == 1 and '"unknown-template"' in result.output
    with pytest.raises(RenderError, match="is not a template name"):
        Renderer.for_flow_file(tmp_path / "a.flow", SETTINGS).render(name, "line", "en", context())


def test_flow_names_and_enum_values_cannot_hold_quotes():
    for text in ["flow a'b on delivered via line", "enum tier: gold, 'x'", 'flow "x" on delivered via line']:
        assert any(d.severity.value == "error" for d in check_text(text).diagnostics), text


def test_imported_ids_names_and_emails_round_trip_literally(tmp_path):
    rows = [(f"C-{n}", text, f"x{n}@example.com") for n, text in enumerate(HOSTILE)]
    lines = ["id,country,name,email"] + [f'"{cid.replace(chr(34), 2 * chr(34))}",JP,"{name.replace(chr(34), 2 * chr(34))}",'
                                         f"{email}" for cid, name, email in rows]
    hostile_ids = [("'; DROP TABLE customers; --", DROP), ("o'brien", "quote in the key")]
    lines += [f'"{cid}",US,"{name}",q@example.com' for cid, name in hostile_ids]
    (tmp_path / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "orders.jsonl").write_text(
        "".join(f'{{"id": "{DROP}-{n}", "customer_id": "{cid}", "marketplace": "shopify", "status": "paid", '
                f'"country": "JP", "total": "10", "total_currency": "JPY", '
                f'"placed_at": "2024-05-01T10:00:00Z"}}\n'
                for n, (cid, _) in enumerate(hostile_ids)), encoding="utf-8")
    db = tmp_path / "store.duckdb"
    outcomes = import_paths([str(tmp_path / "customers.csv"), str(tmp_path / "orders.jsonl")], str(db),
                            ImportOptions())
    assert [o.rejected for o in outcomes] == [0, 0], [o.as_dict()["problems"] for o in outcomes]
    con = open_store(db)
    stored = dict(con.execute("SELECT id, name FROM customers").fetchall())
    assert stored == {**{cid: name for cid, name, _ in rows}, **dict(hostile_ids)}
    assert sorted(r[0] for r in con.execute("SELECT id FROM orders").fetchall()) == [f"{DROP}-0", f"{DROP}-1"]
    assert {"customers", "orders", "ledger"} <= set(tables(con))


def test_hostile_text_in_the_repl_and_the_kill_switch_is_data(tmp_path):
    db = tmp_path / "s.duckdb"
    hostile_store(db)
    before = tables(duckdb.connect(str(db), read_only=True))
    from linkstar_dsl.repl.dispatch import handle
    from linkstar_dsl.repl.state import Session

    session = Session.open(str(db))
    for line in [f":order {DROP}", f":customer {DROP}", f'customer.name == "{DROP}"', f":explain {DROP}"]:
        reply = handle(session, line)
        assert "internal error" not in reply.text
    session.con.close()
    result = CliRunner().invoke(cli, ["pause", "flow", DROP, "--db", str(db), "--reason", HOSTILE[1]])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT name, reason FROM pauses").fetchall() == [(DROP, HOSTILE[1])]
    assert tables(con) == {**before, "pauses": 1}


# ================================================================================ email headers

UNSUBSCRIBE = "https://shop.example/u/c1"
ADDRESSES = ["alice@example.com\r\nBcc: evil@example.com", "alice@example.com\nBcc: evil@example.com",
             "alice@example.com, evil@example.com", "Evil <evil@example.com>",
             "alice@example.com>\r\nRCPT TO:<evil@example.com", "alice@example.com\x00", "", "alice"]


def send_email(email: str, to: str, content: Email, from_name: str = "LinkStar Shop"):
    async def scenario():
        async with ProviderServers() as servers:
            config = servers.config(email=email, **{email: {"from_name": from_name, "limits": {"retries": 0}}})
            async with ChannelEngine(config, environ=servers.environ(), plugins=False) as engine:
                result = await engine.send(OutgoingMessage("flow:0:e1", "email", to, content, purpose="service",
                                                           unsubscribe_url=UNSUBSCRIBE))
            received = servers.smtp.messages if email == "smtp" else servers.sendgrid.received
            return result, list(received)
    return asyncio.run(scenario())


@pytest.mark.parametrize("email", ["smtp", "sendgrid"])
@pytest.mark.parametrize("to", ADDRESSES)
def test_a_recipient_that_is_not_one_plain_address_is_refused_before_any_call(email, to):
    result, received = send_email(email, to, Email("Hello", "text"))
    assert result.outcome is Outcome.PERMANENT and "not a valid address" in result.message
    assert received == []


@pytest.mark.parametrize("subject", ["Hello\r\nBcc: evil@example.com", "Hello\nX-Evil: 1", "Hello\r\n\r\nbody"])
def test_line_breaks_in_a_subject_or_sender_name_are_folded_over_smtp(subject):
    result, received = send_email("smtp", "alice@example.com", Email(subject, "text"),
                                  from_name="Shop\r\nBcc: evil@example.com")
    assert result.sent
    (mail,) = received
    assert mail.recipients == ("alice@example.com",) or list(mail.recipients) == ["alice@example.com"]
    assert mail.message["Bcc"] is None and mail.message["X-Evil"] is None
    assert mail.message["Subject"] == " ".join(subject.split())
    (sender,) = mail.message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Shop Bcc: evil@example.com", "shop@linkstar.example")


def test_line_breaks_in_a_subject_or_sender_name_are_folded_for_sendgrid():
    result, received = send_email("sendgrid", "alice@example.com", Email("Hi\r\nBcc: evil@example.com", "text"),
                                  from_name="Shop\nX: 1")
    assert result.sent
    body = received[0].json()
    assert body["subject"] == "Hi Bcc: evil@example.com" and body["from"]["name"] == "Shop X: 1"
    assert body["personalizations"][0]["to"] == [{"email": "alice@example.com"}]


def test_a_non_ascii_address_the_relay_cannot_take_is_a_permanent_failure_not_a_crash():
    result, received = send_email("smtp", "タナカ@example.jp", Email("件名", "本文"))
    assert result.outcome is Outcome.PERMANENT and received == []


# ======================================================================================== paths


@pytest.mark.parametrize("name", ["../../etc/passwd", "..%2f..%2fetc%2fpasswd", "..\\..\\etc\\passwd", "/etc/passwd",
                                  "survey\x00", "survey/../../x", "．．/x", "C:\\x"])
def test_template_names_cannot_be_paths(name):
    with pytest.raises(RenderError, match="is not a template name"):
        Renderer.for_flow_file(None, SETTINGS).render(name, "sms", "en", context())


@pytest.mark.parametrize("statement", ['{% include "../../../../etc/passwd" %}', '{% include "/etc/passwd" %}',
                                       '{% include "..\\\\..\\\\f.flow" %}', '{% extends "../f.flow" %}',
                                       '{% import "../../f.flow" as m %}', '{% from "/etc/hosts" import x %}',
                                       '{% include "en/../../f.flow" %}'])
def test_includes_imports_and_extends_cannot_leave_the_template_folders(tmp_path, statement):
    renderer = write_template(tmp_path, statement)
    with pytest.raises(RenderError, match="not a template under the template folders"):
        renderer.render("evil", "sms", "en", context(), purpose="transactional")


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../../../etc/passwd", "..\\..\\secret.flow", "~/x.flow",
                                  "\\u0000.flow", "", "templates/en/survey.j2"])
def test_import_paths_name_flow_files_relative_to_the_importing_file(tmp_path, path):
    (tmp_path / "a.flow").write_text(f'import "{path}"\non delivered via email\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--format", "json", str(tmp_path / "a.flow")])
    assert result.exit_code == 1 and '"import-not-found"' in result.output
    assert "root:" not in result.output


def test_a_relative_import_of_a_flow_file_above_still_works(tmp_path):
    (tmp_path / "house.flow").write_text('policy house\n  keep consent 3y\n', encoding="utf-8")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.flow").write_text('import "../house.flow"\non delivered via email purpose service\n',
                                               encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--format", "json", str(tmp_path / "flows" / "a.flow")])
    assert "import-not-found" not in result.output and "import-has-errors" not in result.output
