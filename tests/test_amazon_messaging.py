"""Amazon buyer-seller messages through the SP-API Messaging API, next to the review solicitation.

The adapter runs inside the real `ChannelEngine` against the local Amazon server: the request
shapes, the message types an order offers, the checks made before any call, and every error class
of the description's table.  The server's own refusals are checked with a plain HTTP client, and
the example flows' Amazon templates are rendered and sent end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import aiohttp
import pytest

from linkstar_dsl.adapters import AmazonSolicitation, ChannelEngine, Email, Outcome, OutgoingMessage, Text
from linkstar_dsl.adapters.amazon import text_problem
from linkstar_dsl.providers import AmazonServer, Fault, ProviderServers
from linkstar_dsl.runtime.render import Renderer
from linkstar_dsl.runtime.render_context import RenderSettings
from linkstar_dsl.templates import TemplateStore

ORDER = "503-1234567-1234567"
MARKETPLACE = "A1VC38T7YXB528"
FAST = {"backoff": 0.01, "max_backoff": 0.05}
NOTICE = "Hello Alice,\nyour parcel is late and we are sorry for the wait.\nKind regards, the shop"


def run(coro):
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def harness(*, amazon_server=None, limits=None, **amazon_options):
    """Every local server, and an engine pointed at them; Amazon's options and limits can change."""
    async with ProviderServers(amazon=amazon_server or {}) as servers:
        overrides = {name: {"limits": dict(FAST)} for name in servers.provider_options()}
        overrides["amazon"] = {**amazon_options, "limits": {**FAST, **(limits or {})}}
        config = servers.config(**overrides)
        async with ChannelEngine(config, environ=servers.environ(), plugins=False) as engine:
            yield servers, engine


def notice(text=NOTICE, key="fbm_delivery_delay:0:o1", action=None, order=ORDER):
    metadata = {"amazon_action": action} if action else {}
    return OutgoingMessage(key, "amazon", order, Text(text), purpose="service", metadata=metadata)


def paths(server):
    return [(r.method, r.path) for r in server.received]


BASE = f"/messaging/v1/orders/{ORDER}"


# -- sending --------------------------------------------------------------------------------------

def test_a_text_goes_out_as_an_unexpected_problem_message():
    async def scenario():
        async with harness() as (servers, engine):
            result = await engine.send(notice())
            assert (result.outcome, result.category, result.status, result.attempts) == \
                   (Outcome.SENT, "OK", 201, 1), result
            amazon = servers.amazon
            assert paths(amazon) == [("GET", BASE), ("POST", BASE + "/messages/unexpectedProblem")]
            check, post = amazon.received
            assert check.query == post.query == {"marketplaceIds": MARKETPLACE}
            assert post.headers["x-amz-access-token"] == amazon.access_token
            assert post.headers["Content-Type"] == "application/json"
            assert post.json() == {"text": NOTICE}
            assert amazon.deliveries[0].recipient == ORDER
            assert amazon.deliveries[0].payload == {"order_id": ORDER, "marketplace_id": MARKETPLACE,
                                                    "action": "unexpectedProblem", "text": NOTICE}
            return servers.report()
    report = run(scenario())
    assert "message unexpectedProblem: 'Hello Alice,…'" in report
    assert ORDER not in report


def test_the_message_type_comes_from_the_metadata():
    async def scenario():
        async with harness() as (servers, engine):
            result = await engine.send(notice(action="confirmDeliveryDetails"))
            assert result.sent, result
            assert paths(servers.amazon)[1] == ("POST", BASE + "/messages/confirmDeliveryDetails")
            assert servers.amazon.deliveries[0].payload["action"] == "confirmDeliveryDetails"
    run(scenario())


