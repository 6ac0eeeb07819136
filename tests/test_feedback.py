"""Delivery feedback: provider webhooks verified and parsed, then applied to the store.

Signatures are computed here the way each provider documents them, independently of the
receivers; the end-to-end tests run the real runner against the local provider servers, whose
callbacks reach the receivers over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp import web

from linkstar_dsl.adapters.descriptions import builtin_paths, load_description
from linkstar_dsl.adapters.messages import SUPPRESS_REASONS
from linkstar_dsl.feedback import (
    KINDS,
    FeedbackError,
    FeedbackEvent,
    Inbound,
    LineWebhook,
    MailReports,
    SendGridEvents,
    SignatureError,
    TwilioInbound,
    TwilioStatus,
    WhatsAppWebhook,
    apply,
    suppression_reason,
)
from linkstar_dsl.feedback.sendgrid import ecdsa_available
from linkstar_dsl.providers.servers import ProviderServers
from linkstar_dsl.runtime.engine import Engine, EngineSettings
from linkstar_dsl.runtime.program import compile_text
from linkstar_dsl.runtime.render_context import RenderSettings
from linkstar_dsl.store import migrate, migrations, open_store

NOW = datetime(2026, 9, 3, 12, 0, tzinfo=UTC)
TOKEN, APP_SECRET, CHANNEL_SECRET, SG_TOKEN = "twilio-auth-token", "meta-app-secret", "line-secret", "sg-token"
URL = "https://hooks.shop.example/twilio/status?msg_key=flow%3A0%3Ao1"
LINE_USER = "U" + "0123456789abcdef" * 2
BOT = "U" + "f" * 32


# -- signing as the providers document it ----------------------------------------------------

def twilio_request(params: dict, url: str = URL, token: str = TOKEN) -> Inbound:
    payload = url + "".join(k + v for k, v in sorted(params.items()))
    sig = base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()
    return Inbound.of(url, {"X-Twilio-Signature": sig}, urlencode(params).encode())


def whatsapp_request(document, secret: str = APP_SECRET) -> Inbound:
    body = json.dumps(document).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return Inbound.of("https://hooks.shop.example/whatsapp", {"X-Hub-Signature-256": sig}, body)


def line_request(document, secret: str = CHANNEL_SECRET) -> Inbound:
    body = json.dumps(document).encode() if not isinstance(document, bytes) else document
    sig = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return Inbound.of("https://hooks.shop.example/line", {"x-line-signature": sig}, body)


def sendgrid_request(events, token: str = SG_TOKEN) -> Inbound:
    body = json.dumps(events).encode() if not isinstance(events, bytes) else events
    basic = base64.b64encode(f"linkstar:{token}".encode()).decode()
    return Inbound.of("https://hooks.shop.example/sendgrid", {"Authorization": f"Basic {basic}"}, body)


def status_form(status="delivered", code=None, to="+15551230001", sid="SM1"):
    form = {"MessageSid": sid, "MessageStatus": status, "To": to, "From": "+15005550006", "AccountSid": "AC1"}
    if code:
        form["ErrorCode"] = str(code)
    return form


def wa_status(status="delivered", code=None, wamid="wamid.1", key="flow:0:o1"):
    record = {"id": wamid, "status": status, "timestamp": "1788436800", "recipient_id": "819012345678",
              "biz_opaque_callback_data": key}
    if code:
        record["errors"] = [{"code": code, "title": "error"}]
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}, "statuses": [record]}}]}]}


def line_event(kind="unfollow", event_id="01JEVENT", **extra):
    event = {"type": kind, "timestamp": 1788436800000, "mode": "active", "webhookEventId": event_id,
             "deliveryContext": {"isRedelivery": False}, "source": {"type": "user", "userId": LINE_USER}, **extra}
    return {"destination": BOT, "events": [event]}


def sg_event(event="delivered", email="a@shop.test", **extra):
    return {"email": email, "timestamp": 1788436800, "event": event, "sg_event_id": f"ev-{event}-{email}",
            "sg_message_id": "14c5d75ce93.filterdrecv-1.0", "msg_key": "flow:0:o1", **extra}


RECEIVERS = {
    "twilio": (TwilioStatus(TOKEN), lambda: twilio_request(status_form())),
    "whatsapp": (WhatsAppWebhook(APP_SECRET), lambda: whatsapp_request(wa_status())),
    "line": (LineWebhook(CHANNEL_SECRET), lambda: line_request(line_event())),
    "sendgrid": (SendGridEvents(token=SG_TOKEN), lambda: sendgrid_request([sg_event()])),
}


def _forged(inbound: Inbound) -> Inbound:
    headers = {k: ("Basic " + base64.b64encode(b"linkstar:guess").decode() if k == "authorization"
                   else ("sha256=" + "0" * 64 if v.startswith("sha256=") else base64.b64encode(b"x" * 20).decode()))
               for k, v in inbound.headers.items()}
    return Inbound(inbound.url, headers, inbound.body)


@pytest.mark.parametrize("provider", sorted(RECEIVERS))
def test_signed_requests_pass_and_forged_missing_or_tampered_ones_are_refused(provider):
    receiver, make = RECEIVERS[provider]
    good = make()
    assert len(receiver.parse(good)) == 1
    with pytest.raises(SignatureError):
        receiver.parse(_forged(good))
    with pytest.raises(SignatureError, match="missing|wrong"):
        receiver.parse(Inbound(good.url, {}, good.body))
    if provider != "sendgrid":  # a shared token proves the sender, not the body
        tampered = good.body.replace(b"delivered", b"undelivered").replace(b"unfollow", b"follow")
        assert tampered != good.body
        with pytest.raises(SignatureError):
            receiver.parse(Inbound(good.url, good.headers, tampered))


def test_twilio_signature_covers_the_url_and_accepts_it_with_or_without_the_default_port():
    form = status_form()
    signed = twilio_request(form, url="https://hooks.shop.example/twilio/status")
    with_port = Inbound("https://hooks.shop.example:443/twilio/status", signed.headers, signed.body)
    assert TwilioStatus(TOKEN).parse(with_port)[0].kind == "delivered"
    other_path = Inbound("https://hooks.shop.example/other", signed.headers, signed.body)
    with pytest.raises(SignatureError):
        TwilioStatus(TOKEN).parse(other_path)
    with pytest.raises(SignatureError):
        TwilioStatus("another-token").parse(signed)


MALFORMED = [
    ("twilio", lambda: Inbound(URL, twilio_request(status_form()).headers, b"\xff\xfe"), "form-encoded"),
    ("twilio", lambda: twilio_request({"MessageStatus": "delivered", "To": "+1555"}), "MessageSid"),
    ("twilio", lambda: twilio_request({"MessageSid": "SM1", "To": "+1555"}), "MessageStatus"),
    ("whatsapp", lambda: whatsapp_request([1, 2]), "entry"),
    ("whatsapp", lambda: whatsapp_request({"entry": [{"changes": [{"value": {"statuses": {}}}]}]}), "statuses"),
    ("whatsapp", lambda: whatsapp_request({"entry": [{"changes": [{"value": {"statuses": [
        {"id": "w", "status": "delivered", "recipient_id": "81", "timestamp": "soon"}]}}]}]}), "timestamp"),
    ("line", lambda: line_request(b"{not json"), "not JSON"),
    ("line", lambda: line_request({"destination": BOT}), "events"),
    ("line", lambda: line_request({"destination": BOT, "events": [{"type": "follow", "timestamp": 1}]}),
     "webhookEventId"),
    ("line", lambda: line_request({"destination": BOT, "events": [
        {"type": "unfollow", "timestamp": 1, "webhookEventId": "e", "source": {"type": "group"}}]}), "userId"),
    ("sendgrid", lambda: sendgrid_request({"event": "delivered"}), "array"),
    ("sendgrid", lambda: sendgrid_request(["delivered"]), "event 0"),
    ("sendgrid", lambda: sendgrid_request([{"event": "bounce", "timestamp": 1}]), "email"),
    ("sendgrid", lambda: sendgrid_request([sg_event(timestamp="yesterday")]), "timestamp"),
]


@pytest.mark.parametrize("provider, make, fragment", MALFORMED)
def test_malformed_bodies_get_a_clear_error(provider, make, fragment):
    receiver = RECEIVERS[provider][0]
    with pytest.raises(FeedbackError, match=fragment) as caught:
        receiver.parse(make())
    assert not isinstance(caught.value, SignatureError)


def test_an_oversized_body_is_refused_before_parsing():
    inbound = sendgrid_request(b"[" + b" " * (1024 * 1024) + b"]")
    with pytest.raises(FeedbackError, match="limit"):
        SendGridEvents(token=SG_TOKEN).parse(inbound)


# -- what each provider signal becomes ---------------------------------------------------------

@pytest.mark.parametrize("status, code, kind", [
    ("delivered", None, "delivered"), ("read", None, "opened"), ("undelivered", 30006, "bounced_hard"),
    ("failed", 21614, "bounced_hard"), ("undelivered", 30003, "bounced_soft"), ("failed", 21610, "stop"),
    ("undelivered", 30007, "failed"), ("failed", None, "failed"), ("sent", None, None), ("queued", None, None),
])
def test_twilio_status_callbacks(status, code, kind):
    events = TwilioStatus(TOKEN).parse(twilio_request(status_form(status, code)))
    assert [e.kind for e in events] == ([kind] if kind else [])
    if kind:
        event = events[0]
        assert (event.provider_event_id, event.provider_message_id, event.ledger_key) == \
            (f"SM1:{status}", "SM1", "flow:0:o1")
        assert (event.channel, event.address) == ("sms", "+15551230001")
        assert event.detail.get("code") == (str(code) if code else None)


@pytest.mark.parametrize("body, kind, keyword", [
    ("STOP", "stop", "STOP"), (" stopall ", "stop", "STOPALL"), ("Unsubscribe.", "stop", "UNSUBSCRIBE"),
    ("cancel", "stop", "CANCEL"), ("END", "stop", "END"), ("quit", "stop", "QUIT"),
    ("START", "start", "START"), ("unstop", "start", "UNSTOP"), ("yes", "start", "YES"),
    ("HELP", "replied", "HELP"), ("please stop sending the blue one", "replied", None),
])
def test_twilio_inbound_keywords(body, kind, keyword):
    form = {"MessageSid": "SM9", "From": "+15551230001", "To": "+15005550006", "Body": body}
    [event] = TwilioInbound(TOKEN).parse(twilio_request(form))
    assert (event.kind, event.detail.get("keyword"), event.address) == (kind, keyword, "+15551230001")
    assert body not in json.dumps(dict(event.detail)) or keyword  # the buyer's own words are not kept


def test_sendgrid_events_map_to_kinds_and_keep_the_message_id_and_ledger_key():
    events = [sg_event("processed"), sg_event("delivered"), sg_event("bounce", type="bounce", status="5.1.1"),
              sg_event("bounce", email="b@shop.test", type="blocked"), sg_event("dropped", reason="Bounced Address"),
              sg_event("dropped", email="c@shop.test", reason="Spam Reporting Address"),
              sg_event("dropped", email="d@shop.test", reason="Invalid SMTPAPI header"),
              sg_event("spamreport"), sg_event("unsubscribe"), sg_event("group_unsubscribe", asm_group_id=7),
              sg_event("open"), sg_event("click", url="https://shop.example/r"), sg_event("deferred")]
    parsed = SendGridEvents(token=SG_TOKEN, groups={7: "marketing"}).parse(sendgrid_request(events))
    assert [e.kind for e in parsed] == ["delivered", "bounced_hard", "bounced_soft", "bounced_hard", "complaint",
                                        "failed", "complaint", "unsubscribed", "unsubscribed", "opened", "clicked"]
    assert {e.provider_message_id for e in parsed} == {"14c5d75ce93"}
    assert {e.ledger_key for e in parsed} == {"flow:0:o1"}
    group = parsed[8]
    assert group.detail["purpose"] == "marketing" and group.detail["asm_group_id"] == 7
    assert parsed[0].occurred_at == datetime.fromtimestamp(1788436800, UTC)


def test_sendgrid_token_travels_as_basic_password_or_bearer_and_a_receiver_needs_one():
    receiver = SendGridEvents(token=SG_TOKEN)
    body = json.dumps([sg_event()]).encode()
    assert receiver.parse(Inbound.of("u", {"Authorization": f"Bearer {SG_TOKEN}"}, body))
    with pytest.raises(SignatureError):
        receiver.parse(Inbound.of("u", {"Authorization": "Bearer nope"}, body))
    with pytest.raises(ValueError, match="public key or a shared token"):
        SendGridEvents()


@pytest.mark.skipif(not ecdsa_available(), reason="the cryptography package is not installed")
def test_sendgrid_ecdsa_signature_is_verified_with_the_public_key_and_a_time_tolerance():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    body = json.dumps([sg_event("spamreport")]).encode()

    def signed(stamp: str, payload: bytes = body) -> Inbound:
        signature = base64.b64encode(key.sign(stamp.encode() + payload, ec.ECDSA(hashes.SHA256()))).decode()
        return Inbound.of("u", {"X-Twilio-Email-Event-Webhook-Signature": signature,
                                "X-Twilio-Email-Event-Webhook-Timestamp": stamp}, body)

    receiver = SendGridEvents(public_key=public, clock=lambda: 1_800_000_000.0)
    assert [e.kind for e in receiver.parse(signed("1800000000"))] == ["complaint"]
    with pytest.raises(SignatureError, match="does not match"):
        receiver.parse(signed("1800000000", b"[]"))
    with pytest.raises(SignatureError, match="away from now"):
        receiver.parse(signed("1799990000"))
    with pytest.raises(SignatureError, match="missing"):
        receiver.parse(Inbound.of("u", {}, body))
    with pytest.raises(ValueError, match="public key"):
        SendGridEvents(public_key="bm90IGEga2V5")


@pytest.mark.parametrize("status, code, kind", [
    ("delivered", None, "delivered"), ("read", None, "opened"), ("failed", 131050, "unsubscribed"),
    ("failed", 131026, "bounced_hard"), ("failed", 131049, "failed"), ("sent", None, None),
])
def test_whatsapp_statuses(status, code, kind):
    events = WhatsAppWebhook(APP_SECRET).parse(whatsapp_request(wa_status(status, code)))
    assert [e.kind for e in events] == ([kind] if kind else [])
    if kind:
        assert (events[0].address, events[0].provider_message_id, events[0].ledger_key) == \
            ("819012345678", "wamid.1", "flow:0:o1")


def test_whatsapp_inbound_message_is_a_reply():
    document = wa_status()
    document["entry"][0]["changes"][0]["value"] = {"messages": [
        {"from": "819012345678", "id": "wamid.in", "timestamp": "1788436800", "type": "text",
         "text": {"body": "Thanks!"}}]}
    [event] = WhatsAppWebhook(APP_SECRET).parse(whatsapp_request(document))
    assert (event.kind, event.provider_event_id, event.detail["type"]) == ("replied", "wamid.in", "text")
    assert "Thanks" not in json.dumps(dict(event.detail))


def test_line_follow_unfollow_message_and_the_verification_ping():
    receiver = LineWebhook(CHANNEL_SECRET)
    assert receiver.parse(line_request({"destination": BOT, "events": []})) == []
    [unfollow] = receiver.parse(line_request(line_event("unfollow")))
    assert (unfollow.kind, unfollow.address, unfollow.provider_event_id) == ("unfollowed", LINE_USER, "01JEVENT")
    assert unfollow.occurred_at == datetime.fromtimestamp(1788436800, UTC)
    [follow] = receiver.parse(line_request(line_event("follow", replyToken="r", follow={"isUnblocked": True})))
    assert (follow.kind, follow.detail["is_unblocked"]) == ("followed", True)
    [message] = receiver.parse(line_request(line_event("message", replyToken="r",
                                                       message={"id": "1", "type": "text", "text": "hi"})))
    assert message.kind == "replied" and message.detail["type"] == "text"
    assert receiver.parse(line_request(line_event("postback", replyToken="r", postback={"data": "x"}))) == []


SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs" / "line-webhook.yml"


@pytest.mark.skipif(not SPECS.is_file(), reason="shared/specs/line-webhook.yml is not available")
def test_the_line_sample_bodies_have_the_fields_line_webhook_yml_requires():
    yaml = pytest.importorskip("yaml")
    schemas = yaml.safe_load(SPECS.read_text(encoding="utf-8"))["components"]["schemas"]
    body = line_event("follow", replyToken="r", follow={"isUnblocked": False})
    assert set(schemas["CallbackRequest"]["required"]) <= set(body)
    event = body["events"][0]
    assert set(schemas["Event"]["required"]) <= set(event)
    assert set(schemas["FollowEvent"]["allOf"][1]["required"]) <= set(event)
    assert set(schemas["FollowDetail"]["required"]) <= set(event["follow"])


def _dsn(action: str, status: str, report_type: str = "delivery-status") -> bytes:
    return f"""From: MAILER-DAEMON@mx.example
