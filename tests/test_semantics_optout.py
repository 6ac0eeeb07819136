"""Purpose opt-outs and purpose-limited suppressions at the gates of `run`, `simulate` and `explain`.

A buyer who turned a purpose off on a channel (the preference page, a consent revocation: the
latest choice in `preference_changes` is `opt_out`) gets no message of that purpose there, even
where the purpose needs no consent: the channel is passed over for the next one, and when the
purpose is off on every channel of the step the message is skipped `opted-out`.  A WhatsApp
`whatsapp_marketing_opt_out` suppression closes WhatsApp to marketing templates only: marketing
and review messages, not transactional or service ones (SPEC.md §7.2, §11.4).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import test_simulate
from test_runtime import DUE, SETTINGS, THANKS, make_store
from test_simulate import at, customer, event, explain_order, order, simulate

from linkstar_dsl.checker import Env, check_text
from linkstar_dsl.compiler.plan import plan_flow
from linkstar_dsl.runtime.engine import Engine
from linkstar_dsl.runtime.program import compile_text
from linkstar_dsl.simulate import scratch

PROMO = ("flow promo purpose marketing market US on delivered + 1d where customer.source != amazon "
         "via email send \"promo\" cooldown 7d per customer")

store = test_simulate.store  # the store fixture simulations share


def choose(con, cid, channel, purpose, choice, when, source="preferences"):
    con.execute("INSERT INTO preference_changes (customer_id, channel, purpose, choice, occurred_at, source) "
                "VALUES (?, ?, ?, ?, ?, ?)", [cid, channel, purpose, choice, at(when), source])


def us_buyers(con, *ids):
    for cid in ids:
        customer(con, cid, country="US", tz="America/New_York")
        order(con, "o" + cid[1:], cid, country="US")
        event(con, "e" + cid[1:], "o" + cid[1:], "delivered", "2026-08-03 15:00:00")


def decided(decisions):
    return {d.customer_id: (d.decision, d.reason, d.detail) for d in decisions}


def test_marketing_email_honours_the_preference_page_where_no_consent_is_needed(store):
    con, path = store
    us_buyers(con, "c1", "c2", "c3", "c4", "c5")
    choose(con, "c1", "email", "marketing", "opt_out", "2026-07-01 10:00:00")
    choose(con, "c2", "email", "marketing", "opt_out", "2026-07-01 10:00:00")
    choose(con, "c2", "email", "marketing", "opt_in", "2026-07-02 10:00:00")     # turned back on
    choose(con, "c3", "email", "review", "opt_out", "2026-07-01 10:00:00")       # another purpose
    choose(con, "c4", "email", "marketing", "opt_out", "2026-09-01 10:00:00")    # after the send
    choose(con, "c5", None, "marketing", "opt_out", "2026-07-01 10:00:00", "api")  # every channel
    _, decisions = simulate(path, PROMO, "2026-08-03 00:00:00", "2026-08-06 00:00:00")
    got = decided(d for d in decisions if d.decision != "defer")
    assert got["c1"] == ("skip", "opted-out", "opted out of marketing on email at 2026-07-01T10:00:00Z (preferences)")
    assert got["c5"] == ("skip", "opted-out", "opted out of marketing on every channel at 2026-07-01T10:00:00Z (api)")
    assert {cid: got[cid][:2] for cid in ("c2", "c3", "c4")} == {cid: ("send", "sent") for cid in ("c2", "c3", "c4")}


def test_explain_names_the_opt_out_its_time_and_source(store):
    from linkstar_dsl.explain import render

    con, path = store
    us_buyers(con, "c1")
    choose(con, "c1", "email", "marketing", "opt_out", "2026-07-01 10:00:00")
    traces = explain_order(path, PROMO, "o1", "2026-08-04 16:00:00")
    (trace,) = traces
    assert trace.outcome.startswith("SKIP (opted-out)")
    checks = {c.gate: (c.ok, c.detail) for c in trace.checks}
    assert checks["opt-out"] == (False, "opted out of marketing on email at 2026-07-01T10:00:00Z (preferences)")
    assert checks["channel email"][0] is False
    assert "✗ opt-out" in render(traces, "order o1", at("2026-08-04 16:00:00"))


def test_the_runner_passes_an_opted_out_channel_over_for_the_next(tmp_path):
    con = make_store(tmp_path / "s.duckdb", n=3)
    when = DUE - timedelta(days=10)
    for cid, channels in (("c0", ("line",)), ("c1", ("line", "email"))):
        for channel in channels:
            con.execute("INSERT INTO preference_changes (customer_id, channel, purpose, choice, occurred_at, source) "
                        "VALUES (?, ?, 'service', 'opt_out', ?, 'preferences')", [cid, channel, when])
    path = str(tmp_path / "s.duckdb")
    con.close()

    async def tick():
        async with Engine(compile_text(THANKS), path, dry_run=True, render_settings=SETTINGS) as engine:
            return await engine.tick(DUE + timedelta(minutes=5))

    report = asyncio.run(tick())
    got = {d.customer_id: (d.decision, d.reason, d.channel) for d in report.decisions}
    assert got == {"c0": ("send", "sent", "email"), "c1": ("skip", "opted-out", None),
                   "c2": ("send", "sent", "line")}


def test_a_whatsapp_marketing_opt_out_blocks_marketing_templates_only(store):
    con, path = store
    for cid in ("c1", "c2"):
        customer(con, cid)
        con.execute("UPDATE customers SET whatsapp = '+819012345678' WHERE id = ?", [cid])
        order(con, "o" + cid[1:], cid)
        event(con, "e" + cid[1:], "o" + cid[1:], "delivered", "2026-08-03 03:00:00")
        con.execute("INSERT INTO suppressions VALUES (?, 'whatsapp', 'whatsapp_marketing_opt_out', "
                    "TIMESTAMPTZ '2026-07-01 00:00:00+00', 'whatsapp')", [cid])
        con.execute("INSERT INTO consents VALUES (?, 'whatsapp', 'any', 'express', "
                    "TIMESTAMPTZ '2026-01-01 00:00:00+00', NULL, 'checkout', TIMESTAMPTZ '2026-01-02 00:00:00+00', "
                    "NULL)", [cid])
    utility = ('flow notice purpose transactional market JP on delivered where order.marketplace == shopify '
               'via whatsapp send "delivered"')
    _, decisions = simulate(path, utility, "2026-08-03 00:00:00", "2026-08-04 00:00:00")
    assert {(d.customer_id, d.decision, d.channel) for d in decisions} == {("c1", "send", "whatsapp"),
                                                                           ("c2", "send", "whatsapp")}
    assert _explained(path, utility, "o1")["channel whatsapp"] == (True, "usable")
    review = utility.replace("flow notice purpose transactional", "flow ask purpose review")
    assert _explained(path, review, "o1")["channel whatsapp"] == (False, "suppressed")  # a marketing template there
    marketing = ('flow promo purpose marketing market JP on delivered where order.marketplace == shopify '
                 'and customer.source != amazon via whatsapp send "promo" cooldown 7d per customer')
    _, decisions = simulate(path, marketing, "2026-08-03 00:00:00", "2026-08-04 00:00:00")
    assert {(d.customer_id, d.decision, d.reason, d.detail) for d in decisions} == {
        (cid, "skip", "no-channel", "whatsapp: suppressed") for cid in ("c1", "c2")}
    assert _explained(path, marketing, "o1")["channel whatsapp"] == (False, "suppressed")


def _explained(path, flow_text, subject):
    """gate → (passes, detail) of `explain` for the one trace of `subject`, an hour after delivery."""
    from linkstar_dsl.explain import explain

    report = check_text(flow_text, "t.flow")
    env = Env.for_module(report.module)
    plans = [plan_flow(f, env) for f in report.module.flows]
    (trace,) = explain(scratch(path), plans, env.schema, subject, at("2026-08-03 04:00:00"))
    return {c.gate: (c.ok, c.detail) for c in trace.checks}


def test_a_message_claimed_before_the_choice_is_still_refused_at_the_last_moment():
    """What the gates could not see yet (claimed before the click), the service refuses on sending."""
    from linkstar_dsl.adapters.messages import Outcome, OutgoingMessage, SendResult, Text
    from linkstar_dsl.serve.channels import Blocklist, GuardedChannels

    class Sent:
        async def send(self, message):
            return SendResult(Outcome.SENT, "test", provider_message_id="m1")

    class Counter:
        def __init__(self):
            self.counted = []

        def inc(self, *labels):
            self.counted.append(labels)

    metrics = type("Metrics", (), {"sends": Counter()})()
    channels = GuardedChannels(Sent(), Blocklist(purposes={("c1", "email", "marketing")}), metrics)

    def message(purpose):
        return OutgoingMessage("promo:0:e1", "email", "c1@example.com", Text("hi"), purpose=purpose,
                               metadata={"customer_id": "c1"})

    refused = asyncio.run(channels.send(message("marketing")))
    assert (refused.outcome, refused.code) == (Outcome.PERMANENT, "opted_out")
    assert asyncio.run(channels.send(message("service"))).outcome is Outcome.SENT
    assert metrics.sends.counted == [("email", "opted_out"), ("email", "sent")]


def test_the_explain_query_and_the_tick_close_the_same_purposes():
    from linkstar_dsl import gate_inputs
    from linkstar_dsl.compiler import due

    assert dict(due._PURPOSE_SUPPRESSIONS) == gate_inputs.PURPOSE_SUPPRESSIONS