def test_a_message_type_the_order_does_not_offer_is_not_eligible():
    async def scenario():
        async with harness(amazon_server={"messaging_actions": {ORDER: ["confirmOrderDetails"]}}) \
                as (servers, engine):
            result = await engine.send(notice())
            assert (result.outcome, result.category, result.code) == \
                   (Outcome.PERMANENT, "PERM", "not_eligible")
            assert "does not offer unexpectedProblem" in result.message
            assert paths(servers.amazon) == [("GET", BASE)]
            offered = await engine.send(notice(action="confirmOrderDetails", key="k2"))
            assert offered.sent and len(servers.amazon.deliveries) == 1
    run(scenario())


def test_solicitations_and_messages_share_the_channel():
    async def scenario():
        async with harness() as (servers, engine):
            review = OutgoingMessage("review:0:o1", "amazon", ORDER, AmazonSolicitation(), purpose="review")
            assert (await engine.send(review)).sent and (await engine.send(notice())).sent
            assert [d.payload.get("action", "solicitation") for d in servers.amazon.deliveries] == \
                   ["solicitation", "unexpectedProblem"]
            assert (await engine.send(review)).code == "not_eligible"  # once per order, as before
    run(scenario())


# -- refused before any call ------------------------------------------------------------------

REFUSED = [
    ("over 2000 characters", notice("x" * 2001), "unsupported_content",
     "2001 characters; Amazon allows 2000"),
    ("customization limit", notice("x" * 801, action="confirmCustomizationDetails"), "unsupported_content",
     "Amazon allows 800"),
    ("empty", notice("  \n "), "unsupported_content", "empty"),
    ("https link", notice("Track it at https://carrier.example/t/1"), "amazon_content", "link"),
    ("http link", notice("See HTTP://shop.example"), "amazon_content", "link"),
    ("textless type", notice(action="warranty"), "unsupported_content", "carries no text"),
    ("unknown type", notice(action="../../solicitations"), "unsupported_content", "unknown Amazon messaging"),
    ("review as text", notice(action="productReviewAndSellerFeedback"), "unsupported_content",
     "AmazonSolicitation"),
    ("email content", OutgoingMessage("k", "amazon", ORDER, Email("s", "t")), "unsupported_content",
     "Messaging API"),
]


@pytest.mark.parametrize("name, message, code, words", REFUSED, ids=[case[0] for case in REFUSED])
def test_what_amazon_would_refuse_is_refused_before_any_call(name, message, code, words):
    async def scenario():
        async with harness() as (servers, engine):
            result = await engine.send(message)
            assert (result.outcome, result.category, result.code, result.attempts) == \
                   (Outcome.PERMANENT, "PERM", code, 1), result
            assert words in result.message
            assert servers.amazon.received == []
    run(scenario())


def test_the_limit_itself_is_allowed():
    assert text_problem("unexpectedProblem", "x" * 2000) is None
    assert text_problem("digitalAccessKey", "x" * 401)[0] == "unsupported_content"
    assert text_problem("unexpectedProblem", None)[0] == "unsupported_content"
    assert text_problem(["not", "a", "name"], "hi")[0] == "unsupported_content"

    async def scenario():
        async with harness() as (servers, engine):
            assert (await engine.send(notice("é" * 2000))).sent
            assert len(servers.amazon.deliveries[0].payload["text"]) == 2000
    run(scenario())


# -- errors and retries ---------------------------------------------------------------------------

def test_a_throttle_is_retried_after_retry_after():
    async def scenario():
        async with harness() as (servers, engine):
            servers.amazon.inject(Fault(kind="throttle", retry_after=1, method="POST"))
            result = await engine.send(notice())
            assert result.sent and result.attempts == 2, result
            received = servers.amazon.received
            assert [r.method for r in received] == ["GET", "POST", "GET", "POST"]
            assert received[2].at - received[1].at >= 0.9
            assert len(servers.amazon.deliveries) == 1
    run(scenario())


def test_a_long_retry_after_goes_back_to_the_runtime():
    async def scenario():
        async with harness() as (servers, engine):
            servers.amazon.inject(Fault(kind="throttle", retry_after=120, method="GET"))
            result = await engine.send(notice())
            assert (result.outcome, result.category, result.code, result.attempts) == \
                   (Outcome.RETRYABLE, "RETRY", "QuotaExceeded", 1)
            assert result.retry_after == 120
    run(scenario())


