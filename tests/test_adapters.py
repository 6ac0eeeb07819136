"""The channel adapters against the local provider servers: success, every error class, retries,
idempotent retries, rate limits, fallback, the circuit breaker, SMTP headers, webhook signatures,
secrets and masking, and the declarative descriptions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest

from linkstar_dsl.adapters import (
    AmazonSolicitation,
    ChannelEngine,
    ChannelsConfig,
    DescriptionError,
    Email,
    LineFlex,
    MissingSecret,
    Outcome,
    OutgoingMessage,
    Text,
    WhatsAppTemplate,
    all_descriptions,
    error_table,
    mask_recipient,
    registry,
    send_with_fallback,
)
from linkstar_dsl.adapters.descriptions import parse_description
from linkstar_dsl.adapters.http import HttpAdapter
from linkstar_dsl.adapters.idempotency import line_retry_key, webhook_id
from linkstar_dsl.adapters.limits import CircuitBreaker, backoff_delay
from linkstar_dsl.adapters.messages import SendResult
from linkstar_dsl.adapters.webhook import verify_signature
from linkstar_dsl.providers import Fault, ProviderServers

USER = "U" + "0123456789abcdef" * 2
PHONE = "+819012345678"
ORDER = "503-1234567-1234567"
FAST = {"backoff": 0.01, "max_backoff": 0.05}
UNSUBSCRIBE = "https://shop.example/unsubscribe/c1"


def run(coro):
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def harness(*, email="smtp", environ=None, server_options=None, **overrides):
    """Every local server, and an engine pointed at them with fast back-off."""
    async with ProviderServers(**(server_options or {})) as servers:
        options = servers.provider_options()
        config = servers.config(email=email, **{
            name: {**overrides.get(name, {}), "limits": {**FAST, **overrides.get(name, {}).get("limits", {})}}
            for name in options})
        async with ChannelEngine(config, environ=environ or servers.environ(), plugins=False) as engine:
            yield servers, engine


def line(key="flow:0:o1", to=USER, text="ご注文ありがとうございます"):
    return OutgoingMessage(key, "line", to, Text(text), purpose="service")


def whatsapp_template(key="flow:0:o1", to=PHONE, name="order_shipped"):
    components = ({"type": "body", "parameters": [{"type": "text", "text": "A-100"}]},)
    return OutgoingMessage(key, "whatsapp", to, WhatsAppTemplate(name, "ja", components), purpose="transactional")


def sms(key="flow:0:o1", to="+15551234567"):
    return OutgoingMessage(key, "sms", to, Text("Your order shipped"), purpose="transactional")


def email(key="flow:0:o1", to="alice@example.com", purpose="marketing", unsubscribe=UNSUBSCRIBE):
    return OutgoingMessage(key, "email", to, Email("A gift for you", "plain text", "<p>html</p>"),
                           purpose=purpose, unsubscribe_url=unsubscribe)


def amazon(key="flow:0:o1", order=ORDER):
    return OutgoingMessage(key, "amazon", order, AmazonSolicitation(), purpose="review")


def webhook(key="flow:0:o1"):
    return OutgoingMessage(key, "webhook", "customer-1", Text("hello"), purpose="service")


# -- success ------------------------------------------------------------------------------------

def test_each_channel_sends_the_real_request_shape():
    async def scenario():
        async with harness() as (servers, engine):
            results = {m.channel: await engine.send(m) for m in
                       (line(), whatsapp_template(), sms(), email(), amazon(), webhook())}
            assert all(r.outcome is Outcome.SENT and r.attempts == 1 for r in results.values()), results
            assert results["line"].provider_message_id == servers.line.deliveries[0].message_id

            pushed = servers.line.received[0]
            assert pushed.headers["X-Line-Retry-Key"] == line_retry_key("flow:0:o1")
            assert pushed.json() == {"to": USER, "messages": [{"type": "text", "text": "ご注文ありがとうございます"}]}

            sent = servers.whatsapp.deliveries[0].payload
            assert sent["template"] == {"name": "order_shipped", "language": {"code": "ja"}, "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "A-100"}]}]}
            assert sent["to"] == "819012345678" and sent["biz_opaque_callback_data"] == "flow:0:o1"

            form = servers.twilio.deliveries[0].payload
            assert form["To"] == "+15551234567" and form["From"] == "+15005550006"
            assert form["StatusCallback"].endswith("msg_key=flow%3A0%3Ao1")

            mail = servers.smtp.messages[0].message
            assert mail["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"

            assert [r.method for r in servers.amazon.received] == ["GET", "POST"]
            assert servers.amazon.received[1].query == {"marketplaceIds": "A1VC38T7YXB528"}

            assert servers.webhook.deliveries[0].key == webhook_id("flow:0:o1")
    run(scenario())


def test_line_flex_and_sendgrid_mail_are_built_as_the_providers_expect():
    async def scenario():
        async with harness(email="sendgrid") as (servers, engine):
            bubble = {"type": "bubble", "body": {"type": "box", "layout": "vertical",
                                                 "contents": [{"type": "text", "text": "Thanks!"}]}}
            flex = OutgoingMessage("f:1:o1", "line", USER, LineFlex("Thanks", bubble))
            assert (await engine.send(flex)).sent
            assert servers.line.deliveries[0].payload["messages"][0] == {"type": "flex", "altText": "Thanks",
                                                                         "contents": bubble}
            result = await engine.send(email())
            assert result.sent and result.provider_message_id
            body = servers.sendgrid.deliveries[0].payload
            assert body["personalizations"][0]["custom_args"] == {"msg_key": "flow:0:o1"}
            assert body["headers"] == {"List-Unsubscribe": f"<{UNSUBSCRIBE}>",
                                       "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
            assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    run(scenario())


def test_whatsapp_session_text_goes_only_inside_the_24_hour_window():
    async def scenario():
        async with harness(server_options={"whatsapp": {"open_windows": {"819012345678"}}}) as (servers, engine):
            now = datetime.now(timezone.utc)
            inside = OutgoingMessage("f:0:a", "whatsapp", PHONE, Text("hi"), session_until=now + timedelta(hours=3))
            outside = OutgoingMessage("f:0:b", "whatsapp", PHONE, Text("hi"), session_until=now - timedelta(hours=1))
            assert (await engine.send(inside)).sent
            refused = await engine.send(outside)
            assert (refused.outcome, refused.category, refused.code) == (Outcome.PERMANENT, "REROUTE",
                                                                         "outside_session_window")
            assert len(servers.whatsapp.received) == 1
    run(scenario())


# -- every error class --------------------------------------------------------------------------

ERROR_CASES = [
    # (name, message, server options, fault, outcome, class, code, suppress reason)
    ("line bad to", line(to="nobody"), {}, None, Outcome.PERMANENT, "PERM", "400", None),
    ("line blocked (404)", line(), {}, Fault(kind="error", status=404, message="Not found"), Outcome.SUPPRESS,
     "SUPPRESS", "404", "line_unfollow"),
    ("line monthly quota", line(), {"line": {"monthly_quota": 0}}, None, Outcome.RETRYABLE, "DEFER", "429", None),
    ("whatsapp opted out of marketing", whatsapp_template(name="winback"),
     {"whatsapp": {"templates": {"winback": "marketing"}, "marketing_opt_outs": {"819012345678"}}}, None,
     Outcome.SUPPRESS, "SUPPRESS", "131050", "whatsapp_marketing_opt_out"),
    ("whatsapp not on whatsapp", whatsapp_template(), {"whatsapp": {"not_on_whatsapp": {"819012345678"}}}, None,
     Outcome.SUPPRESS, "SUPPRESS", "131026", "undeliverable"),
    ("whatsapp needs a template", OutgoingMessage(
        "k", "whatsapp", PHONE, Text("hi"), session_until=datetime.now(timezone.utc) + timedelta(hours=1)), {}, None,
     Outcome.PERMANENT, "REROUTE", "131047", None),
    ("whatsapp marketing limit", whatsapp_template(), {}, Fault(kind="error", status=400, code=131049),
     Outcome.RETRYABLE, "DEFER", "131049", None),
    ("whatsapp unknown template", whatsapp_template(name="nope"), {"whatsapp": {"templates": {}}}, None,
     Outcome.PERMANENT, "PERM", "132001", None),
    ("sms stop", sms(to="+15550000000"), {"twilio": {"stopped": {"+15550000000"}}}, None, Outcome.SUPPRESS,
     "SUPPRESS", "21610", "sms_stop"),
    ("sms landline", sms(to="+15550000001"), {"twilio": {"landlines": {"+15550000001"}}}, None, Outcome.SUPPRESS,
     "SUPPRESS", "21614", "undeliverable"),
    ("sms invalid to", sms(to="12345"), {}, None, Outcome.PERMANENT, "PERM", "21211", None),
    ("sms server error", sms(), {}, Fault(kind="status", status=500), Outcome.RETRYABLE, "RETRY?", "20500", None),
    ("smtp hard bounce", email(to="gone@example.com"), {"smtp": {"bounce": {"gone@example.com"}}}, None,
     Outcome.SUPPRESS, "SUPPRESS", "5.1.1", "hard_bounce"),
    ("smtp no unsubscribe url", email(unsubscribe=None), {}, None, Outcome.PERMANENT, "PERM",
     "missing_unsubscribe_url", None),
    ("amazon not eligible", amazon(), {"amazon": {"ineligible": {ORDER}}}, None, Outcome.PERMANENT, "PERM",
     "not_eligible", None),
    ("amazon bad order id", amazon(order="12"), {}, None, Outcome.PERMANENT, "PERM", "InvalidInput", None),
    ("webhook endpoint gone", webhook(), {}, Fault(kind="status", status=410), Outcome.RETRYABLE, "HALT", "410",
     None),
]


@pytest.mark.parametrize("name, message, server_options, fault, outcome, category, code, reason", ERROR_CASES,
                         ids=[case[0] for case in ERROR_CASES])
def test_every_error_class(name, message, server_options, fault, outcome, category, code, reason):
    async def scenario():
        async with harness(server_options=server_options) as (servers, engine):
            if fault is not None:
                provider = engine.adapters[message.channel].provider
                servers.all[provider].inject(fault)
            result = await engine.send(message)
            assert (result.outcome, result.category, result.code, result.suppress_reason) == \
                   (outcome, category, code, reason), result
            assert result.message
            if outcome is Outcome.RETRYABLE:
                assert result.attempts == 1  # DEFER, HALT and RETRY? without a key are not retried inline
    run(scenario())


def test_sendgrid_classes_http_errors():
    async def scenario():
        async with harness(email="sendgrid") as (servers, engine):
            bad = await engine.send(email(to="not-an-address"))
            assert (bad.outcome, bad.status) == (Outcome.PERMANENT, 400) and "valid address" in bad.message
            servers.sendgrid.inject(Fault(kind="status", status=503))
            down = await engine.send(email())
            assert (down.outcome, down.category, down.attempts) == (Outcome.RETRYABLE, "RETRY?", 1)
            assert servers.sendgrid.deliveries == []
    run(scenario(), )


def test_bad_credentials_halt_the_provider():
    async def scenario():
        async with ProviderServers() as servers:
            environ = {**servers.environ(), "LINKSTAR_LINE_CHANNEL_TOKEN": "expired"}
            async with ChannelEngine(servers.config(), environ=environ, plugins=False) as engine:
                first = await engine.send(line())
                assert (first.outcome, first.category, first.status) == (Outcome.RETRYABLE, "HALT", 401)
                assert first.retry_after >= 30
                second = await engine.send(line(key="flow:0:o2"))
                assert second.code == "circuit_open"
                assert len(servers.line.received) == 1
    run(scenario())


def test_smtp_transient_and_permanent_replies():
    async def scenario():
        async with harness(server_options={"smtp": {"defer": {"busy@example.com"}}},
                           smtp={"limits": {"retries": 1}}) as (servers, engine):
            busy = await engine.send(email(to="busy@example.com"))
            assert (busy.outcome, busy.status, busy.code, busy.attempts) == (Outcome.RETRYABLE, 451, "4.3.0", 2)
            servers.smtp.fail_data("554 5.7.1 Message rejected as spam")
            spam = await engine.send(email())
            assert (spam.outcome, spam.status, spam.code) == (Outcome.PERMANENT, 554, "5.7.1")
    run(scenario())


# -- retries ------------------------------------------------------------------------------------

def test_transient_failures_are_retried_until_sent():
    async def scenario():
        async with harness() as (servers, engine):
            servers.line.inject(Fault(kind="status", status=500, times=2))
            result = await engine.send(line())
            assert result.sent and result.attempts == 3
            servers.twilio.inject(Fault(kind="error", status=429, code=20429))
            result = await engine.send(sms())
            assert result.sent and result.attempts == 2
            servers.whatsapp.inject(Fault(kind="error", status=400, code=130429))
            result = await engine.send(whatsapp_template())
            assert result.sent and result.attempts == 2
            assert (len(servers.line.deliveries), len(servers.twilio.deliveries)) == (1, 1)
    run(scenario())


def test_retries_stop_after_the_configured_number():
    async def scenario():
        async with harness(line={"limits": {"retries": 2}}) as (servers, engine):
            servers.line.inject(Fault(kind="status", status=502, times=-1))
            result = await engine.send(line())
            assert (result.outcome, result.attempts) == (Outcome.RETRYABLE, 3)
            assert len(servers.line.received) == 3
    run(scenario())


def test_retry_after_is_honoured():
    async def scenario():
        async with harness() as (servers, engine):
            servers.line.inject(Fault(kind="throttle", retry_after=1))
            result = await engine.send(line())
            assert result.sent and result.attempts == 2
            first, second = servers.line.received
            assert second.at - first.at >= 1.0
    run(scenario())


def test_a_long_retry_after_goes_back_to_the_runtime():
    async def scenario():
        async with harness() as (servers, engine):
            servers.line.inject(Fault(kind="throttle", retry_after=3600))
            result = await engine.send(line())
            assert (result.outcome, result.attempts) == (Outcome.RETRYABLE, 1)
            assert 3600 <= result.retry_after
    run(scenario())


# -- idempotent retries: no duplicate at the server ---------------------------------------------

@pytest.mark.parametrize("fault", [Fault(kind="status", status=500, deliver=True),
                                   Fault(kind="reset", deliver=True),
                                   Fault(kind="hang", delay=2, deliver=True)], ids=["5xx", "reset", "timeout"])
def test_line_retry_after_a_lost_answer_is_recognised_not_redelivered(fault):
    async def scenario():
        async with harness(line={"timeout": 0.3}) as (servers, engine):
            servers.line.inject(fault)
            result = await engine.send(line())
            assert result.sent and result.category == "DONE" and result.attempts == 2
            assert len(servers.line.deliveries) == 1
            keys = {r.headers["X-Line-Retry-Key"] for r in servers.line.received}
            assert keys == {line_retry_key("flow:0:o1")}
    run(scenario())


def test_the_same_ledger_key_sent_again_later_is_not_delivered_twice():
    async def scenario():
        async with harness() as (servers, engine):
            assert (await engine.send(line())).category == "OK"
            again = await engine.send(line())  # a runner that restarted after a crash
            assert again.sent and again.category == "DONE"
            assert (await engine.send(webhook())).sent and (await engine.send(webhook())).sent
            assert len(servers.line.deliveries) == 1 and len(servers.webhook.deliveries) == 1
    run(scenario())


def test_webhook_and_amazon_retries_do_not_duplicate():
    async def scenario():
        async with harness() as (servers, engine):
            servers.webhook.inject(Fault(kind="status", status=502, deliver=True))
            assert (await engine.send(webhook())).attempts == 2
            servers.amazon.inject(Fault(kind="status", status=503, deliver=True, method="POST"))
            result = await engine.send(amazon())
            assert result.sent and result.attempts == 2
            assert len(servers.webhook.deliveries) == 1 and len(servers.amazon.deliveries) == 1
    run(scenario())


def test_without_an_idempotency_key_a_doubtful_failure_is_not_resent():
    async def scenario():
        async with harness(twilio={"timeout": 0.3}) as (servers, engine):
            servers.twilio.inject(Fault(kind="hang", delay=2, deliver=True))
            result = await engine.send(sms())
            assert (result.outcome, result.category, result.code) == (Outcome.RETRYABLE, "RETRY?", "timeout")
            assert result.maybe_delivered and result.attempts == 1
            assert len(servers.twilio.received) == 1
    run(scenario())


# -- rate limits --------------------------------------------------------------------------------

def _max_in_window(times: list[float], period: float) -> int:
    times = sorted(times)
    start, best = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= period:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_account_rate_limit_holds_at_the_server():
    async def scenario():
        async with harness(line={"limits": {"per_second": 40}}) as (servers, engine):
            results = await asyncio.gather(*(engine.send(line(key=f"f:0:{i}")) for i in range(100)))
            assert all(r.sent for r in results)
            arrivals = [r.at for r in servers.line.received]
            assert _max_in_window(arrivals, 1.0) <= 40
            assert max(arrivals) - min(arrivals) >= 2.0
    run(scenario())


def test_channel_rate_limit_holds_across_accounts():
    async def scenario():
        async with ProviderServers() as servers:
            options = servers.provider_options()["line"]
            config = ChannelsConfig(providers={"line_jp": {**options, "provider": "line", "account": "jp"},
                                               "line_tw": {**options, "provider": "line", "account": "tw"}},
                                    channel_limits={"line": 30})
            async with ChannelEngine(config, environ=servers.environ(), plugins=False) as engine:
                jp, tw = engine.providers["line_jp"], engine.providers["line_tw"]
                sends = [(jp if i % 2 else tw).send(line(key=f"f:0:{i}")) for i in range(70)]
                assert all(r.sent for r in await asyncio.gather(*sends))
            assert _max_in_window([r.at for r in servers.line.received], 1.0) <= 30
    run(scenario())


def test_concurrency_is_capped():
    async def scenario():
        async with harness(line={"limits": {"concurrency": 3}}) as (servers, engine):
            servers.line.inject(Fault(kind="hang", delay=0.05, times=12, deliver=True))
            adapter = engine.adapters["line"]
            peak = 0

            async def watch():
                nonlocal peak
                while True:
                    peak = max(peak, 3 - adapter.limits.slots._value)
                    await asyncio.sleep(0.005)
            watcher = asyncio.ensure_future(watch())
            await asyncio.gather(*(engine.send(line(key=f"f:0:{i}")) for i in range(12)))
            watcher.cancel()
            assert peak == 3
    run(scenario())


# -- fallback -----------------------------------------------------------------------------------

def test_fallback_moves_on_after_a_permanent_failure_or_a_suppression():
    async def scenario():
        options = {"twilio": {"stopped": {"+15550000000"}}}
        async with harness(server_options=options) as (servers, engine):
            servers.line.inject(Fault(kind="error", status=404, message="Not found"))
            outcome = await send_with_fallback(engine.adapters, [
                line(), sms(to="+15550000000"), email(to="bob@example.com")])
            assert outcome.sent and outcome.channel == "email"
            assert [channel for channel, _ in outcome.tried] == ["line", "sms", "email"]
            assert outcome.suppressions == (("line", "line_unfollow"), ("sms", "sms_stop"))
            assert len(servers.smtp.messages) == 1
    run(scenario())


def test_fallback_stops_at_the_first_channel_that_sends_or_must_be_retried():
    async def scenario():
        async with harness(line={"limits": {"retries": 0}}) as (servers, engine):
            outcome = await engine.send_with_fallback([line(), email()])
            assert outcome.channel == "line" and servers.smtp.messages == []
            servers.line.inject(Fault(kind="status", status=503))
            outcome = await engine.send_with_fallback([line(key="f:0:2"), email(key="f:0:2")])
            assert outcome.result.outcome is Outcome.RETRYABLE and outcome.channel == "line"
            assert servers.smtp.messages == []  # a temporary failure is retried later, not rerouted
            outcome = await engine.send_with_fallback([OutgoingMessage("f:0:3", "fax", "x", Text("x")),
                                                       email(key="f:0:3")])
            assert outcome.sent and outcome.tried[0][1].code == "no_adapter"
    run(scenario())


def test_send_with_fallback_takes_any_adapter():
    class Refusing:
        async def send(self, message):
            return SendResult(Outcome.PERMANENT, "test", "REROUTE", code="x")

    class Accepting:
        async def send(self, message):
            return SendResult(Outcome.SENT, "test", "OK", provider_message_id=message.key)

    outcome = run(send_with_fallback({"whatsapp": Refusing(), "email": Accepting()},
                                     [whatsapp_template(), email()]))
    assert outcome.sent and outcome.result.provider_message_id == "flow:0:o1"


# -- circuit breaker ----------------------------------------------------------------------------

def test_circuit_breaker_opens_then_half_opens_and_closes():
    async def scenario():
        limits = {"retries": 0, "breaker_failures": 3, "breaker_cooldown": 0.3}
        async with harness(line={"limits": limits}) as (servers, engine):
            servers.line.inject(Fault(kind="status", status=503, times=-1))
            failures = [await engine.send(line(key=f"f:0:{i}")) for i in range(3)]
            assert all(r.outcome is Outcome.RETRYABLE and r.code == "503" for r in failures)
            blocked = await engine.send(line(key="f:0:3"))
            assert blocked.code == "circuit_open" and 0 < blocked.retry_after <= 0.3
            assert len(servers.line.received) == 3
            await asyncio.sleep(0.35)
            probe = await engine.send(line(key="f:0:4"))   # half-open: one trial, still failing
            assert probe.code == "503" and engine.adapters["line"].breaker.state == "open"
            servers.line.faults.clear()
            await asyncio.sleep(0.35)
            assert (await engine.send(line(key="f:0:5"))).sent
            assert engine.adapters["line"].breaker.state == "closed"
    run(scenario())


def test_breaker_ignores_throttles_and_bad_messages():
    clock = [0.0]
    breaker = CircuitBreaker(failures=2, cooldown=10, clock=lambda: clock[0])
    for _ in range(5):
        breaker.record(outage=False)
    assert breaker.state == "closed"
    breaker.record(outage=True)
    breaker.record(outage=False)
    breaker.record(outage=True)
    assert breaker.state == "closed"
    breaker.record(outage=True)
    assert breaker.state == "open" and breaker.blocked_for() == 10
    clock[0] = 10
    assert breaker.blocked_for() is None and breaker.blocked_for() is not None  # one probe at a time


def test_backoff_grows_with_jitter_and_never_undercuts_retry_after():
    import random
    rng = random.Random(1)
    assert all(0 <= backoff_delay(a, 0.5, 30, None, rng) <= min(30, 0.5 * 2 ** (a - 1)) for a in range(1, 10))
    assert all(2.0 <= backoff_delay(1, 0.5, 30, 2.0, rng) <= 3.0 for _ in range(20))


# -- SMTP and the webhook signature -------------------------------------------------------------

def test_smtp_marketing_mail_carries_rfc_8058_one_click_headers(tmp_path):
    async def scenario():
        async with ProviderServers(smtp={"username": "shop", "password": "s3cret"}) as servers:
            secrets = tmp_path / "secrets.toml"
            secrets.write_text('LINKSTAR_SMTP_USERNAME = "shop"\nLINKSTAR_SMTP_PASSWORD = "s3cret"\n')
            config = ChannelsConfig(providers={"smtp": servers.provider_options()["smtp"]},
                                    secrets_file=str(secrets))
            async with ChannelEngine(config, environ={}, plugins=False) as engine:
                result = await engine.send(email())
                service = await engine.send(email(key="f:1:o1", purpose="service", unsubscribe=None))
            assert result.sent and service.sent
            marketing, plain = (m.message for m in servers.smtp.messages)
            assert marketing["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
            assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert marketing["Message-ID"].strip("<>") == result.provider_message_id
            assert marketing.get_body(("html",)).get_content().strip() == "<p>html</p>"
            assert plain["List-Unsubscribe"] is None
    run(scenario())


def test_webhook_signature_is_verifiable_by_the_receiver():
    async def scenario():
        async with harness() as (servers, engine):
            assert (await engine.send(webhook())).sent
            request = servers.webhook.received[0]
            assert request.headers["webhook-signature"].startswith("v1,")
            assert verify_signature(servers.webhook.secret, request.headers, request.body)
            assert not verify_signature(servers.webhook.secret, request.headers, request.body + b" ")
            assert not verify_signature("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", request.headers, request.body)
            assert request.json()["data"]["key"] == "flow:0:o1"
    run(scenario())


# -- secrets, logs, keys ------------------------------------------------------------------------

def test_a_missing_secret_names_the_variable_and_stops_the_engine():
    async def scenario():
        config = ChannelsConfig(providers={"line": {"base_url": "http://127.0.0.1:9"}})
        with pytest.raises(MissingSecret, match="LINKSTAR_LINE_CHANNEL_TOKEN"):
            async with ChannelEngine(config, environ={}, plugins=False):
                pass
    run(scenario())


def test_logs_mask_recipients_and_never_show_credentials(caplog):
    async def scenario():
        async with harness(email="sendgrid") as (servers, engine):
            await engine.send(sms(to="+15551234567"))
            await engine.send(email(to="alice@example.com"))
            await engine.send(line())
            return servers.environ()
    with caplog.at_level(logging.DEBUG, logger="linkstar"):
        environ = run(scenario())
    text = caplog.text
    assert "+15*****4567" in text and "a***@example.com" in text
    assert "+15551234567" not in text and "alice@example.com" not in text and USER not in text
    assert not any(secret in text for secret in environ.values())


def test_masking():
    assert mask_recipient("+819012345678") == "+81*****5678"
    assert mask_recipient("alice@example.com") == "a***@example.com"
    assert mask_recipient(USER) == "U*****cdef"
    assert mask_recipient("short") == "*****"


def test_retry_key_is_a_uuid5_derived_from_the_ledger_key():
    key = line_retry_key("survey:0:order-1:delivered")
    assert uuid.UUID(key).version == 5 and key == str(uuid.UUID(key))
    assert key == line_retry_key("survey:0:order-1:delivered") != line_retry_key("survey:1:order-1:delivered")


# -- descriptions, the error table and plug-ins -------------------------------------------------

def test_every_description_loads_and_covers_success_and_failure():
    descriptions, _ = all_descriptions(plugins=False)
    assert set(descriptions) == {"line", "whatsapp", "twilio", "sendgrid", "smtp", "amazon", "webhook"}
    for description in descriptions.values():
        categories = {rule.category for rule in description.errors}
        assert "OK" in categories and categories & {"RETRY", "RETRY?"}, description.name
        assert any(rule.transports for rule in description.errors), description.name


def test_error_table_lists_every_mapped_code():
    table = error_table()
    descriptions, _ = all_descriptions(plugins=False)
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == sum(len(d.errors) for d in descriptions.values())
    for needle in ("code 21610 | `SUPPRESS` | suppress | `sms_stop`", "code 131050", "code 131047 | `REROUTE`",
                   "code 131049 | `DEFER` | retryable", "status 409 | `DONE` | sent", "code 5.1.1"):
        assert needle in table, needle


@pytest.mark.parametrize("change, message", [
    ({"class": "MAYBE"}, "`class` must be one of"),
    ({"class": "SUPPRESS"}, "names a `reason`"),
    ({"reason": "tired"}, "names a `reason`"),
    ({"status": "5xx"}, "`status` is a number or a range"),
])
def test_a_broken_description_is_refused_with_its_file_and_field(change, message):
    data = {"provider": {"name": "x", "channel": "sms", "base_url": "http://x"},
            "errors": [{"status": 200, "class": "OK", **change}]}
    with pytest.raises(DescriptionError, match=message):
        parse_description(data, Path("x.toml"))


DECLARATIVE = '''
[provider]
name = "line_by_toml"
channel = "line"
base_url = "http://unused"
repeat_safe = true

[auth]
scheme = "bearer"
secrets = { token = "LINKSTAR_LINE_CHANNEL_TOKEN" }

[endpoints]
push = "POST /v2/bot/message/push"

[request]
endpoint = "push"
body = { to = "{to}", messages = [{ type = "text", text = "{text}" }] }
headers = { X-Line-Retry-Key = "{key_uuid}" }

[response]
message_id = "sentMessages.0.id"
message = "message"

[[errors]]
status = 200
class = "OK"

[[errors]]
status = 409
class = "DONE"

[[errors]]
status = 400
class = "PERM"
'''


def test_a_provider_described_only_in_toml_sends(tmp_path):
    (tmp_path / "line_by_toml.toml").write_text(DECLARATIVE)

    async def scenario():
        async with ProviderServers() as servers:
            config = ChannelsConfig(providers={"line_by_toml": {"base_url": servers.urls["line"]}},
                                    description_dirs=(str(tmp_path),))
            async with ChannelEngine(config, environ=servers.environ(), plugins=False) as engine:
                first = await engine.send(line())
                again = await engine.send(line())
                flex = await engine.send(OutgoingMessage("f", "line", USER, LineFlex("x", {"type": "bubble"})))
            assert (first.category, again.category) == ("OK", "DONE")
            assert (flex.outcome, flex.code) == (Outcome.PERMANENT, "unsupported_content")
            assert servers.line.deliveries[0].payload["messages"] == [{"type": "text", "text": line().content.body}]
    run(scenario())


class EchoAdapter(HttpAdapter):
    """A plug-in adapter in one module: its description rides along as a mapping."""

    DESCRIPTION = {"provider": {"name": "echo", "channel": "echo", "base_url": "http://unused"},
                   "errors": [{"code": "echoed", "class": "OK", "meaning": "echoed"}]}

    async def send(self, message):
        return self.refused("echoed", message.key)


def test_plug_ins_register_through_the_entry_point_group(monkeypatch, tmp_path):
    (tmp_path / "by_path.toml").write_text(DECLARATIVE.replace("line_by_toml", "by_path"))

    class Entry:
        def __init__(self, name, target):
            self.name, self._target = name, target

        def load(self):
            return self._target

    def fake_entry_points(group):
        assert group == "linkstar.channels"
        return [Entry("echo", EchoAdapter), Entry("by_path", tmp_path / "by_path.toml")]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)

    async def scenario():
        config = ChannelsConfig(providers={"echo": {}})
        async with ChannelEngine(config, environ={}) as engine:
            result = await engine.send(OutgoingMessage("k:1", "echo", "x", Text("x")))
            assert result.sent and result.message == "k:1"
            assert "by_path" in engine_descriptions()
    run(scenario())


def engine_descriptions():
    descriptions, _ = all_descriptions()
    return descriptions


# -- configuration and the runtime's side -------------------------------------------------------

def test_configuration_file_names_providers_routes_and_the_secrets_file(tmp_path):
    async def scenario():
        async with ProviderServers() as servers:
            (tmp_path / "secrets.toml").write_text(f'LINKSTAR_SENDGRID_API_KEY = "{servers.sendgrid.api_key}"\n')
            (tmp_path / "linkstar.toml").write_text(
                '[channels]\nsecrets_file = "secrets.toml"\nroutes = { email = "sendgrid" }\n'
                'limits = { email = 50 }\n\n'
                f'[channels.providers.sendgrid]\nbase_url = "{servers.urls["sendgrid"]}"\n'
                'from_email = "shop@example.com"\nlimits = { retries = 0 }\n')
            config = ChannelsConfig.from_toml(tmp_path / "linkstar.toml")
            assert config.secrets_file == str(tmp_path / "secrets.toml")
            async with ChannelEngine(config, environ={}, plugins=False) as engine:
                assert engine.adapters["email"].settings.retries == 0
                assert [limiter.limit for limiter in engine.adapters["email"].limits.limiters] == [50, 100]
                assert (await engine.send(email())).sent
    run(scenario())


def test_a_decision_becomes_an_outgoing_message():
    from linkstar_dsl.gates import Decision
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    known = dict(flow="jp_survey", step=0, key="jp_survey:0:o1:delivered", order_id="o1", customer_id="c1",
                 channel="line", template="survey", decision="send", reason="sent", detail="via line",
                 due_at=now, send_at=now, purpose="service")
    decision = Decision(**{f.name: known.get(f.name, "x") for f in attrs.fields(Decision)})
    message = OutgoingMessage.for_decision(decision, USER, Text("x"), unsubscribe_url=UNSUBSCRIBE)
    assert (message.key, message.channel, message.purpose) == ("jp_survey:0:o1:delivered", "line", "service")
    assert message.metadata == {"flow": "jp_survey", "step": "0", "customer_id": "c1", "order_id": "o1",
                                "template": "survey"}
    assert message.unsubscribe_url == UNSUBSCRIBE


def test_the_servers_report_what_they_received_with_recipients_masked():
    async def scenario():
        async with harness() as (servers, engine):
            for message in (line(), whatsapp_template(), sms(), email(), amazon(), webhook()):
                await engine.send(message)
            return servers.report()
    report = run(scenario())
    assert "U*****cdef: text 'ご注文ありがとうございます'" in report
    assert "81*****5678: template order_shipped (ja)" in report
    assert "a***@example.com: email 'A gift for you'" in report
    assert "1 request(s), 1 delivered" in report and "2 request(s), 1 delivered" in report
    assert "alice@example.com" not in report


def test_the_documented_declarative_example_is_a_valid_description():
    import tomllib

    import linkstar_dsl.adapters as package
    example = package.__doc__.split("`linkstar_dsl.adapters.declarative` for the placeholders)::")[1]
    example = example.split("\nPut the file")[0]
    description = parse_description(tomllib.loads(example.replace("\n    ", "\n")), Path("acme_sms.toml"))
    assert description.name == "acme_sms" and description.request["endpoint"] == "send"
    assert [rule.category for rule in description.errors] == ["OK", "SUPPRESS", "RETRY?"]
