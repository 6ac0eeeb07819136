"""Rendering messages: every shipped template renders, footers, formats, strict variables, the sandbox,
SMS limits, the channel conventions, and signed links.

Real components throughout: rows come from the demo data generator in an in-memory store, the
example flows are compiled for their purposes and `send` parameters, and templates are read from
`stdlib/templates` and `examples/templates` (or written to a temporary folder for one case).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstar_dsl.adapters.messages import AmazonSolicitation, Email, LineFlex, Text, WhatsAppTemplate
from linkstar_dsl.demo_data import generate
from linkstar_dsl.policies import MARKET_COUNTRIES
from linkstar_dsl.runtime import links
from linkstar_dsl.runtime.program import compile_paths
from linkstar_dsl.runtime.render import Renderer, RenderError
from linkstar_dsl.runtime.render_context import RenderSettings, render_context, template_params
from linkstar_dsl.runtime.render_sms import sms_size
from linkstar_dsl.runtime.render_values import Duration, Money, Percent
from linkstar_dsl.store import open_store
from linkstar_dsl.templates import FOOTER_VARIABLES, TemplateStore, stdlib_root, whatsapp_header

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SECRET = "test-link-secret-0123456789abcdef"
SETTINGS = RenderSettings.demo(link_secret=SECRET, link_base_url="https://links.example.com")
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
#: The country whose buyers read each template language, to pick demo customers.
HOME = {"ja": "JP", "en": "US", "de": "DE", "fr": "FR", "es": "ES", "it": "IT"}


# ------------------------------------------------------------------------------------------ fixtures


def _rows(con, sql: str, *args) -> list[dict]:
    cursor = con.execute(sql, list(args))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def demo():
    """Per (locale, country) of the demo's buyers: a customer, their latest order, a cart and a review."""
    con = open_store(":memory:")
    generate(con, orders=400)
    people = {}
    for customer in _rows(con, "SELECT * FROM customers WHERE order_count > 0 ORDER BY id"):
        key = (customer["locale"], customer["country"])
        if key in people:
            continue
        order = _rows(con, "SELECT * FROM orders WHERE customer_id = ? ORDER BY placed_at DESC LIMIT 1",
                      customer["id"])[0]
        carts = _rows(con, "SELECT * FROM carts WHERE customer_id = ? LIMIT 1", customer["id"]) or \
            _rows(con, "SELECT * FROM carts ORDER BY total_currency = ? DESC, id LIMIT 1", order["total_currency"])
        cart = {**carts[0], "customer_id": customer["id"], "total_currency": order["total_currency"]}
        review = {"order_id": order["id"], "rating": 2, "text": "Arrived damaged.", "reviewed_at": NOW}
        people[key] = (customer, order, cart, review)
    con.close()
    return people


@pytest.fixture(scope="module")
def example_sends():
    """template name → (purpose, params, obligations) of the example flow that sends it."""
    program = compile_paths([EXAMPLES])
    sends = {}
    for plan in program.plans:
        for step in plan.steps:
            for message in step.messages:
                sends.setdefault(message.template, (plan.purpose, message.params, plan.obligations))
    return sends


def person(demo, locale: str):
    return demo[(locale, HOME[locale])]


def context_for(rows, channel: str, params=None, key: str = "flow:0:occ1", **settings_changes):
    customer, order, cart, review = rows
    chosen = SETTINGS if not settings_changes else RenderSettings.demo(link_secret=SECRET, **settings_changes)
    return render_context(customer, order, cart, chosen, key, channel, NOW, params=params, review=review)


def requirements(obligations, channel: str, country: str) -> set[str]:
    """What the runtime passes as `requires`: the policies' footer requirements for this buyer."""
    markets = {m for m, members in MARKET_COUNTRIES.items() if country in members}
    return {ob.requirement for ob in obligations if ob.requirement in FOOTER_VARIABLES
            and (ob.market is None or ob.market in markets) and (not ob.channels or channel in ob.channels)}


def write(root: Path, files: dict[str, str]) -> Renderer:
    for name, text in files.items():
        path = root / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "f.flow").write_text("on delivered via email\n", encoding="utf-8")
    return Renderer.for_flow_file(root / "f.flow", SETTINGS)