To: bounces@shop.example
Subject: Delivery Status Notification
Message-ID: <dsn-1@mx.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type={report_type}; boundary="B"

--B
Content-Type: text/plain

The message could not be delivered.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; a@shop.test
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} mailbox unavailable

--B
Content-Type: text/rfc822-headers

From: shop@linkstar.example
To: a@shop.test
Message-ID: <thanks.0.o1@linkstar.example>

--B--
""".replace("\n", "\r\n").encode()


@pytest.mark.parametrize("action, status, kind", [
    ("failed", "5.1.1", "bounced_hard"), ("failed", "5.7.1", "bounced_soft"), ("failed", "4.4.7", "bounced_soft"),
    ("delivered", "2.0.0", "delivered"), ("delayed", "4.4.1", None),
])
def test_rfc3464_delivery_status_reports(action, status, kind):
    events = MailReports().parse(Inbound.of("mailbox", {}, _dsn(action, status)))
    assert [e.kind for e in events] == ([kind] if kind else [])
    if kind:
        assert (events[0].address, events[0].provider_message_id) == ("a@shop.test", "thanks.0.o1@linkstar.example")
        assert events[0].provider_event_id == "<dsn-1@mx.example>:a@shop.test"


def test_arf_complaints_and_mail_that_is_not_a_report():
    arf = b"""Message-ID: <fbl-1@isp.example>\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report; boundary="B"\r