def test_a_server_error_on_the_check_is_retried():
    async def scenario():
        async with harness() as (servers, engine):
            servers.amazon.inject(Fault(kind="status", status=503, method="GET"))
            result = await engine.send(notice())
            assert result.sent and result.attempts == 2
            assert len(servers.amazon.deliveries) == 1
    run(scenario())


def test_a_server_error_after_posting_is_not_resent():
    async def scenario():
        async with harness() as (servers, engine):
            servers.amazon.inject(Fault(kind="status", status=500, method="POST"))
            result = await engine.send(notice())
            assert (result.outcome, result.category, result.code, result.status, result.attempts) == \
                   (Outcome.RETRYABLE, "RETRY?", "message_unconfirmed", 500, 1), result
            assert "may have been sent" in result.message and "InternalFailure" in result.message
            assert [r.method for r in servers.amazon.received] == ["GET", "POST"]
            assert engine.adapters["amazon"].repeat_safe is False  # so the runtime does not resend at once
    run(scenario())


def test_a_lost_answer_is_doubtful_and_a_vanished_offer_counts_as_sent():
    async def scenario():
        async with harness(timeout=0.3) as (servers, engine):
            servers.amazon.inject(Fault(kind="hang", delay=2, method="POST", deliver=True))
            first = await engine.send(notice())
            assert (first.outcome, first.category, first.code, first.attempts) == \
                   (Outcome.RETRYABLE, "RETRY?", "message_unconfirmed", 1), first
            assert len(servers.amazon.deliveries) == 1
            # Amazon took the message, and the order no longer offers the type: that one was it.
            servers.amazon.messaging_actions[ORDER] = ["confirmDeliveryDetails"]
            again = await engine.send(notice())
            assert again.sent and "earlier attempt" in again.message
            assert len(servers.amazon.deliveries) == 1
            # Without a doubtful attempt before it, the same answer is simply not eligible.
            other = await engine.send(notice(key="other:0:o1"))
            assert other.code == "not_eligible"
    run(scenario())


def test_amazons_own_refusal_of_the_type_is_permanent_not_a_halt():
    async def scenario():
        async with harness() as (servers, engine):
            servers.amazon.inject(Fault(kind="error", status=403, code="Unauthorized", method="POST",
                                        message="Invalid amazonOrderId and template combination."))
            refused = await engine.send(notice())
            assert (refused.outcome, refused.category, refused.code, refused.status) == \
                   (Outcome.PERMANENT, "PERM", "Unauthorized", 403)
            assert (await engine.send(notice(key="k2"))).sent  # the circuit stayed closed
    run(scenario())


@pytest.mark.parametrize("fault, outcome, category, code", [
    (Fault(kind="error", status=403, code="Unauthorized", method="GET"), Outcome.RETRYABLE, "HALT",
     "Unauthorized"),
    (Fault(kind="error", status=404, code="NotFound", method="GET"), Outcome.PERMANENT, "PERM", "NotFound"),
    (Fault(kind="error", status=400, code="InvalidInput", method="POST"), Outcome.PERMANENT, "PERM",
     "InvalidInput"),
    (Fault(kind="error", status=413, code="RequestTooLarge", method="POST"), Outcome.PERMANENT, "PERM",
     "RequestTooLarge"),
    (Fault(kind="status", status=415, method="POST"), Outcome.PERMANENT, "PERM", "UnsupportedMediaType"),
], ids=["403 token", "404 order", "400 input", "413", "415"])
def test_the_error_table(fault, outcome, category, code):
    async def scenario():
        async with harness() as (servers, engine):
            servers.amazon.inject(fault)
            result = await engine.send(notice())
            assert (result.outcome, result.category, result.code, result.attempts) == \
                   (outcome, category, code, 1), result
            assert result.message and servers.amazon.deliveries == []
    run(scenario())