def all_text(content) -> str:
    if isinstance(content, Email):
        return "\n".join([content.subject, content.text, content.html or ""])
    if isinstance(content, Text):
        return content.body
    if isinstance(content, LineFlex):
        return json.dumps(content.contents, ensure_ascii=False)
    if isinstance(content, WhatsAppTemplate):
        return "\n".join(p["text"] for c in content.components for p in c["parameters"])
    return ""


# ------------------------------------------------------------------------ every shipped template


def _template_files():
    for root in (EXAMPLES / "templates", stdlib_root()):
        for files in TemplateStore([root]).files.values():
            yield from files


TEMPLATE_FILES = sorted(_template_files(), key=lambda tf: str(tf.path))


@pytest.mark.parametrize("tf", TEMPLATE_FILES, ids=lambda tf: str(tf.path.relative_to(ROOT)))
def test_every_template_renders_for_its_readers(tf, demo, example_sends):
    from_examples = EXAMPLES in tf.path.parents
    renderer = Renderer.for_flow_file(EXAMPLES / "x.flow" if from_examples else None, SETTINGS)
    rows = person(demo, tf.locale)
    country = rows[0]["country"]
    if from_examples and tf.name in example_sends:
        purpose, params, obligations = example_sends[tf.name]
        purposes = [purpose]
    else:  # a standard default, or an example no flow sends yet: it must hold for any purpose
        params, obligations = {"discount": Percent(Decimal(10)), "coupon": "WELCOME10"}, ()
        purposes = ["transactional", "marketing"]
    for purpose in purposes:
        context = context_for(rows, tf.channel, params)
        requires = requirements(obligations, tf.channel, country)
        content = renderer.render(tf.name, tf.channel, tf.locale, context, purpose=purpose, requires=requires)
        preview = renderer.preview(tf.name, tf.channel, tf.locale, context, purpose=purpose)
        _check_content(tf, content, context, purpose, requires, preview)


def _check_content(tf, content, context, purpose, requires, preview):
    text = all_text(content)
    assert "None" not in text and "Undefined" not in text
    if tf.channel == "email":
        assert isinstance(content, Email) and content.subject and content.text
        assert "\n" not in content.subject
    elif tf.channel == "whatsapp":
        header = whatsapp_header(tf)
        assert isinstance(content, WhatsAppTemplate)
        assert (content.name, content.language) == (header["template"], header["language"])
        parameters = content.components[0]["parameters"]
        assert all(p["text"] and "\n" not in p["text"] for p in parameters)
        assert "None" not in preview
        if purpose == "marketing":
            assert "STOP" in preview and context["sender_name"] in preview
    elif tf.channel == "amazon":
        assert content == AmazonSolicitation() if purpose == "review" else isinstance(content, Text)
    elif tf.channel == "webhook":
        body = json.loads(content.body)
        assert body["order_id"] == context["order"]["id"]
    else:
        assert isinstance(content, Text) and content.body
    if tf.channel == "sms":
        assert sms_size(content.body).segments <= SETTINGS.max_sms_segments
    if purpose == "marketing" and tf.channel in ("email", "line"):
        assert context["unsubscribe_url"] in text and context["sender_name"] in text
    if purpose == "marketing" and tf.channel == "email":
        assert context["unsubscribe_url"] in content.html and context["sender_address"] in content.text
    if purpose == "marketing" and tf.channel == "sms":
        assert "STOP" in content.body and context["sender_name"] in content.body
    for requirement in requires:
        if requirement == "unsubscribe_link" and tf.channel in ("sms", "whatsapp"):
            assert "STOP" in (content.body if tf.channel == "sms" else preview)
        else:
            assert context[FOOTER_VARIABLES[requirement]] in text


STDLIB_NAMES = sorted(TemplateStore([stdlib_root()]).files)


