"""The parser builds the right AST for every construct, with spans on the exact source text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from linkstar_dsl import ast
from linkstar_dsl.parser import escape, parse, unescape


def module(text: str) -> ast.Module:
    result = parse(text, "t.flow")
    assert result.ok, [d.message for d in result.diagnostics]
    return result.module


def only_flow(text: str) -> ast.Flow:
    (flow,) = module(text).flows
    return flow


def test_design_card_one_liner():
    flow = only_flow("on delivered + 48h where not refunded via line, email")
    assert flow.name is None
    trigger, where, via = flow.clauses
    assert trigger.event.value == "delivered"
    assert trigger.offset.sign == "+" and trigger.offset.seconds == 48 * 3600
    assert isinstance(where.expr, ast.Not)
    assert where.expr.operand.dotted == "refunded"
    assert [c.value for c in via.channels] == ["line", "email"]


def test_spans_cover_exactly_the_written_text():
    text = "on delivered + 48h where not refunded via line, email"
    flow = only_flow(text)
    trigger, where, via = flow.clauses
    assert trigger.span.text == "on delivered + 48h"
    assert where.span.text == "where not refunded"
    assert via.span.text == "via line, email"
    assert via.channels[1].span.text == "email"
    assert flow.span.text == text
    assert (via.span.start_line, via.span.start_column) == (1, 39)
    assert (via.span.end_line, via.span.end_column) == (1, len(text) + 1)


def test_spans_count_characters_not_bytes():
    text = '# 日本の購入者向け\non delivered via line send "アンケート" where order.total > 1 JPY'
    flow = only_flow(text)
    send = flow.find(ast.Send)[0]
    assert send.template.value == "アンケート"
    assert send.span.text == 'send "アンケート"'
    where = flow.find(ast.Where)[0]
    assert (where.span.start_line, where.span.start_column) == (2, 36)


def test_long_form_with_every_flow_clause():
    flow = only_flow('''
flow jp_survey "Survey"
  purpose service
  market JP, US
  on delivered + 2d at 10:00 local unless refunded
  where not refunded and order.fulfillment != FBA
  via line, email
  send "survey" (coupon = "X1", percent = 10%)
  between 10:00 and 18:00 local
  cooldown 30d per customer across flows
  cap 4 per 30d per customer
  expire after 3d
  exit when unsubscribed
  holdout 10%
  once per order
''')
    assert flow.name.value == "jp_survey" and flow.title.value == "Survey"
    kinds = [type(c).__name__ for c in flow.clauses]
    assert kinds == ["Purpose", "Market", "Trigger", "Where", "Via", "Send", "Window", "Cooldown",
                     "Cap", "Expire", "Exit", "Holdout", "Once"]
    trigger = flow.trigger
    assert (trigger.at.time.hour, trigger.at.time.minute, trigger.at.local) == (10, 0, True)
    assert trigger.unless.dotted == "refunded"
    send = flow.find(ast.Send)[0]
    assert [p.name.value for p in send.params] == ["coupon", "percent"]
    assert send.params[1].value.value == Decimal(10)
    cooldown = flow.find(ast.Cooldown)[0]
    assert (cooldown.duration.seconds, cooldown.per.value, cooldown.across.value) == (30 * 86400, "customer", "flows")
    cap = flow.find(ast.Cap)[0]
    assert (cap.count.value, cap.window.unit, cap.per.value, cap.across) == (4, "d", "customer", None)
    window = flow.find(ast.Window)[0]
    assert (window.start.hour, window.end.hour, window.local) == (10, 18, True)


def test_steps_own_the_via_send_and_split_after_them():
    flow = only_flow('''
flow cart
  purpose marketing
  on cart_abandoned
  via email
  step + 1h send "a"
  step + 24h via line, sms send "b"
  step + 7d split 50% send "c", 50% send "d" (code = "X")
  exit when ordered or unsubscribed
  holdout 10%
''')
    assert [type(c).__name__ for c in flow.clauses] == [
        "Purpose", "Trigger", "Via", "Step", "Step", "Step", "Exit", "Holdout"]
    first, second, third = flow.steps
    assert [type(c).__name__ for c in first.clauses] == ["Send"]
    assert [type(c).__name__ for c in second.clauses] == ["Via", "Send"]
    split = third.clauses[0]
    assert [a.percent.value for a in split.arms] == [50, 50]
    assert split.arms[1].send.params[0].name.value == "code"
    assert second.span.text == 'step + 24h via line, sms send "b"'


def test_several_header_less_flows_follow_one_another():
    mod = module("on delivered via line\non shipped + 1h via email purpose transactional\n")
    assert [f.trigger.event.value for f in mod.flows] == ["delivered", "shipped"]


def test_named_flow_may_put_clauses_before_its_trigger():
    flow = only_flow("flow f purpose service where x via email on delivered")
    assert [type(c).__name__ for c in flow.clauses] == ["Purpose", "Where", "Via", "Trigger"]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("a or b and c", ("or", "and")),
        ("not a and b", ("and", "not")),
        ("a and (b or c)", ("and", "or")),
    ],
)
def test_boolean_precedence(source, expected):
    expr = only_flow(f"on x where {source}").clauses[1].expr
    assert expr.op == expected[0]
    inner = expr.operands[1] if expected[1] != "not" else expr.operands[0]
    assert (inner.op if isinstance(inner, ast.BoolOp) else "not") == expected[1]


def test_expression_forms():
    text = ('on x where order.total >= 5000 JPY and "vip" in customer.tags '
            'and order.country not in [JP, KR] and review.rating is missing and phone is present '
            'and refunded within 30d and count(ordered within 365d) >= 3 and 48h + 2d > 1w '
            'and -a * 2 - b / 3 == 0 and true != false and 1.5 < 2 and order.placed_at > 09:30')
    ops = only_flow(text).clauses[1].expr.operands
    money = ops[0].right
    assert (money.amount, money.currency) == (Decimal(5000), "JPY")
    assert isinstance(ops[1], ast.Member) and not ops[1].negated
    assert ops[2].negated and [i.dotted for i in ops[2].container.items] == ["JP", "KR"]
    assert ops[3].missing and not ops[4].missing
    assert isinstance(ops[5], ast.Within) and ops[5].duration.seconds == 30 * 86400
    call = ops[6].left
    assert call.func.value == "count" and isinstance(call.args[0], ast.Within)
    arith = ops[7].left
    assert arith.op == "+" and arith.left.unit == "h" and arith.right.unit == "d"
    minus = ops[8].left
    assert minus.op == "-" and minus.left.op == "*" and isinstance(minus.left.left, ast.Negate)
    assert ops[9].left.value is True and ops[9].right.value is False
    assert ops[10].left.value == Decimal("1.5")
    assert (ops[11].right.hour, ops[11].right.minute) == (9, 30)


def test_policies():
    mod = module('''
policy market US "US rules"
  marketing via sms requires consent(written)
  marketing via sms between 08:00 and 21:00 local
  marketing via email requires unsubscribe_link and sender_address
policy channel amazon
  forbid purpose marketing
  review window 5d..30d after delivered
  review once per order
  review template forbids incentives, rating_requests, external_links
policy house
  keep consent 3y
  cap marketing 4 per 30d per customer across flows
  pause flow when unsubscribe_rate > 0.5% over 7d
''')
    us, amazon, house = mod.policies
    assert (us.kind, us.subject.value, us.title.value) == ("market", "US", "US rules")
    req = us.rules[0]
    assert req.scope.purpose.value == "marketing" and [c.value for c in req.scope.channels] == ["sms"]
    assert req.requirements[0].name.value == "consent" and req.requirements[0].args[0].value == "written"
    assert [r.name.value for r in us.rules[2].requirements] == ["unsubscribe_link", "sender_address"]
    window = amazon.rules[1]
    assert (window.earliest.seconds, window.latest.seconds, window.event.value) == (5 * 86400, 30 * 86400, "delivered")
    assert [n.value for n in amazon.rules[3].forbidden] == ["incentives", "rating_requests", "external_links"]
    keep, cap, pause = house.rules
    assert keep.duration.unit == "y"
    assert (cap.count.value, cap.across.value) == (4, "flows")
    assert pause.over.seconds == 7 * 86400


def test_imports_and_comments():
    mod = module('import "policies/house.flow"  # shared rules\n# survey\non delivered via line\n')
    assert mod.items[0].path.value == "policies/house.flow"
    assert [(c.text, c.own_line) for c in mod.comments] == [("# shared rules", False), ("# survey", True)]


def test_keywords_are_reserved_everywhere():
    result = parse('on delivered via line, send "x"')
    assert not result.ok
    assert result.diagnostics[0].code == "stray-comma"


def test_equal_meaning_ignores_layout():
    a = module("on delivered + 48h where not refunded via line, email")
    b = module("# note\non   delivered +48h\n  where not refunded\n  via line,email\n")
    assert a == b
    assert a != module("on delivered + 49h where not refunded via line, email")


@pytest.mark.parametrize("value", ["", "plain", 'quote " inside', "back\\slash", "tab\tand\nnewline", "日本語", "\x01"])
def test_string_escapes_round_trip(value):
    assert unescape(escape(value)) == value
    flow = only_flow(f"on x send {escape(value)}")
    assert flow.find(ast.Send)[0].template.value == value


def test_walk_visits_every_node_in_source_order():
    flow = only_flow("on x where a and b via line")
    names = [n.value for n in flow.walk() if isinstance(n, ast.Name)]
    assert names == ["x", "a", "b", "line"]


def test_spec_lists_every_reserved_word():
    import re
    from pathlib import Path

    from linkstar_dsl.resources import grammar_text

    words = set(re.findall(r'"([a-z]+)"', grammar_text()))
    spec = (Path(__file__).resolve().parents[1] / "SPEC.md").read_text(encoding="utf-8")
    block = spec[spec.index("The reserved words are:"):]
    block = block[block.index("```") + 3:]
    listed = set(block[:block.index("```")].split())
    assert listed == words
