"""The compliance pass: what it proves, what it hands to the runtime, and how it words it."""

from __future__ import annotations

from linkstar_dsl import ast
from linkstar_dsl.checker import Env, check_text
from linkstar_dsl.parser import parse
from linkstar_dsl.passes.compliance import flow_compliance, reach


def first_flow(text: str):
    module = parse(text, "t.flow").module
    return module, module.flows[0]


def obligations(text: str) -> set[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    module, flow = first_flow(text)
    _, found = flow_compliance(flow, Env.for_module(module))
    return {(o.requirement, o.args, o.channels) for o in found}


def test_runtime_gates_follow_market_and_channel():
    found = obligations("on cart_abandoned via sms, email purpose marketing market US "
                        "where customer.source != amazon between 09:00 and 20:00 local")
    assert ("consent", ("written",), ("sms",)) in found          # TCPA written consent
    assert ("unsubscribe_link", (), ("email",)) in found          # CAN-SPAM
    assert ("sender_address", (), ("email",)) in found
    assert not any(req == "friend" for req, _, _ in found)        # no LINE here


def test_line_needs_a_friend_and_japan_needs_consent():
    found = obligations("on cart_abandoned via line, email purpose marketing market JP "
                        "where customer.source != amazon")
    assert ("friend", (), ()) in found
    assert ("consent", (), ("email",)) in found
    assert ("consent", (), ("line",)) in found


def test_transactional_flows_carry_no_marketing_gates():
    found = obligations("on shipped via email, sms purpose transactional market US")
    assert not any(req == "consent" for req, _, _ in found)


def test_unnarrowed_flow_reaches_every_market():
    module, flow = first_flow("on delivered via email purpose service")
    r = reach(flow, Env.for_module(module).schema)
    assert {"JP", "US", "EU", "DE", "CA"} <= r.markets
    assert "amazon" in r.marketplaces


def test_guards_narrow_markets_and_marketplaces():
    module, flow = first_flow("on delivered via email purpose service "
                              "where customer.country in [DE, FR] and order.marketplace == shopify")
    r = reach(flow, Env.for_module(module).schema)
    assert r.markets == {"EU", "DE", "FR"}
    assert r.marketplaces == {"shopify"}


def test_market_clause_intersects_with_guards():
    module, flow = first_flow("flow f purpose service market EU on delivered via email "
                              "where customer.country != DE")
    r = reach(flow, Env.for_module(module).schema)
    assert "DE" not in r.markets and "EU" in r.markets


def test_compliance_error_names_market_law_and_parameter():
    report = check_text("flow f\n  purpose marketing\n  market US\n  on cart_abandoned\n"
                        "  where customer.source != amazon\n  via sms\n", "f.flow")
    (diag,) = [d for d in report.diagnostics if d.code == "missing-send-window"]
    assert "US buyers" in diag.message and "08:00 and 21:00" in diag.message
    assert diag.span.text == "sms" and diag.span.start_line == 6
    (because,) = diag.labels
    assert "TCPA" in because.text and "47 CFR 64.1200" in because.text
    assert because.span.file == "stdlib/policies/us.flow"


def test_the_design_card_one_liner_is_accepted_with_warnings_only():
    report = check_text("on delivered + 48h where not refunded via line, email", "card.flow")
    assert report.errors == 0
    assert [d.code for d in report.diagnostics if d.severity.value == "warning"] == ["missing-purpose"]


def test_every_example_checks_clean():
    from pathlib import Path

    from linkstar_dsl.checker import check_source
    from linkstar_dsl.loader import load

    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.flow"))
    assert len(examples) >= 10
    for path in examples:
        loaded = load(path)
        report = check_source(loaded.source, prior=loaded.diagnostics)
        problems = [(d.code, d.span.start_line, d.message) for d in report.diagnostics
                    if d.severity.value != "note"]
        assert problems == [], path.name


def test_standard_policies_parse_and_cite_their_sources():
    from linkstar_dsl.policies import standard_policies

    policies = standard_policies().policies
    kinds = {(p.kind, p.subject.value) for p in policies}
    for market in ("JP", "US", "EU", "DE", "CA"):
        assert ("market", market) in kinds
    for channel in ("amazon", "line", "whatsapp", "sms", "email"):
        assert ("channel", channel) in kinds
    for policy in policies:
        for rule in policy.rules:
            assert isinstance(rule.cite, ast.StringLit) and rule.cite.value, (policy.subject.value, rule)


def test_spec_lists_every_diagnostic_code():
    from pathlib import Path

    from linkstar_dsl.codes import CODES

    spec = (Path(__file__).resolve().parents[1] / "SPEC.md").read_text(encoding="utf-8")
    assert [code for code in CODES if f"| `{code}` |" not in spec] == []