@pytest.mark.parametrize("channel", ["email", "line", "sms", "whatsapp"])
def test_every_demo_buyer_gets_every_standard_message(channel, demo):
    """Every language and country of the demo's buyers (`zh` in Australia, `fr` in Canada, …) falls back to a
    template that renders, with the footers a marketing message needs."""
    renderer = Renderer.for_flow_file(None, SETTINGS)
    for (locale, country), rows in sorted(demo.items()):
        for name in STDLIB_NAMES:
            context = context_for(rows, channel)
            content = renderer.render(name, channel, locale, context, purpose="marketing")
            text = all_text(content)
            if channel in ("email", "line"):
                assert context["unsubscribe_url"] in text, (name, locale, country)
            if channel == "whatsapp":
                assert content.name == name


# ------------------------------------------------------------------------------- formats per locale


def _ordered_email(demo, locale, total: Decimal, currency: str) -> Email:
    customer, order, cart, review = person(demo, locale)
    rows = (customer, {**order, "total": total, "total_currency": currency}, cart, review)
    return Renderer.for_flow_file(None, SETTINGS).render("ordered", "email", locale, context_for(rows, "email"),
                                                         purpose="transactional")


@pytest.mark.parametrize("locale, total, currency, shown", [
    ("ja", Decimal("3980"), "JPY", "￥3,980"),
    ("en", Decimal("39.80"), "USD", "$39.80"),
    ("de", Decimal("39.80"), "EUR", "39,80\xa0€"),
    ("fr", Decimal("1234.50"), "EUR", "1\u202f234,50\xa0€"),
])
def test_money_in_a_standard_template_is_formatted_for_the_reader(demo, locale, total, currency, shown):
    email = _ordered_email(demo, locale, total, currency)
    assert shown in email.text and shown in email.html


def test_money_date_and_time_filters_use_the_recipients_locale_and_zone(tmp_path):
    formats = ("{{ 3980|money('JPY') }}|{{ order.total|money }}|{{ order.total }}|{{ order.placed_at|date }}|"
               "{{ order.placed_at|datetime }}|{{ params.share }}|{{ params.valid }}")
    renderer = write(tmp_path, {f"{language}/fmt.webhook.j2": formats for language in ("en", "ja", "de")})
    placed = datetime(2026, 8, 4, 15, 30, tzinfo=UTC)
    for locale, country, zone, expected in [
        ("ja", "JP", "Asia/Tokyo", ["￥3,980", "￥3,980", "2026/08/05", "2026/08/05 0:30", "10%", "14日"]),
        ("en-US", "US", "America/Los_Angeles", ["¥3,980", "¥3,980", "Aug 4, 2026", "Aug 4, 2026, 8:30\u202fAM",
                                                "10%", "14 days"]),
        ("de", "DE", "Europe/Berlin", ["3.980\xa0¥", "3.980\xa0¥", "04.08.2026", "04.08.2026, 17:30", "10\xa0%",
                                       "14 Tage"]),
    ]:
        customer = {"id": "c1", "locale": locale, "country": country, "timezone": zone}
        order = {"id": "o1", "total": Decimal("3980"), "total_currency": "JPY", "placed_at": placed}
        context = render_context(customer, order, None, SETTINGS, "k:0:e", "webhook", NOW,
                                 params={"share": Percent(Decimal(10)), "valid": Duration(14, "d")})
        body = renderer.render("fmt", "webhook", locale, context, purpose="service").body
        assert body.split("|") == [expected[0], expected[1], expected[1], *expected[2:]]


def test_a_bad_currency_is_a_clear_error(tmp_path):
    renderer = write(tmp_path, {"en/bad.webhook.j2": "{{ 5|money('yen') }}"})
    with pytest.raises(RenderError, match=r"bad\.webhook\.j2:1: .*three-letter currency code"):
        renderer.render("bad", "webhook", "en", _plain_context(), purpose="service")


# ---------------------------------------------------------------------------- strict variables


def _plain_context(channel="sms", **customer):
    customer = {"id": "c1", "name": "Emily Smith", "locale": "en", "country": "US",
                "timezone": "America/New_York", **customer}
    order = {"id": "o1", "total": Decimal("39.80"), "total_currency": "USD", "tracking_url": None,
             "placed_at": NOW}
    return render_context(customer, order, None, SETTINGS, "flow:0:e1", channel, NOW)


