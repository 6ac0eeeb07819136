"""Template checks: existence, channel variants, required footers, forbidden content, syntax."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkstar_dsl.checker import check_source
from linkstar_dsl.loader import load


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def check(tmp_path: Path, flow: str, templates: dict[str, str]) -> list[tuple[str, str]]:
    write(tmp_path / "templates", templates)
    (tmp_path / "f.flow").write_text(flow, encoding="utf-8")
    loaded = load(tmp_path / "f.flow")
    report = check_source(loaded.source)
    return [(d.code, d.span.text) for d in report.diagnostics if d.code.startswith(("template", "unknown-template", "whatsapp",
                                                                                    "missing-channel", "missing-locale",
                                                                                    "no-channel"))]


SURVEY = 'flow s\n  purpose service\n  on delivered\n  where order.marketplace == shopify\n  via line, email\n  send "survey"\n'


def test_a_complete_template_set_is_clean(tmp_path):
    assert check(tmp_path, SURVEY, {
        "en/survey.line.j2": "How was your order {{ order.id }}?",
        "en/survey.email.j2": "How was it?",
        "ja/survey.j2": "ご注文の商品はいかがでしたか。",
    }) == []


def test_unknown_template_suggests_the_nearest(tmp_path):
    flow = SURVEY.replace('"survey"', '"survy"')
    found = check(tmp_path, flow, {"en/survey.j2": "x"})
    assert found == [("unknown-template", '"survy"')]


def test_missing_channel_variant(tmp_path):
    assert check(tmp_path, SURVEY, {"en/survey.email.j2": "x"}) == [("missing-channel-variant", "line")]


def test_missing_locale_is_a_note(tmp_path):
    flow = SURVEY.replace("  via line", "  market JP\n  via line")
    assert check(tmp_path, flow, {"en/survey.j2": "x"}) == [
        ("missing-locale", '"survey"'), ("missing-locale", '"survey"')]


MARKETING = ('flow m\n  purpose marketing\n  market US\n  on cart_abandoned\n  where customer.source != amazon\n'
             '  via email\n  send "cart"\n')


def test_marketing_email_must_render_unsubscribe_and_address(tmp_path):
    found = check(tmp_path, MARKETING, {"en/cart.email.j2": "Come back!"})
    assert sorted(found) == [("template-missing-footer", '"cart"')] * 2


def test_footer_in_an_included_partial_counts(tmp_path):
    found = check(tmp_path, MARKETING, {
        "en/cart.email.j2": 'Come back! {% include "_partials/footer.email.j2" %}',
        "_partials/footer.email.j2": "{{ sender_address }} {{ unsubscribe_url }}",
    })
    assert found == []


AMAZON = ('flow r\n  purpose review\n  on delivered + 7d\n  where not refunded and not returned and not a_to_z_claim\n'
          '  via amazon\n  once per order\n  send "review"\n')


@pytest.mark.parametrize("text, found", [
    ("Leave us 5 stars!", "5 stars"),
    ("Use coupon THANKS for 10% off", "coupon"),
    ("See https://example.com/x", "https://example.com/x"),
    ("高評価をお願いします", "高評価"),
])
def test_amazon_templates_may_not_ask_for_ratings_offer_incentives_or_link_out(tmp_path, text, found):
    result = check(tmp_path, AMAZON, {"en/review.amazon.j2": text})
    assert result == [("template-forbidden-content", found)]


def test_amazon_links_are_allowed(tmp_path):
    assert check(tmp_path, AMAZON, {"en/review.amazon.j2": "Review at https://www.amazon.co.jp/review"}) == []


def test_template_syntax_errors_point_into_the_template(tmp_path):
    found = check(tmp_path, SURVEY, {"en/survey.j2": "line one\n{% if x %}unclosed"})
    assert found and found[0][0] == "template-syntax"


def test_flows_outside_a_template_project_are_not_template_checked(tmp_path):
    (tmp_path / "f.flow").write_text(SURVEY, encoding="utf-8")
    report = check_source(load(tmp_path / "f.flow").source)
    assert not [d for d in report.diagnostics if "template" in d.code]


def test_a_language_with_neither_its_template_nor_english_is_an_error(tmp_path):
    flow = SURVEY.replace("  via line", "  market JP\n  via line")
    found = check(tmp_path, flow, {"de/survey.j2": "x"})
    assert set(found) == {("template-missing-language", '"survey"')}


def test_forbidden_content_in_an_included_partial_is_found(tmp_path):
    found = check(tmp_path, AMAZON, {
        "en/review.amazon.j2": 'Thank you. {% include "_partials/sig.j2" %}',
        "_partials/sig.j2": "Visit https://example.com",
    })
    assert found == [("template-forbidden-content", "https://example.com")]


def test_policy_content_categories_must_be_known():
    from linkstar_dsl.checker import check_text

    report = check_text("policy house\n  review template forbids incentivs\n", "p.flow")
    assert [(d.code, d.span.text) for d in report.diagnostics] == [("unknown-content-rule", "incentivs")]


WHATSAPP = ('flow w\n  purpose transactional\n  on delivery_failed\n  where order.marketplace == shopify\n'
            '  via whatsapp\n  send "address"\n')


def test_whatsapp_templates_must_declare_an_approved_template(tmp_path):
    assert check(tmp_path, WHATSAPP, {"en/address.whatsapp.j2": "Please check your address."}) == [
        ("whatsapp-template-unapproved", '"address"')]


def test_whatsapp_template_category_follows_the_purpose(tmp_path):
    header = "{#- whatsapp: template=address_update category=marketing language=en -#}\n"
    assert check(tmp_path, WHATSAPP, {"en/address.whatsapp.j2": header + "Please check."}) == [
        ("whatsapp-template-category", '"address"')]
    ok = "{#- whatsapp: template=address_update category=utility language=en -#}\n"
    assert check(tmp_path, WHATSAPP, {"en/address.whatsapp.j2": ok + "Please check."}) == []