def test_a_bad_token_halts_messaging_too():
    async def scenario():
        async with ProviderServers() as servers:
            environ = {**servers.environ(), "LINKSTAR_AMAZON_ACCESS_TOKEN": "Atza|expired"}
            async with ChannelEngine(servers.config(), environ=environ, plugins=False) as engine:
                first = await engine.send(notice())
                assert (first.category, first.status, first.code) == ("HALT", 403, "Unauthorized")
                assert (await engine.send(notice(key="k2"))).code == "circuit_open"
                assert len(servers.amazon.received) == 1
    run(scenario())


# -- the local server refuses what Amazon refuses ------------------------------------------------

async def call(method, url, *, body=None, headers=None):
    async with aiohttp.ClientSession() as session, \
            session.request(method, url, data=body, headers=headers) as response:
        text = await response.text()
        return response.status, response.headers, (json.loads(text) if text.startswith("{") else text)


def test_the_server_lists_the_offered_types_as_hal():
    async def scenario():
        async with AmazonServer(messaging_actions={ORDER: ["confirmOrderDetails"]}) as amazon:
            token = {"x-amz-access-token": amazon.access_token}
            query = f"?marketplaceIds={MARKETPLACE}"
            status, headers, body = await call("GET", amazon.base_url + BASE + query, headers=token)
            assert status == 200 and headers["Content-Type"].startswith("application/hal+json")
            assert body["_links"]["actions"] == [{"href": f"{BASE}/messages/confirmOrderDetails{query}",
                                                  "name": "confirmOrderDetails"}]
            assert body["_links"]["self"] == {"href": BASE + query}
            assert body["_embedded"]["actions"][0]["_links"]["schema"]["name"] == "confirmOrderDetails"
            other = "/messaging/v1/orders/111-2222222-3333333"
            status, _, body = await call("GET", amazon.base_url + other + query, headers=token)
            names = [a["name"] for a in body["_links"]["actions"]]
            assert names == ["confirmDeliveryDetails", "unexpectedProblem"]
    run(scenario())


def _json(document) -> bytes:
    return json.dumps(document).encode()


MALFORMED = [
    ("no text", _json({}), "application/json", 400, "InvalidInput", "text is required"),
    ("text not a string", _json({"text": 5}), "application/json", 400, "InvalidInput", "must be a string"),
    ("empty text", _json({"text": ""}), "application/json", 400, "InvalidInput", "between 1 and 2000"),
    ("text too long", _json({"text": "x" * 2001}), "application/json", 400, "InvalidInput",
     "between 1 and 2000"),
    ("not json", b"{text", "application/json", 400, "InvalidInput", "not valid JSON"),
    ("not an object", _json(["hi"]), "application/json", 400, "InvalidInput", "JSON object"),
    ("form body", b"text=hi", "application/x-www-form-urlencoded", 415, "UnsupportedMediaType",
     "unsupported"),
]


@pytest.mark.parametrize("name, body, content_type, status, code, words", MALFORMED,
                         ids=[case[0] for case in MALFORMED])
def test_the_server_refuses_malformed_messages(name, body, content_type, status, code, words):
    async def scenario():
        async with AmazonServer() as amazon:
            url = amazon.base_url + BASE + f"/messages/unexpectedProblem?marketplaceIds={MARKETPLACE}"
            headers = {"x-amz-access-token": amazon.access_token, "Content-Type": content_type}
            answer = await call("POST", url, body=body, headers=headers)
            assert answer[0] == status and answer[2]["errors"][0]["code"] == code
            assert words in answer[2]["errors"][0]["message"]
            assert amazon.deliveries == []
    run(scenario())