def test_a_misspelt_field_names_template_line_and_field(tmp_path):
    renderer = write(tmp_path, {"en/note.sms.j2": "Hello {{ customer.name }},\nyour parcel: {{ order.trackng_url }}"})
    with pytest.raises(RenderError) as caught:
        renderer.render("note", "sms", "en", _plain_context(), purpose="transactional")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path.name}/templates/en/note.sms.j2:2: ")
    assert "`order.trackng_url` does not exist" in message and "did you mean `order.tracking_url`?" in message


def test_an_unknown_variable_is_an_error_with_a_suggestion(tmp_path):
    renderer = write(tmp_path, {"en/note.sms.j2": "Hi\n\n{{ sender_nam }}"})
    with pytest.raises(RenderError, match=r"note\.sms\.j2:3: `sender_nam` is not a variable of this message "
                                          r"\(did you mean `sender_name`\?\)"):
        renderer.render("note", "sms", "en", _plain_context(), purpose="transactional")


def test_a_missing_value_is_never_printed_as_none_or_blank(tmp_path):
    renderer = write(tmp_path, {"en/note.sms.j2": "Track it:\n{{ order.tracking_url }}"})
    with pytest.raises(RenderError, match=r"note\.sms\.j2:2: prints a value that is missing"):
        renderer.render("note", "sms", "en", _plain_context(), purpose="transactional")


def test_a_message_without_an_order_says_so(tmp_path):
    renderer = write(tmp_path, {"en/hello.sms.j2": "Order {{ order.id }}"})
    context = render_context({"id": "c1", "locale": "en", "country": "US"}, None, None, SETTINGS, "f:0:e", "sms", NOW)
    with pytest.raises(RenderError, match=r"`order\.id` is asked for, but this message has no order"):
        renderer.render("hello", "sms", "en", context, purpose="transactional")


def test_template_syntax_errors_name_the_line(tmp_path):
    renderer = write(tmp_path, {"en/broken.sms.j2": "Hi\n{% if customer.name %}there"})
    with pytest.raises(RenderError, match=r"broken\.sms\.j2:2: template syntax"):
        renderer.render("broken", "sms", "en", _plain_context(), purpose="transactional")


# ----------------------------------------------------------------------------------- the sandbox


@pytest.mark.parametrize("expression", [
    "''.__class__.__mro__",
    "cycler.__init__.__globals__",
    "customer.__class__",
    "order.items.__self__",
    "self._TemplateReference__context",
])
def test_the_sandbox_stops_walking_into_python_internals(tmp_path, expression):
    renderer = write(tmp_path, {"en/evil.sms.j2": "x {{ " + expression + " }}"})
    with pytest.raises(RenderError, match=r"evil\.sms\.j2:1: not allowed in a template: access to attribute"):
        renderer.render("evil", "sms", "en", _plain_context(), purpose="transactional")


def test_the_sandbox_is_immutable(tmp_path):
    renderer = write(tmp_path, {"en/evil.sms.j2": "{% set seen = [] %}{{ seen.append(1) }}"})
    with pytest.raises(RenderError, match="not allowed in a template"):
        renderer.render("evil", "sms", "en", _plain_context(), purpose="transactional")


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "en/survey", "Survey", "survey.sms"])
def test_a_template_name_cannot_be_a_path(name):
    renderer = Renderer.for_flow_file(None, SETTINGS)
    with pytest.raises(RenderError, match="is not a template name"):
        renderer.render(name, "sms", "en", _plain_context())


@pytest.mark.parametrize("target", ["../../../../etc/passwd", "/etc/passwd", "_partials/../../f.flow"])
def test_includes_cannot_leave_the_template_folders(tmp_path, target):
    renderer = write(tmp_path, {"en/sneaky.sms.j2": '{% include "' + target + '" %}'})
    with pytest.raises(RenderError, match="is not a template under the template folders"):
        renderer.render("sneaky", "sms", "en", _plain_context(), purpose="transactional")


