"""The local provider servers behave like the real APIs: request shapes, refusals, idempotency,
rate limits, faults and the control API."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import aiosmtplib
import pytest

from linkstar_dsl.adapters import all_descriptions
from linkstar_dsl.adapters.webhook import sign
from linkstar_dsl.providers import (
    AmazonServer,
    Fault,
    LineServer,
    ProviderServers,
    SendGridServer,
    SmtpServer,
    TwilioServer,
    WebhookReceiver,
    WhatsAppServer,
)

USER = "U" + "0123456789abcdef" * 2
RETRY_KEY = "123e4567-e89b-12d3-a456-426614174000"


def run(coro):
    return asyncio.run(coro)


async def post(url, *, json_body=None, data=None, headers=None, timeout=5.0):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.post(url, json=json_body, data=data, headers=headers) as response:
            text = await response.text()
            return response.status, response.headers, (json.loads(text) if text.startswith(("{", "[")) else text)


async def get(url, *, headers=None):
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as response:
            return response.status, await response.json()


def line_headers(token="line-test-token", key=None):
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["X-Line-Retry-Key"] = key
    return headers


def push(text="hello", to=USER):
    return {"to": to, "messages": [{"type": "text", "text": text}]}


# -- LINE -----------------------------------------------------------------------------------------

def test_line_accepts_a_push_and_answers_with_sent_messages():
    async def scenario():
        async with LineServer() as line:
            status, headers, body = await post(line.base_url + "/v2/bot/message/push", json_body=push(),
                                               headers=line_headers())
            assert status == 200 and body["sentMessages"][0]["id"]
            assert "X-Line-Request-Id" in headers
            assert [d.recipient for d in line.deliveries] == [USER]
    run(scenario())


@pytest.mark.parametrize("document, prop", [
    (push(to="not-a-user-id"), "to"),
    ({"to": USER, "messages": []}, "messages"),
    ({"to": USER, "messages": [{"type": "text", "text": "x"}] * 6}, "messages"),
    (push(text=""), "messages[0].text"),
    (push(text="x" * 5001), "messages[0].text"),
    ({"to": USER, "messages": [{"type": "flex", "contents": {"type": "bubble"}}]}, "messages[0].altText"),
    ({"to": USER, "messages": [{"type": "fax"}]}, "messages[0].type"),
])
def test_line_refuses_a_malformed_push_with_its_error_json(document, prop):
    async def scenario():
        async with LineServer() as line:
            status, _, body = await post(line.base_url + "/v2/bot/message/push", json_body=document,
                                         headers=line_headers())
            assert status == 400
            assert body["message"].startswith("The request body has")
            assert prop in [d["property"] for d in body["details"]]
            assert line.deliveries == []
    run(scenario())


def test_line_checks_the_token_and_the_retry_key_format():
    async def scenario():
        async with LineServer() as line:
            url = line.base_url + "/v2/bot/message/push"
            status, _, body = await post(url, json_body=push(), headers=line_headers(token="wrong"))
            assert status == 401 and "access token" in body["message"]
            status, _, body = await post(url, json_body=push(), headers=line_headers(key="not-a-uuid"))
            assert status == 400 and "X-Line-Retry-Key" in body["message"]
    run(scenario())


def test_line_runs_a_retry_key_once_and_answers_409_to_a_repeat():
    async def scenario():
        async with LineServer() as line:
            url = line.base_url + "/v2/bot/message/push"
            first = await post(url, json_body=push(), headers=line_headers(key=RETRY_KEY))
            second = await post(url, json_body=push(), headers=line_headers(key=RETRY_KEY))
            assert first[0] == 200 and second[0] == 409
            assert second[1]["X-Line-Accepted-Request-Id"] == first[1]["X-Line-Request-Id"]
            assert second[2]["sentMessages"] == first[2]["sentMessages"]
            assert len(line.deliveries) == 1 and len(line.received) == 2
    run(scenario())


def test_line_blocked_user_gets_200_and_nothing_is_delivered():
    async def scenario():
        async with LineServer(blocked={USER}) as line:
            status, _, _ = await post(line.base_url + "/v2/bot/message/push", json_body=push(),
                                      headers=line_headers())
            assert status == 200 and line.deliveries == [] and len(line.undelivered) == 1
    run(scenario())


def test_line_monthly_quota_and_rate_limit_answer_429_as_line_does():
    async def scenario():
        async with LineServer(monthly_quota=1, rate_limit=(2, 60.0)) as line:
            url = line.base_url + "/v2/bot/message/push"
            answers = [await post(url, json_body=push(), headers=line_headers()) for _ in range(3)]
            assert [a[0] for a in answers] == [200, 429, 429]
            assert answers[1][2]["message"] == "You have reached your monthly limit."
            assert answers[2][2]["message"].startswith("The API rate limit has been exceeded")
            assert int(answers[2][1]["Retry-After"]) >= 1
    run(scenario())


# -- WhatsApp -------------------------------------------------------------------------------------

def test_whatsapp_accepts_templates_and_answers_errors_in_graph_api_shape():
    async def scenario():
        server = WhatsAppServer(templates={"order_shipped": "utility", "winback": "marketing"},
                                marketing_opt_outs={"819012345678"})
        async with server:
            url = f"{server.base_url}/v21.0/{server.phone_number_id}/messages"
            auth = {"Authorization": "Bearer whatsapp-test-token"}
            template = {"messaging_product": "whatsapp", "to": "819012345678", "type": "template",
                        "template": {"name": "order_shipped", "language": {"code": "ja"}}}
            status, _, body = await post(url, json_body=template, headers=auth)
            assert status == 200 and body["messages"][0]["id"].startswith("wamid.")
            marketing = {**template, "template": {"name": "winback", "language": {"code": "ja"}}}
            status, _, body = await post(url, json_body=marketing, headers=auth)
            assert status == 400 and body["error"]["code"] == 131050 and body["error"]["fbtrace_id"]
            text = {"messaging_product": "whatsapp", "to": "819012345678", "type": "text", "text": {"body": "hi"}}
            status, _, body = await post(url, json_body=text, headers=auth)
            assert body["error"]["code"] == 131047
            status, _, body = await post(url, json_body={"to": "819012345678"}, headers=auth)
            assert status == 400 and body["error"]["code"] == 100
            status, _, body = await post(url, json_body=template, headers={"Authorization": "Bearer nope"})
            assert status == 401 and body["error"]["code"] == 190
            wrong_number = f"{server.base_url}/v21.0/999/messages"
            status, _, body = await post(wrong_number, json_body=template, headers=auth)
            assert status == 400 and body["error"]["code"] == 100
            assert len(server.deliveries) == 1
    run(scenario())


# -- Twilio ---------------------------------------------------------------------------------------

def _basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_twilio_creates_a_message_resource_from_a_form():
    async def scenario():
        async with TwilioServer() as twilio:
            url = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
            status, _, body = await post(url, data={"To": "+15551234567", "From": "+15005550006", "Body": "hi"},
                                         headers=_basic(twilio.account_sid, twilio.auth_token))
            assert status == 201 and body["sid"].startswith("SM") and body["status"] == "queued"
            assert twilio.deliveries[0].payload["Body"] == "hi"
    run(scenario())


@pytest.mark.parametrize("form, code", [
    ({"From": "+15005550006", "Body": "hi"}, 21604),
    ({"To": "5551234", "From": "+15005550006", "Body": "hi"}, 21211),
    ({"To": "+15551234567", "Body": "hi"}, 21603),
    ({"To": "+15551234567", "From": "+15005550006"}, 21602),
    ({"To": "+15551234567", "From": "+15005550006", "Body": "x" * 1601}, 21617),
    ({"To": "+15550000000", "From": "+15005550006", "Body": "hi"}, 21610),
])
def test_twilio_refuses_with_its_error_json_and_code(form, code):
    async def scenario():
        async with TwilioServer(stopped={"+15550000000"}) as twilio:
            url = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
            status, _, body = await post(url, data=form, headers=_basic(twilio.account_sid, twilio.auth_token))
            assert status == 400
            assert body["code"] == code and body["status"] == 400
            assert body["more_info"].endswith(str(code)) and body["message"]
    run(scenario())


def test_twilio_rejects_bad_credentials_with_20003():
    async def scenario():
        async with TwilioServer() as twilio:
            url = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
            status, _, body = await post(url, data={"To": "+15551234567"}, headers=_basic(twilio.account_sid, "x"))
            assert status == 401 and body["code"] == 20003
    run(scenario())


def test_twilio_reports_delivery_to_the_status_callback():
    async def scenario():
        async with WebhookReceiver() as receiver, TwilioServer(undelivered={"+15559999999": 30006}) as twilio:
            url = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
            callback = receiver.base_url + "/status/twilio?msg_key=f:0:1"
            for to in ("+15551234567", "+15559999999"):
                await post(url, data={"To": to, "From": "+15005550006", "Body": "hi", "StatusCallback": callback},
                           headers=_basic(twilio.account_sid, twilio.auth_token))
            for _ in range(50):
                if len(receiver.status_reports) == 4:
                    break
                await asyncio.sleep(0.02)
            by_number = {(r["To"], r["MessageStatus"]): r for r in receiver.status_reports}
            assert ("+15551234567", "delivered") in by_number
            assert by_number[("+15559999999", "undelivered")]["ErrorCode"] == "30006"
            assert all(r["msg_key"] == "f:0:1" for r in receiver.status_reports)
    run(scenario())


# -- SendGrid -------------------------------------------------------------------------------------

def test_sendgrid_queues_valid_mail_and_lists_every_problem_otherwise():
    async def scenario():
        async with SendGridServer(suppressed={"gone@example.com"}) as sendgrid:
            url = sendgrid.base_url + "/v3/mail/send"
            auth = {"Authorization": "Bearer SG.sendgrid-test-key"}
            mail = {"personalizations": [{"to": [{"email": "a@example.com"}]}], "from": {"email": "s@shop.example"},
                    "subject": "Hi", "content": [{"type": "text/plain", "value": "x"}]}
            status, headers, body = await post(url, json_body=mail, headers=auth)
            assert status == 202 and body == "" and headers["X-Message-Id"]
            bad = {"personalizations": [{"to": [{"email": "nope"}]}], "content": []}
            status, _, body = await post(url, json_body=bad, headers=auth)
            fields = {e["field"] for e in body["errors"]}
            assert status == 400 and {"personalizations.0.to.0.email", "from.email", "subject", "content"} <= fields
            too_many = {**mail, "personalizations": [{"to": [{"email": f"u{i}@example.com"}]} for i in range(1001)]}
            status, _, body = await post(url, json_body=too_many, headers=auth)
            assert status == 400 and "1000" in body["errors"][0]["message"]
            suppressed = {**mail, "personalizations": [{"to": [{"email": "gone@example.com"}]}]}
            status, _, _ = await post(url, json_body=suppressed, headers=auth)
            assert status == 202 and len(sendgrid.dropped) == 1 and len(sendgrid.deliveries) == 1
            status, _, body = await post(url, json_body=mail, headers={"Authorization": "Bearer wrong"})
            assert status == 401 and "authorization grant" in body["errors"][0]["message"]
    run(scenario())


# -- Amazon ---------------------------------------------------------------------------------------

def test_amazon_offers_the_solicitation_once_per_order():
    async def scenario():
        async with AmazonServer() as amazon:
            token = {"x-amz-access-token": amazon.access_token}
            base = amazon.base_url + "/solicitations/v1/orders/503-1234567-1234567"
            query = "?marketplaceIds=A1VC38T7YXB528"
            status, body = await get(base + query, headers=token)
            assert status == 200
            assert [a["name"] for a in body["_links"]["actions"]] == ["productReviewAndSellerFeedback"]
            status, _, _ = await post(base + "/solicitations/productReviewAndSellerFeedback" + query, headers=token)
            assert status == 201
            status, _, body = await post(base + "/solicitations/productReviewAndSellerFeedback" + query, headers=token)
            assert status == 400 and body["errors"][0]["code"] == "InvalidInput"
            status, body = await get(base + query, headers=token)
            assert body["_links"]["actions"] == []
            status, body = await get(base + query, headers={"x-amz-access-token": "wrong"})
            assert status == 403 and body["errors"][0]["code"] == "Unauthorized"
            status, body = await get(base, headers=token)
            assert status == 400
            assert len(amazon.deliveries) == 1
    run(scenario())


# -- webhook receiver -----------------------------------------------------------------------------

def test_webhook_receiver_verifies_signatures_and_dedupes_on_the_id():
    async def scenario():
        async with WebhookReceiver() as receiver:
            body = json.dumps({"type": "t", "data": {"to": "c1"}}).encode()
            stamp = int(time.time())
            headers = {"webhook-id": "msg_1", "webhook-timestamp": str(stamp),
                       "webhook-signature": sign(receiver.secret, "msg_1", stamp, body),
                       "Content-Type": "application/json"}
            assert (await post(receiver.url, data=body, headers=headers))[0] == 200
            status, _, answer = await post(receiver.url, data=body, headers=headers)
            assert status == 200 and answer["duplicate"] is True
            tampered = body.replace(b"c1", b"c2")
            assert (await post(receiver.url, data=tampered, headers=headers))[0] == 401
            stale = {**headers, "webhook-timestamp": str(stamp - 3600),
                     "webhook-signature": sign(receiver.secret, "msg_1", stamp - 3600, body)}
            assert (await post(receiver.url, data=body, headers=stale))[0] == 401
            assert len(receiver.deliveries) == 1 and receiver.rejected == 2
    run(scenario())


# -- faults and the control API -------------------------------------------------------------------

def test_faults_are_injected_through_the_control_api():
    async def scenario():
        async with LineServer() as line:
            url = line.base_url + "/v2/bot/message/push"
            status, _, _ = await post(line.base_url + "/__control/faults",
                                      json_body={"kind": "throttle", "retry_after": 7, "times": 1})
            assert status == 201
            status, headers, _ = await post(url, json_body=push(), headers=line_headers())
            assert status == 429 and headers["Retry-After"] == "7"
            await post(line.base_url + "/__control/faults", json_body={"kind": "status", "status": 503})
            assert (await post(url, json_body=push(), headers=line_headers()))[0] == 503
            assert (await post(url, json_body=push(), headers=line_headers()))[0] == 200
            status, received = await get(line.base_url + "/__control/received")
            assert len(received) == 3 and received[0]["path"] == "/v2/bot/message/push"
            status, deliveries = await get(line.base_url + "/__control/deliveries")
            assert len(deliveries) == 1
            await post(line.base_url + "/__control/reset")
            assert line.received == [] and line.faults == []
            status, _, body = await post(line.base_url + "/__control/faults", json_body={"kind": "explode"})
            assert status == 400
    run(scenario())


def test_reset_and_hang_faults_break_the_connection_and_the_deadline():
    async def scenario():
        async with LineServer() as line:
            url = line.base_url + "/v2/bot/message/push"
            line.inject(Fault(kind="reset"))
            with pytest.raises(aiohttp.ClientError):
                await post(url, json_body=push(), headers=line_headers())
            line.inject(Fault(kind="hang", delay=5))
            with pytest.raises(asyncio.TimeoutError):
                await post(url, json_body=push(), headers=line_headers(), timeout=0.2)
            assert (await post(url, json_body=push(), headers=line_headers()))[0] == 200
    run(scenario())


def test_a_fault_can_target_one_recipient_and_deliver_before_failing():
    async def scenario():
        async with LineServer() as line:
            url = line.base_url + "/v2/bot/message/push"
            other = "U" + "f" * 32
            line.inject(Fault(kind="status", status=500, recipient=other, deliver=True))
            assert (await post(url, json_body=push(), headers=line_headers()))[0] == 200
            assert (await post(url, json_body=push(to=other), headers=line_headers()))[0] == 500
            assert [d.recipient for d in line.deliveries] == [USER, other]
    run(scenario())


# -- SMTP -----------------------------------------------------------------------------------------

def test_smtp_server_bounces_defers_and_requires_auth_when_configured():
    async def scenario():
        async with SmtpServer(bounce={"gone@example.com"}, defer={"busy@example.com"},
                              username="shop", password="secret") as smtp:
            mail = "Subject: hi\r\n\r\nbody\r\n"
            send = dict(sender="s@shop.example", hostname=smtp.host, port=smtp.port, start_tls=False)
            with pytest.raises(aiosmtplib.SMTPException):
                await aiosmtplib.send(mail, recipients=["a@example.com"], **send)
            await aiosmtplib.send(mail, recipients=["a@example.com"], username="shop", password="secret", **send)
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
                await aiosmtplib.send(mail, recipients=["gone@example.com"], username="shop", password="secret", **send)
            assert refused.value.recipients[0].code == 550
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as deferred:
                await aiosmtplib.send(mail, recipients=["busy@example.com"], username="shop", password="secret", **send)
            assert deferred.value.recipients[0].code == 451
            assert [m.recipients for m in smtp.messages] == [("a@example.com",)]
            assert smtp.messages[0].message["Subject"] == "hi"
    run(scenario())


# -- all together ---------------------------------------------------------------------------------

def test_provider_servers_start_every_server_on_its_own_loopback_port():
    async def scenario():
        async with ProviderServers() as servers:
            urls = servers.urls
            assert set(urls) == {"line", "whatsapp", "twilio", "sendgrid", "amazon", "webhook", "smtp"}
            ports = {url.split(":")[2].split("/")[0] for url in urls.values()}
            assert len(ports) == 7 and all("127.0.0.1" in url for url in urls.values())
            descriptions, _ = all_descriptions(plugins=False)
            needed = {var for d in descriptions.values() if not d.auth_optional for var in d.secrets.values()}
            assert needed <= set(servers.environ())
        for server in servers.all.values():
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", server.port)
    run(scenario())


def test_a_server_runs_on_its_own_from_the_command_line():
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen([sys.executable, "-m", "linkstar_dsl.providers", "line"], cwd=root,
                               stdout=subprocess.PIPE, text=True)
    try:
        ready = process.stdout.readline().split()
        assert ready[0] == "ready"

        async def scenario():
            status, _, _ = await post(ready[1] + "/v2/bot/message/push", json_body=push(), headers=line_headers())
            assert status == 200
            _, deliveries = await get(ready[1] + "/__control/deliveries")
            assert len(deliveries) == 1
        run(scenario())
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0