def test_the_server_refuses_a_type_not_offered_and_bad_credentials():
    async def scenario():
        async with AmazonServer(messaging_actions={ORDER: ["unexpectedProblem"]}) as amazon:
            def url(order=ORDER, action="unexpectedProblem", query=f"?marketplaceIds={MARKETPLACE}"):
                return f"{amazon.base_url}/messaging/v1/orders/{order}/messages/{action}{query}"

            headers = {"x-amz-access-token": amazon.access_token, "Content-Type": "application/json"}
            body = _json({"text": "hi"})
            status, _, answer = await call("POST", url(action="confirmDeliveryDetails"), body=body,
                                           headers=headers)
            assert status == 403 and answer["errors"][0] == {
                "code": "Unauthorized", "message": "Invalid amazonOrderId and template combination.",
                "details": ""}
            wrong = {**headers, "x-amz-access-token": "wrong"}
            status, _, answer = await call("POST", url(), body=body, headers=wrong)
            assert (status, answer["errors"][0]["code"]) == (403, "Unauthorized")
            assert answer["errors"][0]["message"] == "Access to requested resource is denied."
            status, _, answer = await call("POST", url(order="12"), body=body, headers=headers)
            assert status == 400 and answer["errors"][0]["code"] == "InvalidInput"
            status, _, answer = await call("POST", url(query=""), body=body, headers=headers)
            assert status == 400 and "marketplaceIds" in answer["errors"][0]["message"]
            status, _, _ = await call("POST", url(), body=body, headers=headers)
            assert status == 201 and len(amazon.deliveries) == 1
    run(scenario())


def test_the_server_rate_limits_and_injects_faults_on_messages():
    async def scenario():
        async with AmazonServer(rate_limit=(2, 1.0)) as amazon:
            url = amazon.base_url + BASE + f"/messages/unexpectedProblem?marketplaceIds={MARKETPLACE}"
            headers = {"x-amz-access-token": amazon.access_token, "Content-Type": "application/json"}
            amazon.inject(Fault(kind="status", status=503, deliver=True))
            first = await call("POST", url, body=_json({"text": "one"}), headers=headers)
            assert first[0] == 503 and len(amazon.deliveries) == 1
            statuses = [(await call("POST", url, body=_json({"text": "more"}), headers=headers))
                        for _ in range(3)]
            assert [s[0] for s in statuses] == [201, 201, 429]
            assert statuses[2][1]["x-amzn-RateLimit-Limit"] == "1.0"
            assert statuses[2][2]["errors"][0]["code"] == "QuotaExceeded"
            assert len(amazon.deliveries) == 3
    run(scenario())


# -- the example flows' Amazon messages -----------------------------------------------------------

def test_the_example_amazon_notices_render_and_send():
    examples = Path(__file__).resolve().parents[1] / "examples"
    settings = RenderSettings.demo(link_secret="test-link-secret-0123456789abcdef",
                                   link_base_url="https://links.example.com")
    renderer = Renderer.for_flow_file(examples / "x.flow", settings)
    files = [tf for files in TemplateStore([examples / "templates"]).files.values() for tf in files
             if tf.channel == "amazon" and tf.name != "amazon_review_request"]
    assert {tf.name for tf in files} >= {"delivery_problem", "delivery_delay_update"}
    context = {"customer": {"name": "Alice"}, "order": {"id": ORDER, "tracking_url": "https://t.example/1"},
               "sender_name": "LinkStar Shop"}
    messages = []
    for number, tf in enumerate(files):
        content = renderer.render(tf.name, "amazon", tf.locale, context, purpose="service")
        assert isinstance(content, Text) and text_problem("unexpectedProblem", content.body) is None, tf.path
        messages.append(OutgoingMessage(f"{tf.name}:0:{number}", "amazon", ORDER, content, purpose="service"))

    async def scenario():
        async with harness(limits={"per_second": 500, "burst": 50}) as (servers, engine):
            results = [await engine.send(m) for m in messages]
            assert all(r.sent for r in results), [r for r in results if not r.sent]
            assert len(servers.amazon.deliveries) == len(messages)
    run(scenario())