\r
--B\r
Content-Type: text/plain\r
\r
An abuse report.\r
--B\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
Version: 1\r
Original-Rcpt-To: <a@shop.test>\r
\r
--B\r
Content-Type: message/rfc822\r
\r
Message-ID: <thanks.0.o1@linkstar.example>\r
Subject: hi\r
\r
body\r
--B--\r
"""
    [event] = MailReports().parse(Inbound.of("mailbox", {}, arf))
    assert (event.kind, event.address, event.provider_message_id) == \
        ("complaint", "a@shop.test", "thanks.0.o1@linkstar.example")
    with pytest.raises(FeedbackError, match="not a report"):
        MailReports().parse(Inbound.of("mailbox", {}, b"Subject: hello\r\n\r\nplain mail\r\n"))
    with pytest.raises(FeedbackError, match="report-type"):
        MailReports().parse(Inbound.of("mailbox", {}, _dsn("failed", "5.1.1", "disposition-notification")))


def test_an_event_has_a_known_kind_and_channel():
    with pytest.raises(ValueError, match="kind must be one of"):
        FeedbackEvent("x", "1", "bounced", "email")
    with pytest.raises(ValueError, match="channel must be one of"):
        FeedbackEvent("x", "1", "bounced_hard", "fax")


# -- applying events to the store ----------------------------------------------------------------

@pytest.fixture
def con(tmp_path):
    con = open_store(tmp_path / "feedback.duckdb")
    customers = [("c1", "A@Shop.Test", "+1 (555) 123-0001", LINE_USER, "+81 90 1234 5678"),
                 ("c2", "b@shop.test", "+15551230002", None, None)]
    con.executemany("INSERT INTO customers (id, email, phone, line_user_id, whatsapp, country) "
                    "VALUES (?, ?, ?, ?, ?, 'US')", customers)
    con.execute("INSERT INTO ledger (key, flow, step, occurrence, order_id, customer_id, channel, purpose, "
                "decision, reason, due_at, send_at, status, provider_id) VALUES "
                "('flow:0:o1', 'flow', 0, 'e1', 'o1', 'c1', 'email', 'service', 'send', 'sent', ?, ?, 'sent', 'msg-1')",
                [NOW - timedelta(days=1), NOW - timedelta(days=1)])
    yield con
    con.close()


def rows(con, sql, params=()):
    return con.execute(sql, list(params)).fetchall()


def event(kind, channel="email", address="a@shop.test", event_id="1", **fields):
    return FeedbackEvent("test", event_id, kind, channel, address, **fields)


#: kind, channel, address → suppression reason, customer event, ledger delivery (via provider id msg-1)
EFFECTS = [
    ("delivered", "email", "a@shop.test", None, None, "delivered"),
    ("failed", "email", "a@shop.test", None, None, "failed"),
    ("bounced_hard", "email", "a@shop.test", "hard_bounce", "bounced", "bounced"),
    ("bounced_soft", "email", "a@shop.test", None, None, "bounced"),
    ("bounced_hard", "sms", "+15551230001", "undeliverable", "bounced", "bounced"),
    ("complaint", "email", "a@shop.test", "complaint", "complained", None),
    ("unsubscribed", "email", "a@shop.test", "unsubscribed", "unsubscribed", None),
    ("unsubscribed", "whatsapp", "819012345678", "whatsapp_marketing_opt_out", "unsubscribed", None),
    ("opened", "email", "a@shop.test", None, "opened", None),
    ("clicked", "email", "a@shop.test", None, "clicked", None),
    ("replied", "sms", "+15551230001", None, "replied", None),
    ("unfollowed", "line", LINE_USER, "line_unfollow", "line_unfollowed", None),
    ("followed", "line", LINE_USER, None, "line_followed", None),
    ("stop", "sms", "+15551230001", "sms_stop", "unsubscribed", None),
    ("start", "sms", "+15551230001", None, None, None),
]


@pytest.mark.parametrize("kind, channel, address, reason, customer_event, delivery", EFFECTS)
def test_each_kind_writes_its_suppression_customer_event_and_ledger_state(con, kind, channel, address, reason,
                                                                          customer_event, delivery):
    report = apply(con, [event(kind, channel, address, provider_message_id="msg-1",
                               occurred_at=NOW - timedelta(minutes=5))], NOW)
    assert report.applied == 1 and report.unmatched == 0
    assert rows(con, "SELECT customer_id, channel, reason, source FROM suppressions") == \
        ([("c1", channel, reason, "test")] if reason else [])
    assert rows(con, "SELECT customer_id, event, order_id, json_extract_string(data, '$.channel') "
                     "FROM customer_events") == ([("c1", customer_event, "o1", channel)] if customer_event else [])
    assert rows(con, "SELECT delivery, delivery_at FROM ledger") == \
        [(delivery, NOW - timedelta(minutes=5) if delivery else None)]
    assert suppression_reason(event(kind, channel, address)) == reason


def test_every_kind_is_covered_and_every_reason_is_in_the_one_vocabulary():
    assert {e[0] for e in EFFECTS} == set(KINDS)
    written = {suppression_reason(event(k, c, a)) for k, c, a, *_ in EFFECTS} - {None}
    from_descriptions = {rule.reason for path in builtin_paths() for rule in load_description(path).errors
                         if rule.reason}
    assert written | from_descriptions <= set(SUPPRESS_REASONS)
    assert "line_blocked" not in from_descriptions
    spec = (Path(__file__).resolve().parents[1] / "SPEC.md").read_text(encoding="utf-8")
    section = spec[spec.index("### 11.4 Suppression reasons"):]
    assert all(f"`{reason}`" in section for reason in SUPPRESS_REASONS)


def _snapshot(con):
    return {table: rows(con, f"SELECT * FROM {table} ORDER BY ALL")
            for table in ("suppressions", "suppression_lifts", "customer_events", "ledger", "feedback_seen")}


def test_a_replayed_event_changes_nothing(con):
    batch = [event("bounced_hard", event_id="b1", provider_message_id="msg-1"),
             event("opened", event_id="o1"), event("stop", "sms", "+15551230001", event_id="s1")]
    first = apply(con, batch, NOW)
    before = _snapshot(con)
    again = apply(con, batch, NOW + timedelta(hours=1))
    assert (first.applied, again.applied, again.duplicates) == (3, 0, 3)
    assert _snapshot(con) == before
    within = apply(con, [event("complaint", event_id="x"), event("complaint", event_id="x")], NOW)
    assert (within.applied, within.duplicates, within.suppressions) == (1, 1, 1)


def test_the_same_opt_out_reported_twice_is_one_suppression(con):
    report = apply(con, [event("unsubscribed", event_id="u1"), event("unsubscribed", event_id="u2")], NOW)
    assert report.suppressions == 1 and report.customer_events == 2
    assert rows(con, "SELECT count(*) FROM suppressions") == [(1,)]


def test_start_lifts_a_stop_and_keeps_its_history_and_a_new_stop_suppresses_again(con):
    apply(con, [event("stop", "sms", "+15551230001", event_id="s1", occurred_at=NOW - timedelta(days=2))], NOW)
    con.execute("INSERT INTO suppressions VALUES ('c1', 'email', 'unsubscribed', ?, 'sendgrid')", [NOW])
    report = apply(con, [event("start", "sms", "+1 555 123 0001", event_id="s2", occurred_at=NOW - timedelta(days=1))],
                   NOW)
    assert report.lifted == 1
    assert rows(con, "SELECT channel, reason FROM suppressions") == [("email", "unsubscribed")]
    assert rows(con, "SELECT customer_id, channel, reason, occurred_at, lifted_at, lifted_by FROM suppression_lifts") \
        == [("c1", "sms", "sms_stop", NOW - timedelta(days=2), NOW - timedelta(days=1), "test:s2")]
    apply(con, [event("stop", "sms", "+15551230001", event_id="s3")], NOW)
    assert rows(con, "SELECT channel, reason FROM suppressions ORDER BY channel") == \
        [("email", "unsubscribed"), ("sms", "sms_stop")]


def test_a_line_follow_lifts_the_unfollow_and_an_older_blocked_row(con):
    con.execute("INSERT INTO suppressions VALUES ('c1', 'line', 'line_blocked', ?, 'line')", [NOW - timedelta(days=3)])
    apply(con, [event("unfollowed", "line", LINE_USER, event_id="u")], NOW - timedelta(days=2))
    report = apply(con, [event("followed", "line", LINE_USER, event_id="f", detail={"is_unblocked": True})], NOW)
    assert report.lifted == 2 and rows(con, "SELECT count(*) FROM suppressions") == [(0,)]
    assert sorted(r[0] for r in rows(con, "SELECT reason FROM suppression_lifts")) == ["line_blocked", "line_unfollow"]


def test_unknown_addresses_are_counted_and_reported_not_raised(con):
    report = apply(con, [event("complaint", address="nobody@else.test", event_id="n1"),
                         event("unfollowed", "line", "U" + "9" * 32, event_id="n2"),
                         event("opened", event_id="k1")], NOW)
    assert (report.applied, report.unmatched, report.suppressions) == (3, 2, 0)
    assert report.unmatched_events == [("test", "n1"), ("test", "n2")]
    assert "2 without a customer" in report.summary()
    assert rows(con, "SELECT event_id, customer_ids FROM feedback_seen ORDER BY event_id") == \
        [("k1", ["c1"]), ("n1", []), ("n2", [])]


def test_the_ledger_is_found_by_our_key_or_the_provider_id_and_an_older_report_does_not_win(con):
    apply(con, [event("delivered", address=None, event_id="d", ledger_key="flow:0:o1", occurred_at=NOW)], NOW)
    apply(con, [event("failed", address=None, event_id="f", provider_message_id="msg-1",
                      occurred_at=NOW - timedelta(hours=1))], NOW)
    assert rows(con, "SELECT delivery, delivery_at FROM ledger") == [("delivered", NOW)]
    apply(con, [event("bounced_soft", address=None, event_id="b", provider_message_id="msg-1",
                      occurred_at=NOW + timedelta(minutes=1))], NOW + timedelta(minutes=2))
    assert rows(con, "SELECT delivery FROM ledger") == [("bounced",)]


def test_a_shared_address_suppresses_every_customer_who_has_it(con):
    con.execute("INSERT INTO customers (id, email, country) VALUES ('c3', 'a@shop.test ', 'JP')")
    report = apply(con, [event("complaint", address="A@SHOP.TEST", event_id="c")], NOW)
    assert report.suppressions == 2
    assert rows(con, "SELECT customer_id FROM suppressions ORDER BY 1") == [("c1",), ("c3",)]
    assert rows(con, "SELECT count(DISTINCT id) FROM customer_events") == [(2,)]


def test_a_future_provider_time_is_clamped_so_the_suppression_is_in_force_now(con):
    apply(con, [event("complaint", event_id="c", occurred_at=NOW + timedelta(hours=2))], NOW)
    assert rows(con, "SELECT occurred_at FROM suppressions") == [(NOW,)]


def test_a_migration_numbered_below_an_applied_one_is_still_applied(tmp_path):
    import duckdb

    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    migrate(con, target=1)
    later = [m for m in migrations() if m[0] > 1 and m[1] != "feedback"]
    for version, name, sql in later:  # a database migrated before 003 existed
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    assert migrate(con) == [3]
    assert rows(con, "SELECT count(*) FROM feedback_seen") == [(0,)]
    assert migrate(con) == []
    con.close()


# -- end to end: send → provider callback → receiver → store → next decision --------------------

FLOWS = """
flow thanks
  purpose service
  on delivered + 48h
  via email
  send "delivered"