def test_a_symlink_out_of_the_template_folder_is_refused(tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("do not show", encoding="utf-8")
    renderer = write(tmp_path, {"en/sneaky.sms.j2": '{% include "_partials/link.j2" %}', "_partials/ok.j2": ""})
    os.symlink(secret, tmp_path / "templates" / "_partials" / "link.j2")
    with pytest.raises(RenderError, match="not a template under the template folders"):
        renderer.render("sneaky", "sms", "en", _plain_context(), purpose="transactional")


def test_html_parts_are_escaped_and_text_parts_are_not(demo):
    customer, order, cart, review = person(demo, "en")
    rows = ({**customer, "name": "Tom & <Jerry>"}, order, cart, review)
    email = Renderer.for_flow_file(None, SETTINGS).render("shipped", "email", "en", context_for(rows, "email"),
                                                          purpose="transactional")
    assert "Tom &amp; &lt;Jerry&gt;" in email.html and "<Jerry>" not in email.html and "&amp;amp;" not in email.html
    assert "Tom & <Jerry>" in email.text


# ----------------------------------------------------------------------------------------- footers


def test_a_marketing_line_message_without_footer_gets_the_readers_footer(tmp_path):
    renderer = write(tmp_path, {"ja/sale.line.j2": "セールを開催しております。"})
    context = _plain_context("line", locale="ja", country="JP")
    body = renderer.render("sale", "line", "ja", context, purpose="marketing").body
    assert body.startswith("セールを開催しております。\n\n――――――")
    assert context["unsubscribe_url"] in body and f"{SETTINGS.sender_name}（広告）" in body


def test_a_service_message_gets_no_footer_and_no_ad_notice(tmp_path):
    renderer = write(tmp_path, {"ja/thanks.line.j2": "ありがとうございました。{% if ad_notice %}{{ ad_notice }}{% endif %}"})
    context = _plain_context("line", locale="ja", country="JP")
    assert renderer.render("thanks", "line", "ja", context, purpose="service") == Text("ありがとうございました。")


def test_a_marketing_email_without_footer_gets_it_in_both_parts(tmp_path):
    renderer = write(tmp_path, {"de/sale.email.j2": (
        "{% block subject %}Sale{% endblock %}{% block text %}Jetzt zugreifen.{% endblock %}"
        "{% block html %}<html><body><p>Jetzt zugreifen.</p></body></html>{% endblock %}")})
    context = _plain_context("email", locale="de", country="DE")
    email = renderer.render("sale", "email", "de", context, purpose="marketing", requires={"sender_address"})
    assert "Absender: " in email.text and context["unsubscribe_url"] in email.text
    assert SETTINGS.sender_address in email.text
    assert email.html.endswith("</body></html>") and context["unsubscribe_url"] in email.html


def test_a_marketing_sms_gets_sender_and_stop(tmp_path):
    renderer = write(tmp_path, {"en/sale.sms.j2": "20% off today only."})
    body = renderer.render("sale", "sms", "en", _plain_context(), purpose="marketing").body
    assert body == f"20% off today only.\n\n{SETTINGS.sender_name}. Reply STOP to opt out."


def test_a_footer_that_cannot_meet_a_requirement_stops_the_message(tmp_path):
    renderer = write(tmp_path, {"en/note.line.j2": "Your parcel is on its way."})
    with pytest.raises(RenderError, match="does not show the sender's address"):
        renderer.render("note", "line", "en", _plain_context("line"), purpose="transactional",
                        requires={"sender_address"})


def test_an_approved_whatsapp_template_without_opt_out_is_refused_for_marketing(tmp_path):
    renderer = write(tmp_path, {"en/sale.whatsapp.j2": (
        "{#- whatsapp: template=sale category=marketing language=en -#}\nSale for {{ customer.name }}")})
    with pytest.raises(RenderError, match="a footer cannot be added to an approved template"):
        renderer.render("sale", "whatsapp", "en", _plain_context("whatsapp"), purpose="marketing")


# ------------------------------------------------------------------------------------ SMS lengths


def test_sms_segments_follow_gsm7_and_ucs2():
    assert sms_size("a" * 160).segments == 1 and sms_size("a" * 161).segments == 2
    assert sms_size("a" * 306).segments == 2 and sms_size("a" * 307).segments == 3
    assert sms_size("€" * 80).units == 160 and sms_size("€" * 80).segments == 1
    assert sms_size("あ" * 70) == sms_size("あ" * 70) and sms_size("あ" * 70).segments == 1
    assert sms_size("あ" * 71).segments == 2 and sms_size("あ" * 71).encoding == "UCS-2"
    assert sms_size("😀" * 35).units == 70 and sms_size("😀" * 36).segments == 2


def test_an_sms_over_the_segment_limit_is_refused(tmp_path):
    renderer = write(tmp_path, {"en/long.sms.j2": "{{ 'word ' * 100 }}", "en/accent.sms.j2": "{{ 'Ça va — ' * 10 }}"})
    with pytest.raises(RenderError, match=r"long\.sms\.j2: the SMS is 499 GSM-7 characters, 4 segments; at most 3"):
        renderer.render("long", "sms", "en", _plain_context(), purpose="transactional")
    with pytest.raises(RenderError, match=r"'—' makes it UCS-2"):
        Renderer.for_flow_file(tmp_path / "f.flow", RenderSettings.demo(max_sms_segments=1)).render(
            "accent", "sms", "en", _plain_context(), purpose="transactional")


def test_the_segment_limit_is_configurable(demo):
    customer, order, cart, review = person(demo, "ja")
    rows = (customer, {**order, "tracking_url": "https://track.example.com/yamato/123456789012"}, cart, review)
    strict = Renderer.for_flow_file(None, RenderSettings.demo(max_sms_segments=1))
    with pytest.raises(RenderError, match="UCS-2 code units, 2 segments; at most 1 segment allowed"):
        strict.render("shipped", "sms", "ja", context_for(rows, "sms"), purpose="transactional")


# ------------------------------------------------------------------------------ lookup and channels


def test_lookup_goes_from_the_readers_locale_to_english(tmp_path):
    renderer = write(tmp_path, {"ja/note.line.j2": "ja line", "ja/note.j2": "ja any", "en/note.line.j2": "en line",
                                "de/note.j2": "de any"})
    context = _plain_context("line")

    def shown(channel, locale, **options):
        return renderer.render("note", channel, locale, context, purpose="transactional", **options).body

    assert shown("line", "ja-JP") == "ja line"
    assert shown("sms", "ja_JP") == "ja any"
    assert shown("line", "ko-KR") == "en line"
    assert shown("sms", "nl", market="DE") == "de any"
    with pytest.raises(RenderError, match='template "note" has no variant for sms'):
        shown("sms", "en-US")
    with pytest.raises(RenderError, match='there is no template "nope"'):
        renderer.render("nope", "sms", "en", context)


def test_a_line_flex_template_becomes_a_flex_message(tmp_path):
    flex = ('{#- line: flex alt="ご注文の商品を発送いたしました" -#}\n'
            '{"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": ['
            '{"type": "text", "text": {{ ("ご注文 " ~ order.id)|tojson }}},'
            '{"type": "text", "text": {{ sender_name|tojson }}},'
            '{"type": "button", "action": {"type": "uri", "label": "配信停止", "uri": {{ unsubscribe_url|tojson }}}}]}}')
    renderer = write(tmp_path, {"ja/shipped.line.j2": flex, "ja/bad.line.j2": '{#- line: flex alt="x" -#}\n{"type": '})
    context = _plain_context("line", locale="ja", country="JP")
    content = renderer.render("shipped", "line", "ja", context, purpose="marketing")
    assert isinstance(content, LineFlex) and content.alt_text == "ご注文の商品を発送いたしました"
    assert content.contents["body"]["contents"][0]["text"] == "ご注文 o1"
    with pytest.raises(RenderError, match="not valid JSON"):
        renderer.render("bad", "line", "ja", context, purpose="transactional")


def test_whatsapp_body_parameters_are_the_printed_values(demo):
    rows = person(demo, "en")
    context = context_for(rows, "whatsapp")
    content = Renderer.for_flow_file(None, SETTINGS).render("shipped", "whatsapp", "en", context,
                                                            purpose="transactional")
    order = rows[1]
    values = [p["text"] for p in content.components[0]["parameters"]]
    assert content.name == "shipped" and content.language == "en"
    assert values == [rows[0]["name"], order["id"], order["tracking_url"], SETTINGS.sender_name]


def test_amazon_review_requests_send_no_text_of_ours(demo):
    renderer = Renderer.for_flow_file(EXAMPLES / "x.flow", SETTINGS)
    context = context_for(person(demo, "de"), "amazon")
    assert renderer.render("amazon_review_request", "amazon", "de", context, purpose="review") == AmazonSolicitation()
    preview = renderer.preview("amazon_review_request", "amazon", "de", context, purpose="review")
    assert context["order"]["id"] in preview
    problem = renderer.render("delivery_problem", "amazon", "de", context, purpose="transactional")
    assert isinstance(problem, Text) and context["order"]["id"] in problem.body


def test_webhook_json_must_stay_valid(tmp_path):
    renderer = write(tmp_path, {"en/hook.webhook.j2": '{"name": "{{ customer.name }}"}'})
    context = _plain_context("webhook", name='Emily "Em" Smith')
    with pytest.raises(RenderError, match="looks like JSON but is not valid.*tojson"):
        renderer.render("hook", "webhook", "en", context, purpose="service")


@pytest.mark.parametrize("change, error", [
    ({"purpose": "spam"}, "is not a purpose"),
    ({"locale": "en;rm -rf"}, "is not a locale"),
    ({"channel": "../sms"}, "is not a channel name"),
    ({"context": ["not", "a", "mapping"]}, "must be a mapping"),
])
def test_bad_arguments_are_clear_errors(change, error):
    arguments = {"template_name": "shipped", "channel": "sms", "locale": "en", "context": _plain_context(),
                 "purpose": "transactional", **change}
    with pytest.raises(RenderError, match=error):
        Renderer.for_flow_file(None, SETTINGS).render(**arguments)


# ---------------------------------------------------------------------------------- the context


def test_the_context_carries_signed_links_and_shop_urls(demo, example_sends):
    customer, order, cart, review = rows = person(demo, "ja")
    context = context_for(rows, "line", key="jp_post_delivery_survey:0:ev9")
    payload = links.verify(context["unsubscribe_url"].rsplit("/", 1)[1], SECRET, NOW, action="unsubscribe")
    assert (payload.customer_id, payload.channel, payload.message_key) == (customer["id"], "line",
                                                                          "jp_post_delivery_survey:0:ev9")
    assert context["unsubscribe_url"].startswith("https://links.example.com/u/")
    assert context["preferences_url"].startswith("https://links.example.com/p/")
    assert context["review_url"] == f"https://shop.example.com/orders/{order['id']}/review"
    assert context["survey_url"] == f"https://shop.example.com/orders/{order['id']}/survey"
    assert context["tracking_url"] == order["tracking_url"] and context["ad_notice"] == "広告"
    assert context["timezone"] == "Asia/Tokyo"


def test_send_parameters_from_a_compiled_flow(demo, example_sends):
    customer, order, cart, review = person(demo, "en")
    rows = {"customer": customer, "order": order, "cart": cart, "review": review}
    assert template_params(example_sends["birthday_coupon"][1], rows) == {
        "coupon": "HAPPYBDAY10", "discount": Percent(Decimal(10)), "valid_for": Duration(14, "d")}
    assert template_params(example_sends["a_to_z_alert"][1], rows) == {
        "order_id": order["id"], "total": Money(order["total"], order["total_currency"])}
    assert template_params(example_sends["helpdesk_ticket_low_rating"][1], rows)["rating"] == 2


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="shop_url must be an http"):
        RenderSettings.demo(shop_url="shop.example.com")
    with pytest.raises(ValueError, match="max_sms_segments must be a whole number of at least 1"):
        RenderSettings.demo(max_sms_segments=0)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        RenderSettings.demo(link_secret="short")
    assert RenderSettings.demo().uses_demo_secret and not SETTINGS.uses_demo_secret
    assert RenderSettings.from_env({links.SECRET_ENV: SECRET}, sender_name="S", sender_address="A",
                                   shop_url="https://s.example.com").secret == SECRET


