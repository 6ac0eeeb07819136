"""`send` parameters: what the checker lets through, the runtime works out for the template.

The checker refuses a parameter the runtime could not hand to a template (`param-not-value`);
everything it accepts is worked out per message: literals, fields, and arithmetic on numbers and
money, which keeps the currency and is missing when a field it reads is missing.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from linkstar_dsl import ast
from linkstar_dsl.checker import check_text
from linkstar_dsl.parser import parse
from linkstar_dsl.runtime.render_context import ParamError, template_params
from linkstar_dsl.runtime.render_values import Money, Percent

FLOW = '''flow f
  purpose service
  market JP
  on delivered + 48h
  where order.fulfillment != FBA
  via line
  send "survey" ({params})
'''

ORDER = {"id": "O-1", "total": 1999.5, "total_currency": "USD", "item_count": 3, "tracking_url": None}
CUSTOMER = {"id": "C-1", "lifetime_value": 12000, "lifetime_value_currency": "JPY"}
ROWS = {"customer": CUSTOMER, "order": ORDER, "cart": None, "review": None}


def params_of(text: str) -> list[tuple[str, ast.Node]]:
    module = parse(FLOW.format(params=text)).module
    return [(p.name.value, p.value) for p in ast.nodes(module, ast.Param)]


def codes(text: str) -> list[tuple[str, str]]:
    result = check_text(FLOW.format(params=text), "f.flow")
    return [(d.code, d.span.text) for d in result.diagnostics if d.severity.name.lower() == "error"]


@pytest.mark.parametrize("text, value", [
    ("x = order.total * 2", Money(Decimal("3999.0"), "USD")),
    ("x = 2 * order.total", Money(Decimal("3999.0"), "USD")),
    ("x = order.total / 4", Money(Decimal("499.875"), "USD")),
    ("x = order.total - 0.5 USD", Money(Decimal("1999.0"), "USD")),
    ("x = -order.total", Money(Decimal("-1999.5"), "USD")),
    ("x = customer.lifetime_value + 500 JPY", Money(Decimal("12500"), "JPY")),
    ("x = order.item_count * 2 + 1", 7),
    ("x = order.item_count / 2", Decimal("1.5")),
    ("x = 10% ", Percent(Decimal(10))),
    ("x = order.tracking_url", None),
    ("x = (order.item_count + 1) * 0.5", Decimal("2.0")),
])
def test_arithmetic_parameters_are_worked_out_per_message(text, value):
    assert codes(text) == []
    assert template_params(params_of(text), ROWS) == {"x": value}


def test_a_parameter_reading_a_missing_row_is_missing():
    assert template_params(params_of("x = order.total * 2"), {**ROWS, "order": None}) == {"x": None}
    assert template_params(params_of("x = -order.total"), {**ROWS, "order": {"id": "O", "total": None}}) == {"x": None}


@pytest.mark.parametrize("text, error", [
    ("x = order.total + customer.lifetime_value", "adds amounts in USD and JPY"),
    ("x = order.total / (order.item_count - 3)", "divides by zero"),
])
def test_arithmetic_that_fails_on_the_data_fails_the_message_with_a_reason(text, error):
    assert codes(text) == []
    with pytest.raises(ParamError, match=error):
        template_params(params_of(text), ROWS)


@pytest.mark.parametrize("text, refused", [
    ("x = count(ordered within 365d)", "count(ordered within 365d)"),
    ("x = refunded", "refunded"),
    ("x = order.total > 1 JPY", "order.total > 1 JPY"),
    ("x = not refunded", "not refunded"),
    ("x = 10:00", "10:00"),
    ("x = [1, 2]", "[1, 2]"),
    ("x = order.placed_at + 2d", "order.placed_at + 2d"),
    ("x = 2d * 3", "2d * 3"),
    ("x = order.total * count(ordered)", "count(ordered)"),
])
def test_parameters_a_template_cannot_be_given_are_refused_by_the_checker(text, refused):
    assert ("param-not-value", refused) in codes(text)


def test_literals_and_arithmetic_mix_in_one_send():
    text = 'a = "A1", b = 14d, c = 500 JPY, d = order.total * 0.1'
    assert codes(text) == []
    values = template_params(params_of(text), ROWS)
    assert values["d"] == Money(Decimal("199.950"), "USD") and values["c"] == Money(Decimal(500), "JPY")