flow thanks_sms
  purpose service
  on delivered + 48h
  via sms
  send "delivered"
"""
DELIVERED = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
TICK = DELIVERED + timedelta(hours=58)


class FeedbackEndpoints:
    """The receivers mounted as webhook endpoints: verify, parse, apply, then answer."""

    def __init__(self, con, receivers: dict, clock) -> None:
        self.con, self.receivers, self.clock = con, receivers, clock
        self.answers: list[int] = []
        self._runner = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{path:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self.base

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        receiver = self.receivers.get(request.path)
        if receiver is None:
            return web.Response(status=404)
        # the URL the provider signed: our public base and the path and query exactly as sent
        inbound = Inbound.of(self.base + request.raw_path, request.headers, await request.read())
        try:
            events = receiver.parse(inbound)
        except SignatureError as exc:
            self.answers.append(401)
            return web.Response(status=401, text=str(exc))
        except FeedbackError as exc:
            self.answers.append(400)
            return web.Response(status=400, text=str(exc))
        apply(self.con, events, self.clock())
        self.answers.append(200)
        return web.Response(status=200)


def _store(path):
    con = open_store(path)
    for i in range(3):
        con.execute("INSERT INTO customers (id, email, phone, locale, timezone, country) "
                    "VALUES (?, ?, ?, 'en', 'America/New_York', 'US')", [f"c{i}", f"c{i}@example.com", f"+1555000000{i}"])
        con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, "
                    "placed_at, delivered_at) VALUES (?, ?, 'shopify', 'delivered', 'US', 40, 'USD', ?, ?)",
                    [f"o{i}", f"c{i}", DELIVERED - timedelta(days=3), DELIVERED])
        con.execute("INSERT INTO order_events VALUES (?, ?, 'delivered', ?, NULL)", [f"e{i}", f"o{i}", DELIVERED])
    return con


def test_provider_callbacks_reach_the_store_and_the_next_decision_honours_them(tmp_path):
    con = _store(tmp_path / "e2e.duckdb")

    async def scenario():
        endpoints = FeedbackEndpoints(con, {}, lambda: TICK)
        base = await endpoints.start()
        servers = ProviderServers(
            sendgrid={"event_webhook": base + "/sendgrid",
                      "outcomes": {"c0@example.com": "bounce", "c1@example.com": "spamreport"}},
            twilio={"undelivered": {"+15550000002": 30006}, "inbound_url": base + "/twilio/inbound"})
        sendgrid, token = servers.sendgrid, servers.twilio.auth_token
        endpoints.receivers.update({
            "/sendgrid": SendGridEvents(public_key=sendgrid.public_key, token=sendgrid.webhook_token),
            "/twilio/status": TwilioStatus(token), "/twilio/inbound": TwilioInbound(token)})
        try:
            async with servers:
                config = servers.config(email="sendgrid", twilio={"status_callback": base + "/twilio/status"})
                async with Engine(compile_text(FLOWS), con, channels=config, environ=servers.environ(),
                                  render_settings=RenderSettings.demo()) as engine:
                    report = await engine.tick(TICK)
                    await servers.sendgrid.settle()
                    await servers.twilio.settle()
                    stop = await servers.twilio.send_inbound("+15550000001", "STOP")
                    forged = await servers.twilio.post_back(base + "/twilio/inbound", b"From=%2B15550000001&Body=START",
                                                            {"X-Twilio-Signature": "Zm9yZ2Vk"})
            return report, stop, forged, servers
        finally:
            await endpoints.stop()

    report, stop, forged, servers = asyncio.run(scenario())
    assert report.sent == 6
    assert (stop, forged) == (200, 401)
    assert [c["answer"] for c in servers.twilio.callbacks] == [200] * 7  # six statuses and the STOP
    assert servers.sendgrid.event_posts and all(p["answer"] == 200 for p in servers.sendgrid.event_posts)
    assert rows(con, "SELECT customer_id, channel, reason, source FROM suppressions ORDER BY ALL") == [
        ("c0", "email", "hard_bounce", "sendgrid"), ("c1", "email", "complaint", "sendgrid"),
        ("c1", "sms", "sms_stop", "twilio"), ("c2", "sms", "undeliverable", "twilio")]
    assert dict(rows(con, "SELECT key, delivery FROM ledger")) == {
        "thanks:0:e0": "bounced", "thanks:0:e1": "delivered", "thanks:0:e2": "delivered",
        "thanks_sms:0:e0": "delivered", "thanks_sms:0:e1": "delivered", "thanks_sms:0:e2": "bounced"}
    assert sorted(rows(con, "SELECT customer_id, event FROM customer_events")) == [
        ("c0", "bounced"), ("c1", "complained"), ("c1", "unsubscribed"), ("c2", "bounced")]

    # the gates see the suppressions: a later flow on the same channels skips those buyers
    async def second():
        async with ProviderServers() as again:
            follow_up = FLOWS.replace("flow thanks", "flow later")
            async with Engine(compile_text(follow_up), con, channels=again.config(email="sendgrid"),
                              environ=again.environ(), settings=EngineSettings(runner="later"),
                              render_settings=RenderSettings.demo()) as engine:
                return await engine.tick(TICK + timedelta(hours=1)), again

    later, again = asyncio.run(second())
    sent = {(d.customer_id, d.channel) for d in later.decisions if d.decision == "send"}
    assert sent == {("c2", "email"), ("c0", "sms")}
    assert [d.recipient for d in again.sendgrid.deliveries] == ["c2@example.com"]
    assert [d.recipient for d in again.twilio.deliveries] == ["+15550000000"]


def test_the_local_servers_sign_their_callbacks_as_the_providers_do():
    async def scenario():
        received = []

        async def capture(request):
            received.append((request.path, dict(request.headers), await request.read()))
            return web.Response()

        app = web.Application()
        app.router.add_post("/{name}", capture)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        try:
            async with ProviderServers(sendgrid={"event_webhook": base + "/sg", "signing": "token",
                                                 "outcomes": {"x@shop.test": "click"}},
                                       twilio={"inbound_url": base + "/in"}) as servers:
                await servers.twilio.send_inbound("+15550000009", "START")
                document = {"personalizations": [{"to": [{"email": "x@shop.test"}], "custom_args": {"msg_key": "k"}}],
                            "from": {"email": "s@shop.test"}, "subject": "s",
                            "content": [{"type": "text/plain", "value": "v"}]}
                servers.sendgrid.accept(servers.sendgrid.parse(json.dumps(document).encode()))
                await servers.sendgrid.settle()
                return received, base, servers.twilio.auth_token, servers.sendgrid.webhook_token
        finally:
            await runner.cleanup()

    received, base, auth_token, sg_token = asyncio.run(scenario())
    by_path = {path: (headers, body) for path, headers, body in received}
    headers, body = by_path["/in"]
    [start] = TwilioInbound(auth_token).parse(Inbound.of(base + "/in", headers, body))
    assert start.kind == "start" and start.address == "+15550000009"
    headers, body = by_path["/sg"]
    kinds = [e.kind for e in SendGridEvents(token=sg_token).parse(Inbound.of(base + "/sg", headers, body))]
    assert kinds == ["delivered", "opened", "clicked"]
    assert time.time() - json.loads(body)[0]["timestamp"] < 60