# ------------------------------------------------------------------------------------------ links

KEYS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(customer=KEYS, channel=st.sampled_from(["email", "line", "sms", "whatsapp"]), key=KEYS,
       lifetime=st.integers(min_value=1, max_value=10 * 365 * 86400))
def test_link_tokens_round_trip(customer, channel, key, lifetime):
    expires = NOW + timedelta(seconds=lifetime)
    url = links.unsubscribe_url("https://links.example.com/", SECRET, key, customer, channel, expires)
    assert url.startswith("https://links.example.com/u/")
    token = url.rsplit("/", 1)[1]
    assert all(c.isascii() and (c.isalnum() or c in "-_.") for c in token)
    payload = links.verify(token, SECRET, NOW)
    assert (payload.customer_id, payload.channel, payload.message_key, payload.action) == \
        (customer, channel, key, "unsubscribe")
    assert payload.expires == expires.replace(microsecond=0)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_any_string_is_refused_cleanly(garbage):
    with pytest.raises(links.LinkError) as caught:
        links.verify(garbage, SECRET, NOW)
    assert caught.value.reason in ("malformed", "forged")


def _token(**overrides) -> str:
    fields = {"key": "f:0:e1", "customer_id": "c1", "channel": "email", "expires": NOW + timedelta(days=30), **overrides}
    return links.sign(SECRET, "unsubscribe", **fields)


