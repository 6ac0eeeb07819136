"""`linkstar serve`, the buyer's side: one-click unsubscribe, the preference page, consent, erasure.

The unsubscribe link comes out of a real message (the `List-Unsubscribe` header the SMTP server
received); the engine's ticks are driven with an injected clock.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

from click.testing import CliRunner
from test_serve_support import DELIVERED, LINK_SECRET, TOKEN, Harness

from linkstar_dsl import cli
from linkstar_dsl.runtime import links

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SENT_THANKS = DELIVERED + timedelta(hours=1, minutes=5)
OFFER_DUE = DELIVERED + timedelta(hours=48, minutes=1)      # 20:01 in New York: outside 10:00-18:00
WINDOW_OPEN = DELIVERED + timedelta(hours=62)               # 10:00 in New York


def run(coro):
    return asyncio.run(coro)


def unsubscribe_path(harness, address: str) -> str:
    mail = next(m for m in harness.servers.smtp.messages if list(m.recipients) == [address])
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.search(r"<(https://[^>]+)>", mail.message["List-Unsubscribe"]).group(1)
    return urlsplit(url).path


def test_a_one_click_unsubscribe_stops_a_message_that_was_already_due(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            await h.service.tick(SENT_THANKS)
            path = unsubscribe_path(h, "c0@example.com")
            await h.service.tick(OFFER_DUE)
            due = h.rows("SELECT key, decision, reason FROM ledger WHERE flow = 'offer' ORDER BY key")
            h.clock.now = DELIVERED + timedelta(hours=50)
            # a mail scanner fetching the link changes nothing
            page = await h.get(path)
            after_get = h.rows("SELECT count(*) FROM suppressions")[0][0]
            click = await h.post(path, data="List-Unsubscribe=One-Click", token=None,
                                 headers={**FORM, "User-Agent": "ExampleMail/2.1"})
            again = await h.post(path, data="List-Unsubscribe=One-Click", token=None, headers=FORM)
            report = await h.service.tick(WINDOW_OPEN)
            return (due, page, after_get, click, again, report,
                    [next(iter(m.recipients)) for m in h.servers.smtp.messages],
                    h.rows("SELECT customer_id, channel, reason, occurred_at, source FROM suppressions"),
                    h.rows("SELECT customer_id, channel, purpose, choice, source, message_key, evidence "
                           "FROM preference_changes"),
                    h.rows("SELECT customer_id, event FROM customer_events"))

    due, page, after_get, click, again, report, recipients, suppressions, changes, events = run(scenario())
    assert [(k, d, r) for k, d, r in due] == [("offer:0:e0", "defer", "window"), ("offer:0:e1", "defer", "window")]
    assert page[0] == 200 and 'name="List-Unsubscribe" value="One-Click"' in page[1] and after_get == 0
    assert click[0] == 200 and "You are unsubscribed from email messages" in click[1]
    assert again[0] == 200 and "already unsubscribed" in again[1]
    decided = {d.key: (d.decision, d.reason) for d in report.decisions}
    assert decided == {"offer:0:e0": ("skip", "no-channel"), "offer:0:e1": ("send", "sent")}
    assert sorted(recipients) == ["c0@example.com", "c1@example.com", "c1@example.com"]
    assert suppressions == [("c0", "email", "unsubscribed", DELIVERED + timedelta(hours=50), "one_click")]
    (customer, channel, purpose, choice, source, key, evidence), = changes
    assert (customer, channel, purpose, choice, source, key) == ("c0", "email", None, "opt_out", "one_click",
                                                                 "thanks:0:e0")
    assert json.loads(evidence)["user_agent"] == "ExampleMail/2.1" and json.loads(evidence)["ip"] == "127.0.0.1"
    assert events == [("c0", "unsubscribed")]


def token(action="unsubscribe", secret=LINK_SECRET, expires=DELIVERED + timedelta(days=30), customer="c0"):
    return links.sign(secret, action, "thanks:0:e0", customer, "email", expires)


def test_forged_expired_and_malformed_links_get_a_page_and_change_nothing(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            good = token()
            answers = {
                "forged": await h.post(f"/u/{token(secret='someone-elses-secret-0123')}", token=None, headers=FORM,
                                       data="List-Unsubscribe=One-Click"),
                "tampered": await h.post(f"/u/{good[:-2]}AA", token=None, headers=FORM,
                                         data="List-Unsubscribe=One-Click"),
                "expired": await h.post(f"/u/{token(expires=DELIVERED - timedelta(days=1))}", token=None,
                                        headers=FORM, data="List-Unsubscribe=One-Click"),
                "garbage": await h.get("/u/not-a-token"),
                "wrong kind": await h.get(f"/u/{token('preferences')}"),
                "no body": await h.post(f"/u/{good}", token=None, headers=FORM, data=""),
                "json body": await h.post(f"/u/{good}", token=None, json_body={"List-Unsubscribe": "One-Click"}),
                "oversized": await h.post(f"/u/{good}", token=None, headers=FORM,
                                          data="List-Unsubscribe=One-Click&pad=" + "x" * 20000),
            }
            return answers, h.rows("SELECT count(*) FROM suppressions")[0][0], \
                h.rows("SELECT count(*) FROM preference_changes")[0][0]

    answers, suppressions, changes = run(scenario())
    statuses = {name: status for name, (status, _) in answers.items()}
    assert statuses == {"forged": 403, "tampered": 403, "expired": 400, "garbage": 400, "wrong kind": 400,
                        "no body": 400, "json body": 400, "oversized": 413}
    assert "has expired" in answers["expired"][1] and "not valid" in answers["forged"][1]
    assert (suppressions, changes) == (0, 0)


def test_the_preference_page_turns_channels_and_purposes_off_and_on(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            h.con.execute("INSERT INTO suppressions VALUES ('c0', 'line', 'line_unfollow', ?, 'line')",
                          [DELIVERED - timedelta(days=9)])
            h.clock.now = DELIVERED + timedelta(hours=2)
            path = f"/p/{token('preferences')}"
            page = await h.get(path)
            # email on but no offers; SMS off; LINE asked for but blocked by the buyer's own unfollow
            form = "form=preferences&channel.email=on&purpose.email.review=on&purpose.email.service=on&channel.line=on"
            saved = await h.post(path, data=form, headers=FORM, token=None)
            state = (h.rows("SELECT channel, reason, source FROM suppressions ORDER BY channel"),
                     sorted(h.service.blocklist.purposes), sorted(h.service.blocklist.channels))
            h.clock.now = DELIVERED + timedelta(hours=3)
            back = await h.post(path, data="form=preferences&channel.email=on&channel.sms=on&purpose.sms.marketing=on"
                                           "&purpose.sms.review=on&purpose.sms.service=on"
                                           "&purpose.email.marketing=on&purpose.email.review=on"
                                           "&purpose.email.service=on", headers=FORM, token=None)
            junk = await h.post(path, data="form=preferences&channel.fax=on", headers=FORM, token=None)
            return page, saved, state, back, junk, \
                h.rows("SELECT channel, reason FROM suppressions ORDER BY channel"), \
                h.rows("SELECT channel, reason, lifted_by FROM suppression_lifts"), \
                h.rows("SELECT channel, purpose, choice FROM preference_changes ORDER BY occurred_at, channel, purpose")

    page, saved, state, back, junk, suppressions, lifts, changes = run(scenario())
    assert page[0] == 200 and 'name="channel.sms" checked' in page[1] and "cannot be turned on here" in page[1]
    assert saved[0] == 200 and "Your preferences are saved" in saved[1]
    assert state == ([("line", "line_unfollow", "line"), ("sms", "unsubscribed", "preferences")],
                     [("c0", "email", "marketing")], [("c0", "sms")])
    assert back[0] == 200 and 'name="purpose.email.marketing" checked' in back[1]
    assert junk[0] == 400
    assert suppressions == [("line", "line_unfollow")]
    assert lifts == [("sms", "unsubscribed", "preferences:thanks:0:e0")]
    assert changes == [("email", "marketing", "opt_out"), ("sms", None, "opt_out"), ("email", "marketing", "opt_in"),
                       ("sms", None, "opt_in")]


def test_a_purpose_turned_off_is_held_back_by_the_gates_even_where_no_consent_is_needed(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            h.clock.now = DELIVERED + timedelta(hours=2)
            form = "form=preferences&channel.email=on&purpose.email.review=on&purpose.email.service=on"
            await h.post(f"/p/{token('preferences')}", data=form, headers=FORM, token=None)
            await h.service.tick(OFFER_DUE)
            report = await h.service.tick(WINDOW_OPEN)
            metrics = (await h.get("/metrics"))[1]
            return report, [next(iter(m.recipients)) for m in h.servers.smtp.messages], \
                h.rows("SELECT key, decision, reason, status, detail FROM ledger WHERE flow = 'offer' ORDER BY key"), \
                metrics

    _, recipients, rows, metrics = run(scenario())
    # the service message to both; the offer (marketing email in the US needs no consent) only to c1:
    # the gates read the purpose turned off at the next tick (SPEC.md §7.2), before anything is claimed
    assert sorted(recipients) == ["c0@example.com", "c1@example.com", "c1@example.com"]
    (key, decision, reason, status, detail), other = rows
    assert (key, decision, reason, status) == ("offer:0:e0", "skip", "opted-out", "decided")
    assert json.loads(detail)["detail"] == "opted out of marketing on email at 2026-09-01T02:00:00Z (preferences)"
    assert other[1:4] == ("send", "sent", "sent")
    assert 'outcome="opted_out"' not in metrics


def test_erasure_clears_personal_data_keeps_the_ledger_evidence_and_stops_every_message(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            await h.service.tick(SENT_THANKS)
            h.con.execute("INSERT INTO consents VALUES ('c0', 'email', 'marketing', 'express', ?, NULL, 'checkout', "
                          "NULL, ?)", [DELIVERED - timedelta(days=30), json.dumps({"ip": "203.0.113.7"})])
            # a provider's error message that quoted the address, as some do
            h.con.execute("INSERT INTO ledger (key, flow, step, occurrence, customer_id, channel, purpose, decision, "
                          "reason, due_at, status, detail) VALUES ('old:0:x', 'old', 0, 'x', 'c0', 'sms', 'service', "
                          "'skip', 'send-failed', ?, 'failed', ?)",
                          [DELIVERED, json.dumps({"tried": [{"message": "+15550000000 is not a mobile number; "
                                                             "c0@example.com"}]})])
            ledger_before = h.rows("SELECT key, flow, step, decision, reason, channel, purpose, send_at, provider_id "
                                   "FROM ledger WHERE customer_id = 'c0' ORDER BY key")
            h.clock.now = DELIVERED + timedelta(hours=3)
            unauthenticated = await h.post("/v1/customers/c0/erase", json_body={}, token=None)
            erased = await h.post("/v1/customers/c0/erase", json_body={"reason": "GDPR request #12"})
            again = await h.post("/v1/customers/c0/erase")
            unknown = await h.post("/v1/customers/nobody/erase")
            report = await h.service.tick(WINDOW_OPEN)
            consent = await h.post("/v1/customers/c0/consents",
                                   json_body={"action": "grant", "channel": "email", "purpose": "marketing"})
            return (unauthenticated, erased, again, unknown, report, consent, ledger_before,
                    h.rows("SELECT key, flow, step, decision, reason, channel, purpose, send_at, provider_id "
                           "FROM ledger WHERE customer_id = 'c0' AND flow <> 'offer' ORDER BY key"),
                    h.rows("SELECT detail FROM ledger WHERE key = 'old:0:x'")[0][0],
                    h.rows("SELECT name, email, phone, line_user_id, whatsapp, tags, country FROM customers "
                           "WHERE id = 'c0'")[0],
                    h.rows("SELECT id, total, state, tracking_url FROM orders WHERE customer_id = 'c0'"),
                    h.rows("SELECT data FROM order_events WHERE order_id = 'o0'"),
                    h.rows("SELECT evidence, revoked_at FROM consents WHERE customer_id = 'c0'"),
                    h.rows("SELECT customer_id, channel, reason FROM suppressions"),
                    h.rows("SELECT customer_id, reason, source FROM erasures"),
                    [next(iter(m.recipients)) for m in h.servers.smtp.messages])

    (unauthenticated, erased, again, unknown, report, consent, ledger_before, ledger_after, detail, customer,
     orders, order_events, consents, suppressions, erasures, recipients) = run(scenario())
    assert unauthenticated[0] == 401
    assert erased[0] == 200 and erased[1]["already_erased"] is False
    pseudonym = erased[1]["pseudonym"]
    assert re.fullmatch(r"erased-[0-9a-f]{16}", pseudonym)
    assert erased[1]["cleared"]["customers"] == 1 and erased[1]["cleared"]["ledger"] == 1
    assert again[0] == 200 and again[1]["already_erased"] is True
    assert unknown[0] == 404
    assert ledger_after == ledger_before  # the evidence: keys, decisions, times, channels, purposes
    assert "c0@example.com" not in detail and "5550000000" not in detail and pseudonym in detail
    assert customer == (None, None, None, None, None, [], "US")
    assert [(o[0], str(o[1]), o[2], o[3]) for o in orders] == [("o0", "40.00", None, None)]
    assert order_events == [(None,)]
    assert consents == [('{"erased": true}', DELIVERED + timedelta(hours=3))]
    assert ("c0", None, "erasure") in suppressions
    assert erasures == [("c0", "GDPR request #12", "api")]
    decided = {d.key: (d.decision, d.reason) for d in report.decisions}
    assert decided["offer:0:e0"] == ("skip", "suppressed")
    assert recipients.count("c0@example.com") == 1  # the thanks before the erasure, nothing after
    assert consent[0] == 409


def test_consent_endpoint_grants_lift_the_buyers_own_opt_out_and_revocations_are_recorded(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            h.con.execute("INSERT INTO suppressions VALUES ('c1', 'email', 'unsubscribed', ?, 'one_click'), "
                          "('c1', 'email', 'hard_bounce', ?, 'sendgrid')", [DELIVERED, DELIVERED])
            h.clock.now = DELIVERED + timedelta(days=1)
            granted = await h.post("/v1/customers/c1/consents", json_body={
                "action": "grant", "channel": "email", "purpose": "marketing", "level": "double_opt_in",
                "source": "signup_form", "evidence": {"form": "v3", "ip": "198.51.100.4"}})
            revoked = await h.post("/v1/customers/c1/consents", json_body={
                "action": "revoke", "channel": "email", "purpose": "marketing"})
            bad = await h.post("/v1/customers/c1/consents", json_body={
                "action": "grant", "channel": "fax", "purpose": "marketing"})
            missing = await h.post("/v1/customers/c9/consents", json_body={
                "action": "grant", "channel": "email", "purpose": "marketing"})
            return granted, revoked, bad, missing, \
                h.rows("SELECT reason FROM suppressions WHERE customer_id = 'c1'"), \
                h.rows("SELECT level, source, double_opt_in_at IS NOT NULL, revoked_at IS NOT NULL FROM consents"), \
                sorted(h.service.blocklist.purposes)

    granted, revoked, bad, missing, suppressions, consents, blocked = run(scenario())
    assert granted == (200, {"customer_id": "c1", "action": "grant", "granted": 1, "lifted": 1})
    assert revoked == (200, {"customer_id": "c1", "action": "revoke", "revoked": 1})
    assert bad[0] == 400 and bad[1]["field"] == "channel"
    assert missing[0] == 404
    assert suppressions == [("hard_bounce",)]  # a bounce is not the buyer's choice: consent does not lift it
    assert consents == [("double_opt_in", "signup_form", True, True)]
    assert blocked == [("c1", "email", "marketing")]


def test_erase_and_consent_commands(tmp_path):
    from test_serve_support import make_store

    db = tmp_path / "cli.duckdb"
    make_store(db).close()
    runner = CliRunner()

    def linkstar(*args):
        return runner.invoke(cli.main, list(args), catch_exceptions=False)

    grant = linkstar("consent", "grant", "--db", str(db), "--customer", "c1", "--channel", "sms",
                     "--purpose", "marketing", "--level", "written", "--evidence", '{"keyword": "JOIN"}')
    revoke = linkstar("consent", "revoke", "--db", str(db), "--customer", "c1", "--channel", "sms",
                      "--purpose", "marketing")
    bad_json = linkstar("consent", "grant", "--db", str(db), "--customer", "c1", "--channel", "sms",
                        "--purpose", "marketing", "--evidence", "{oops")
    erase = linkstar("erase", "--db", str(db), "--customer", "c0", "--reason", "CCPA deletion 7")
    twice = linkstar("erase", "--db", str(db), "--customer", "c0")
    nobody = linkstar("erase", "--db", str(db), "--customer", "nobody")
    assert grant.exit_code == 0 and "granted written consent to marketing messages on sms for c1" in grant.output
    assert revoke.exit_code == 0 and "revoked 1 consent" in revoke.output
    assert bad_json.exit_code == 2 and "Traceback" not in bad_json.output
    assert erase.exit_code == 0 and "erased customer c0 (erased-" in erase.output
    assert twice.exit_code == 0 and "already erased" in twice.output
    assert nobody.exit_code == 1
    from linkstar_dsl.store import open_store

    con = open_store(db)
    assert con.execute("SELECT email, phone FROM customers WHERE id = 'c0'").fetchone() == (None, None)
    assert con.execute("SELECT reason, source FROM erasures").fetchall() == [("CCPA deletion 7", "cli")]
    assert con.execute("SELECT choice FROM preference_changes WHERE customer_id = 'c1' ORDER BY occurred_at, "
                       "choice DESC").fetchall() == [("opt_in",), ("opt_out",)]


def test_tokens_in_the_service_are_never_logged(tmp_path, caplog):
    async def scenario():
        async with Harness(tmp_path) as h:
            good = token()
            await h.get(f"/u/{good}")
            return good

    with caplog.at_level("INFO", logger="linkstar"):
        good = run(scenario())
    text = "\n".join(str(getattr(r, "fields", "")) + r.getMessage() for r in caplog.records)
    assert "/u/{token}" in text and good not in text and TOKEN not in text


def test_the_one_click_body_may_come_as_multipart_form_data(tmp_path):
    import aiohttp

    async def scenario():
        async with Harness(tmp_path) as h:
            form = aiohttp.FormData()
            form.add_field("List-Unsubscribe", "One-Click")
            async with h.http.post(h.url(f"/u/{token(customer='c1')}"), data=form) as response:
                answer = response.status, response.content_type
            return answer, h.rows("SELECT customer_id, channel, reason, source FROM suppressions")

    answer, suppressions = run(scenario())
    assert answer == (200, "text/html")
    assert suppressions == [("c1", "email", "unsubscribed", "one_click")]
