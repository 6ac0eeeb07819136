"""Name resolution and type checking against the standard schema."""

from __future__ import annotations

import pytest

from linkstar_dsl.checker import check_text
from linkstar_dsl.codes import CODES
from linkstar_dsl.suggest import did_you_mean, edit_distance


def codes(text: str) -> list[tuple[str, str]]:
    report = check_text(text, "t.flow")
    return [(d.code, d.span.text) for d in report.diagnostics if CODES[d.code].stage in ("names", "types")]


def test_a_correct_flow_has_no_findings():
    assert codes('''
flow ok
  purpose service
  market JP
  on delivered + 48h unless refunded
  where not refunded and not returned and order.fulfillment != FBA
    and order.total >= 5000 JPY and "vip" in customer.tags and order.country in [JP, KR]
    and customer.country == "JP" and review.rating is missing and count(ordered within 365d) >= 3
    and refunded within 30d and order.placed_at + 2d < order.delivered_at
  via line, email
  send "survey" (coupon = "A1", total = order.total * 2)
  exit when unsubscribed
''') == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("on deliverd via line", [("unknown-event", "deliverd")]),
        ("on delivered where not refundd via line", [("unknown-name", "refundd")]),
        ("on delivered where order.totl > 1 JPY", [("unknown-field", "totl")]),
        ("on delivered where custmer.locale == ja", [("unknown-entity", "custmer")]),
        ("on delivered via line, emial", [("unknown-channel", "emial")]),
        ("on delivered purpose servise", [("unknown-purpose", "servise")]),
        ("on delivered market JX", [("unknown-market", "JX")]),
        ("on delivered where order", [("incomplete-path", "order")]),
        ("on delivered where sum(ordered) > 1", [("unknown-function", "sum")]),
    ],
)
def test_unknown_names_are_reported_with_a_suggestion(text, expected):
    assert codes(text) == expected


def test_suggestion_is_a_fix():
    (diag,) = [d for d in check_text("on deliverd via line purpose service").diagnostics if d.code == "unknown-event"]
    assert diag.fix is not None and diag.fix.replacement == "delivered"
    assert diag.help == ("did you mean `delivered`?",)


@pytest.mark.parametrize(
    "condition, code, span",
    [
        ("order.total > 3d", "type-mismatch", "order.total > 3d"),
        ("5000 > order.total", "money-without-currency", "5000"),
        ("order.country == order.fulfillment", "type-mismatch", "order.country == order.fulfillment"),
        ("order.fulfillment == JP", "type-mismatch", "order.fulfillment == JP"),
        ('customer.country == "JX"', "not-a-member", '"JX"'),
        ("order.total", "not-a-condition", "order.total"),
        ("order.total within 3d", "not-an-event", "order.total"),
        ("order.fulfillment > FBA", "not-ordered", "order.fulfillment > FBA"),
        ("order.id in order.total", "not-a-list", "order.total"),
        ("order.total + 1d > 1 JPY", "bad-operands", "order.total + 1d"),
        ("order.total is missing", "never-missing", "order.total is missing"),
    ],
)
def test_type_errors_show_where_and_what(condition, code, span):
    assert codes(f"on delivered where {condition} purpose service") == [(code, span)]


def test_type_mismatch_message_names_both_types():
    (diag,) = [d for d in check_text("on delivered where order.total > 3d purpose service").diagnostics
               if d.code == "type-mismatch"]
    assert diag.message == "`>` cannot compare money with duration"


def test_user_declarations_extend_the_schema():
    assert codes('''
enum tier: gold, silver
entity customer
  tier: tier
event subscription_renewed on customer
on subscription_renewed where customer.tier == gold and customer.locale == ja purpose service
''') == []


def test_unknown_field_type_is_reported():
    assert codes("entity customer\n  vip: bolean\n") == [("unknown-type", "bolean")]


@pytest.mark.parametrize(
    "word, candidates, expected",
    [
        ("vai", ["via", "where"], "via"),
        ("Where", ["where"], "where"),
        ("deliverd", ["delivered", "delivery_failed"], "delivered"),
        ("line", ["IE", "JP"], None),
        ("xyz", ["where"], None),
    ],
)
def test_did_you_mean(word, candidates, expected):
    assert did_you_mean(word, candidates) == expected


def test_edit_distance_counts_a_swap_as_one():
    assert edit_distance("emial", "email") == 1
    assert edit_distance("", "abc") == 3


def test_comparing_a_country_with_a_channel_names_both_types():
    assert codes("on delivered where order.country == line via email purpose service") == [
        ("type-mismatch", "order.country == line")]
    (diag,) = [d for d in check_text("on delivered where order.country == line via email purpose service").diagnostics
               if d.code == "type-mismatch"]
    assert "country" in diag.message and "channel" in diag.message