def test_forged_expired_and_misused_tokens_are_refused():
    token = _token()
    payload, signature = token.split(".")
    tampered = links._b64encode(links._b64decode(payload).replace(b'"c1"', b'"c2"'))
    with pytest.raises(links.LinkError, match="does not match") as caught:
        links.verify(f"{tampered}.{signature}", SECRET, NOW)
    assert caught.value.reason == "forged"
    with pytest.raises(links.LinkError) as caught:
        links.verify(token, "another-secret-0123456789", NOW)
    assert caught.value.reason == "forged"
    with pytest.raises(links.LinkError, match="expired at 2026-12-02T03:00:00Z") as caught:
        links.verify(token, SECRET, NOW + timedelta(days=30))
    assert caught.value.reason == "expired"
    assert links.verify(token, SECRET, NOW + timedelta(days=30) - timedelta(seconds=1)).customer_id == "c1"
    preferences = links.preferences_url("https://links.example.com", SECRET, "f:0:e1", "c1", "email",
                                        NOW + timedelta(days=1)).rsplit("/", 1)[1]
    with pytest.raises(links.LinkError, match="this is a preferences link, not a unsubscribe link"):
        links.verify(preferences, SECRET, NOW, action="unsubscribe")


def test_link_arguments_are_checked():
    with pytest.raises(ValueError, match="at least 16 bytes"):
        links.unsubscribe_url("https://x.example.com", "short", "k", "c1", "email", NOW)
    with pytest.raises(ValueError, match="time-zone-aware"):
        links.unsubscribe_url("https://x.example.com", SECRET, "k", "c1", "email", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="must start with https://"):
        links.unsubscribe_url("javascript:alert(1)", SECRET, "k", "c1", "email", NOW)
    with pytest.raises(ValueError, match="non-empty customer id"):
        links.unsubscribe_url("https://x.example.com", SECRET, "k", "", "email", NOW)
    assert links.secret_from_env({}) is None
    assert links.DEMO_SECRET and RenderSettings.demo().secret == links.DEMO_SECRET


def test_dates_without_time_and_birthdays(tmp_path):
    renderer = write(tmp_path, {"ja/bday.line.j2": "{{ customer.birthday|date('long') }}",
                                "ja/bad.line.j2": "{{ customer.birthday|datetime }}"})
    context = _plain_context("line", locale="ja", country="JP", birthday=date(1990, 3, 9))
    assert renderer.render("bday", "line", "ja", context, purpose="service").body == "1990年3月9日"
    with pytest.raises(RenderError, match="a day without a time; use the `date` filter"):
        renderer.render("bad", "line", "ja", context, purpose="service")
