"""`linkstar serve`, events in: canonical events, Shopify webhooks and provider feedback over HTTP.

Every endpoint family gets valid, forged, replayed, oversized and malformed requests, and the store
is checked for what was written and what was not.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import pytest
from test_serve_support import (
    TOKEN,
    Harness,
    line_headers,
    sendgrid_headers,
    shopify_headers,
    twilio_headers,
    whatsapp_headers,
)


def run(coro):
    return asyncio.run(coro)


def order_event(ident="evt-1", **extra):
    event = {"id": ident, "order_id": "o100", "event": "shipped", "occurred_at": "2026-09-02T09:00:00+09:00",
             "data": {"carrier": "yamato"},
             "order": {"customer_id": "c100", "marketplace": "shopify", "status": "shipped", "country": "JP",
                       "total": 3980, "total_currency": "JPY", "placed_at": "2026-09-01T12:00:00+09:00"}}
    event.update(extra)
    return event


# -- canonical events ---------------------------------------------------------------------------


def test_order_events_are_stored_once_with_their_records_and_a_replay_changes_nothing(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            batch = {"events": [order_event("evt-1"),
                                order_event("evt-2", event="delivered", occurred_at="2026-09-03T10:00:00Z",
                                            order={"id": "o100", "status": "delivered",
                                                   "delivered_at": "2026-09-03T10:00:00Z"},
                                            customer={"id": "c100", "country": "JP", "email": "aoi@example.jp",
                                                      "tags": ["vip", "line-friend"], "birthday": "1990-05-01",
                                                      "phone": "090 1234 5678".replace("090", "+8190")})]}
            first = await h.post("/v1/events/orders", json_body=batch)
            snapshot = h.rows("SELECT * FROM orders WHERE id = 'o100'")
            # the same ids again, with other values: a replay must not overwrite anything
            replay = {"events": [order_event("evt-1", order={"id": "o100", "status": "canceled"}),
                                 order_event("evt-2", order={"id": "o100", "total": 1})]}
            second = await h.post("/v1/events/orders", json_body=replay)
            return first, second, snapshot, h.rows("SELECT * FROM orders WHERE id = 'o100'"), \
                h.rows("SELECT id, event, occurred_at, data FROM order_events WHERE order_id = 'o100' ORDER BY id"), \
                h.rows("SELECT id, email, country, locale, timezone, order_count, tags, birthday::VARCHAR, phone "
                       "FROM customers WHERE id = 'c100'")

    first, second, before, after, events, customer = run(scenario())
    assert first == (200, {"stored": 2, "duplicates": 0, "duplicate_ids": []})
    assert second == (200, {"stored": 0, "duplicates": 2, "duplicate_ids": ["evt-1", "evt-2"]})
    assert before == after
    assert [(e[0], e[1], e[2].isoformat()) for e in events] == [
        ("evt-1", "shipped", "2026-09-02T00:00:00+00:00"), ("evt-2", "delivered", "2026-09-03T10:00:00+00:00")]
    assert json.loads(events[0][3]) == {"carrier": "yamato"}
    assert after[0][4] == "delivered" and str(after[0][7]) == "3980.00"  # status, total
    # the customer record merged in, with the market's defaults and the order figures recomputed
    assert customer == [("c100", "aoi@example.jp", "JP", "en", None, 1, ["vip", "line-friend"], "1990-05-01",
                         "+819012345678")]


def test_an_order_for_an_unknown_customer_creates_one_from_the_order(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            status, _ = await h.post("/v1/events/orders", json_body=order_event("evt-9"))
            return status, h.rows("SELECT id, country, source, locale, timezone, order_count FROM customers "
                                  "WHERE id = 'c100'")

    status, customer = run(scenario())
    assert status == 200
    assert customer == [("c100", "JP", "shopify", "ja", "Asia/Tokyo", 1)]


def test_the_customers_figures_follow_what_the_order_records_change(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            figures = "SELECT order_count, lifetime_value FROM customers WHERE id = 'c100'"
            await h.post("/v1/events/orders", json_body=order_event("f-1"))
            found = [h.rows(figures)[0]]
            await h.post("/v1/events/orders", json_body=order_event("f-2", event="delivered",
                                                                    order={"status": "delivered"}))
            found.append(h.rows(figures)[0])
            await h.post("/v1/events/orders", json_body=order_event("f-3", event="canceled",
                                                                    order={"status": "canceled"}))
            found.append(h.rows(figures)[0])
            return [(n, str(v)) for n, v in found]

    assert run(scenario()) == [(1, "3980.00"), (1, "3980.00"), (0, "0.00")]


def test_customer_events_bring_their_cart(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            event = {"id": "ce-1", "customer_id": "c0", "event": "cart_abandoned",
                     "occurred_at": "2026-09-01T10:00:00Z",
                     "cart": {"id": "cart-7", "total": "59.90", "total_currency": "usd", "item_count": 2}}
            stored = await h.post("/v1/events/customers", json_body=event)
            wrong = await h.post("/v1/events/customers", json_body={**event, "id": "ce-2", "event": "delivered"})
            return stored, wrong, h.rows("SELECT id, customer_id, event, cart_id FROM customer_events"), \
                h.rows("SELECT id, customer_id, total, total_currency, item_count FROM carts")

    stored, wrong, events, carts = run(scenario())
    assert stored[0] == 200 and stored[1]["stored"] == 1
    assert wrong[0] == 400 and "is a order event" in wrong[1]["message"].replace("an order", "a order")
    assert events == [("ce-1", "c0", "cart_abandoned", "cart-7")]
    assert [(c[0], c[1], str(c[2]), c[3], c[4]) for c in carts] == [("cart-7", "c0", "59.90", "USD", 2)]


@pytest.mark.parametrize("body, field, words", [
    (b"{not json", None, "not valid JSON"),
    (json.dumps(order_event(event="delivred")), "event", "did you mean `delivered`"),
    (json.dumps(order_event(occurred_at="31/31/2026")), "occurred_at", "is not a date"),
    (json.dumps(order_event(order={"total": "12,5"})), "order.total", '"12,5" is not a number'),
    (json.dumps(order_event(order={"status": "lost"})), "order.status", '"lost" is not one of'),
    (json.dumps(order_event(colour="red")), "colour", "unknown field"),
    (json.dumps(order_event(id=None)), "id", "is required"),
    (json.dumps({"events": [order_event("a"), order_event("b", order={"totl": 1})]}), "events[1].order.totl",
     "did you mean `total`"),
    (json.dumps(order_event(order={"id": "o999", "status": "paid"}, order_id=None)), "order",
     "is not in the store yet, so customer_id, marketplace, country, total, total_currency, placed_at must be given"),
    (json.dumps(order_event(order={"id": "o5"})), "order.id", "is not the event's order_id"),
    (json.dumps([]), "events", "there are no events"),
])
def test_malformed_events_are_refused_with_the_field_named_and_nothing_is_written(tmp_path, body, field, words):
    async def scenario():
        async with Harness(tmp_path) as h:
            answer = await h.post("/v1/events/orders", data=body, headers={"Content-Type": "application/json"})
            return answer, h.rows("SELECT count(*) FROM order_events")[0][0], h.rows("SELECT count(*) FROM orders")[0][0]

    (status, error), events, orders = run(scenario())
    assert status == 400 and error["error"] == "invalid"
    assert words in error["message"]
    assert error.get("field") == field or (field and error["field"].endswith(field))
    assert (events, orders) == (2, 2)  # the store's own rows only


def test_events_need_the_service_token(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            missing = await h.post("/v1/events/orders", json_body=order_event(), token=None)
            async with h.http.post(h.url("/v1/events/orders"), json=order_event()) as r:
                challenge = r.headers.get("WWW-Authenticate")
            forged = await h.post("/v1/events/orders", json_body=order_event(), token=TOKEN[:-1] + "x")
            basic = await h.post("/v1/events/orders", json_body=order_event(), token=None,
                                 headers={"Authorization": "Basic " + TOKEN})
            return missing, challenge, forged, basic, h.rows("SELECT count(*) FROM order_events")[0][0]

    missing, challenge, forged, basic, events = run(scenario())
    assert missing[0] == 401 and missing[1]["error"] == "unauthorized"
    assert challenge.startswith("Bearer")
    assert forged[0] == 403 and forged[1]["error"] == "forbidden"
    assert basic[0] == 401
    assert events == 2


def test_oversized_requests_get_413_and_too_many_events_400(tmp_path):
    async def scenario():
        async with Harness(tmp_path, max_body=4096, max_events=3) as h:
            big = {"events": [order_event(f"big-{i}", data={"pad": "x" * 1500}) for i in range(3)]}
            oversized = await h.post("/v1/events/orders", json_body=big)

            async def chunks():  # no Content-Length: the limit holds while reading
                for _ in range(10):
                    yield b" " * 1000

            async with h.http.post(h.url("/v1/events/orders"), data=chunks(),
                                   headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                streamed = r.status
            many = await h.post("/v1/events/orders", json_body=[order_event(f"n{i}") for i in range(4)])
            return oversized, streamed, many, h.rows("SELECT count(*) FROM order_events")[0][0]

    oversized, streamed, many, events = run(scenario())
    assert oversized[0] == 413 and oversized[1]["error"] == "too-large"
    assert streamed == 413
    assert many[0] == 400 and "at most 3" in many[1]["message"]
    assert events == 2


def test_new_events_wake_the_engine_soon(tmp_path):
    async def scenario():
        async with Harness(tmp_path, debounce=0.05) as h:
            before = h.service.ticks.ticks
            await h.post("/v1/events/orders", json_body=order_event())
            for _ in range(100):
                if h.service.ticks.ticks > before:
                    break
                await asyncio.sleep(0.02)
            woken = h.service.ticks.ticks - before
            await h.post("/v1/events/orders", json_body=order_event())  # a duplicate wakes nothing
            await asyncio.sleep(0.2)
            return woken, h.service.ticks.ticks - before

    woken, total = run(scenario())
    assert woken == 1 and total == 1


# -- Shopify ----------------------------------------------------------------------------------------


def shopify_order(status="paid", **extra):
    order = {"id": 820982911946154500, "email": "jon@example.com", "created_at": "2026-09-01T10:00:00-04:00",
             "processed_at": "2026-09-01T10:00:00-04:00", "cancelled_at": None, "financial_status": status,
             "fulfillment_status": None, "total_price": "59.00", "currency": "USD", "customer_locale": "en-US",
             "customer": {"id": 115310627314723950, "email": "jon@example.com", "phone": "+15551234567",
                          "first_name": "Jon", "last_name": "Snow", "tags": "",
                          "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                                      "consent_updated_at": "2026-08-01T10:00:00-04:00"}},
             "shipping_address": {"country_code": "US", "province_code": "NY"},
             "line_items": [{"id": 1, "quantity": 2, "price": "29.50"}], "fulfillments": [], "refunds": []}
    order.update(extra)
    return order


def test_shopify_order_webhooks_are_verified_mapped_and_stored_once(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            body = json.dumps(shopify_order()).encode()
            created = await h.post("/v1/webhooks/shopify", data=body, token=None,
                                   headers=shopify_headers(body, "orders/create", "wh-1"))
            replay = await h.post("/v1/webhooks/shopify", data=body, token=None,
                                  headers=shopify_headers(body, "orders/create", "wh-1"))
            fulfilled = shopify_order(fulfillment_status="fulfilled", fulfillments=[
                {"id": 9, "status": "success", "created_at": "2026-09-02T08:00:00-04:00",
                 "updated_at": "2026-09-04T12:00:00-04:00", "shipment_status": "delivered",
                 "tracking_url": "https://track.example.com/9"}])
            body2 = json.dumps(fulfilled).encode()
            delivered = await h.post("/v1/webhooks/shopify", data=body2, token=None,
                                     headers=shopify_headers(body2, "orders/fulfilled", "wh-2"))
            refund = json.dumps({"id": 77, "order_id": 820982911946154500,
                                 "created_at": "2026-09-05T09:00:00-04:00"}).encode()
            refunded = await h.post("/v1/webhooks/shopify", data=refund, token=None,
                                    headers=shopify_headers(refund, "refunds/create", "wh-3"))
            other = b'{"id": 1}'
            ignored = await h.post("/v1/webhooks/shopify", data=other, token=None,
                                   headers=shopify_headers(other, "products/update", "wh-4"))
            oid = "820982911946154500"
            return (created, replay, delivered, refunded, ignored,
                    h.rows("SELECT status, country, state, total, item_count, tracking_url FROM orders WHERE id = ?",
                           [oid]),
                    h.rows("SELECT id, event FROM order_events WHERE order_id = ? ORDER BY occurred_at", [oid]),
                    h.rows("SELECT id, name, email, phone FROM customers WHERE id = '115310627314723950'"),
                    h.rows("SELECT channel, purpose, level, source FROM consents"),
                    h.rows("SELECT event_id, kind FROM inbound_seen ORDER BY event_id"))

    created, replay, delivered, refunded, ignored, order, events, customer, consents, seen = run(scenario())
    assert created[0] == 200 and created[1]["duplicate"] is False and created[1]["action"] == "order"
    assert replay == (200, {"topic": "orders/create", "action": "order", "duplicate": True})
    assert delivered[0] == refunded[0] == ignored[0] == 200 and ignored[1]["action"] == "ignore"
    assert [(o[0], o[1], o[2], str(o[3]), o[4], o[5]) for o in order] == [
        ("delivered", "US", "NY", "59.00", 2, "https://track.example.com/9")]
    assert [e[1] for e in events] == ["ordered", "paid", "shipped", "delivered", "refunded"]
    assert events[-1][0] == "820982911946154500:refunded:77"
    assert customer == [("115310627314723950", "Jon Snow", "jon@example.com", "+15551234567")]
    assert consents == [("email", "marketing", "express", "shopify_import")]
    assert [s[0] for s in seen] == ["wh-1", "wh-2", "wh-3", "wh-4"]


def test_forged_unsigned_and_malformed_shopify_webhooks_are_refused(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            body = json.dumps(shopify_order()).encode()
            good = shopify_headers(body, "orders/create", "wh-9")
            unsigned = {k: v for k, v in good.items() if k != "X-Shopify-Hmac-Sha256"}
            forged = shopify_headers(body, "orders/create", "wh-9", secret="not-the-secret")
            tampered = body.replace(b"59.00", b"0.01")
            no_id = {k: v for k, v in good.items() if k != "X-Shopify-Webhook-Id"}
            broken = b'{"id": 5, "total_price": "1"'
            no_country = json.dumps(shopify_order(shipping_address=None)).encode()
            answers = [
                await h.post("/v1/webhooks/shopify", data=body, headers=unsigned, token=None),
                await h.post("/v1/webhooks/shopify", data=body, headers=forged, token=None),
                await h.post("/v1/webhooks/shopify", data=tampered, headers=good, token=None),
                await h.post("/v1/webhooks/shopify", data=body, headers=no_id, token=None),
                await h.post("/v1/webhooks/shopify", data=broken, token=None,
                             headers=shopify_headers(broken, "orders/create", "wh-10")),
                await h.post("/v1/webhooks/shopify", data=no_country, token=None,
                             headers=shopify_headers(no_country, "orders/create", "wh-11")),
            ]
            return answers, h.rows("SELECT count(*) FROM orders")[0][0], h.rows("SELECT count(*) FROM inbound_seen")

    answers, orders, seen = run(scenario())
    assert [a[0] for a in answers] == [401, 403, 403, 400, 400, 400]
    assert "X-Shopify-Webhook-Id" in answers[3][1]["message"]
    assert "no country" in answers[5][1]["message"]
    assert orders == 2 and seen == [(0,)]


# -- provider feedback --------------------------------------------------------------------------------


def line_body(kind="unfollow", event_id="01LINE", user="U" + f"{1:032x}"):
    return json.dumps({"destination": "U" + "f" * 32, "events": [
        {"type": kind, "timestamp": 1788436800000, "mode": "active", "webhookEventId": event_id,
         "deliveryContext": {"isRedelivery": False}, "source": {"type": "user", "userId": user}}]}).encode()


def test_line_webhooks_are_verified_applied_once_and_refused_when_forged(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            body = line_body()
            ok = await h.post("/v1/webhooks/line", data=body, headers=line_headers(body), token=None)
            again = await h.post("/v1/webhooks/line", data=body, headers=line_headers(body), token=None)
            forged = await h.post("/v1/webhooks/line", data=line_body(event_id="X"), token=None,
                                  headers=line_headers(body))
            unsigned = await h.post("/v1/webhooks/line", data=body, token=None,
                                    headers={"Content-Type": "application/json"})
            bad = b'{"destination": "U1"}'
            malformed = await h.post("/v1/webhooks/line", data=bad, headers=line_headers(bad), token=None)
            ping = b'{"destination": "U1", "events": []}'
            verify = await h.post("/v1/webhooks/line", data=ping, headers=line_headers(ping), token=None)
            return [ok, again, forged, unsigned, malformed, verify], \
                h.rows("SELECT customer_id, channel, reason FROM suppressions"), \
                h.rows("SELECT count(*) FROM feedback_seen")[0][0]

    answers, suppressions, seen = run(scenario())
    assert [a[0] for a in answers] == [200, 200, 403, 401, 400, 200]
    assert "events" in answers[4][1]["message"]
    assert suppressions == [("c1", "line", "line_unfollow")]
    assert seen == 1


def test_twilio_inbound_stop_and_status_callbacks(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            stop = {"MessageSid": "SM-in-1", "From": "+15550000000", "To": "+15005550006", "Body": "STOP"}
            url = h.url("/v1/webhooks/twilio/inbound")
            body = urlencode(stop)
            ok = await h.post("/v1/webhooks/twilio/inbound", data=body, headers=twilio_headers(url, stop), token=None)
            replay = await h.post("/v1/webhooks/twilio/inbound", data=body, headers=twilio_headers(url, stop),
                                  token=None)
            start = {**stop, "MessageSid": "SM-in-2", "Body": "START"}
            forged = await h.post("/v1/webhooks/twilio/inbound", data=urlencode(start), token=None,
                                  headers=twilio_headers(url, stop))
            status = {"MessageSid": "SM-out-1", "MessageStatus": "undelivered", "ErrorCode": "30006",
                      "To": "+15550000001", "From": "+15005550006"}
            surl = h.url("/v1/webhooks/twilio/status?msg_key=thanks%3A0%3Ae1")
            bounced = await h.post("/v1/webhooks/twilio/status?msg_key=thanks%3A0%3Ae1", data=urlencode(status),
                                   headers=twilio_headers(surl, status), token=None)
            garbled = await h.post("/v1/webhooks/twilio/status", data=b"%%%=&&", token=None,
                                   headers=twilio_headers(h.url("/v1/webhooks/twilio/status"), {}))
            return [ok, replay, forged, bounced, garbled], \
                h.rows("SELECT customer_id, channel, reason FROM suppressions ORDER BY ALL"), \
                h.rows("SELECT customer_id, event FROM customer_events ORDER BY ALL")

    answers, suppressions, events = run(scenario())
    assert [a[0] for a in answers] == [200, 200, 403, 200, 400]
    assert answers[0][1].startswith("<?xml") and "<Response>" in answers[0][1]  # TwiML: no reply message
    assert suppressions == [("c0", "sms", "sms_stop"), ("c1", "sms", "undeliverable")]
    assert events == [("c0", "unsubscribed"), ("c1", "bounced")]


def test_sendgrid_and_whatsapp_feedback_and_the_whatsapp_handshake(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            sg = json.dumps([{"email": "C0@example.com", "timestamp": 1788436800, "event": "bounce",
                              "type": "bounce", "sg_event_id": "sg-1", "sg_message_id": "m1.x"}]).encode()
            bounced = await h.post("/v1/webhooks/sendgrid", data=sg, headers=sendgrid_headers(), token=None)
            wrong = await h.post("/v1/webhooks/sendgrid", data=sg, headers=sendgrid_headers("guess"), token=None)
            none = await h.post("/v1/webhooks/sendgrid", data=sg, token=None)
            wa = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [
                {"field": "messages", "value": {"statuses": [
                    {"id": "wamid.1", "status": "failed", "timestamp": "1788436800", "recipient_id": "15550000001",
                     "errors": [{"code": 131050}]}]}}]}]}).encode()
            opted_out = await h.post("/v1/webhooks/whatsapp", data=wa, headers=whatsapp_headers(wa), token=None)
            forged = await h.post("/v1/webhooks/whatsapp", data=wa, headers=whatsapp_headers(wa, "x"), token=None)
            query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
            handshake = await h.get("/v1/webhooks/whatsapp", params=query)
            refused = await h.get("/v1/webhooks/whatsapp", params={**query, "hub.verify_token": "nope"})
            incomplete = await h.get("/v1/webhooks/whatsapp", params={"hub.mode": "subscribe"})
            return [bounced, wrong, none, opted_out, forged, handshake, refused, incomplete], \
                h.rows("SELECT customer_id, channel, reason FROM suppressions ORDER BY ALL")

    answers, suppressions = run(scenario())
    assert [a[0] for a in answers] == [200, 403, 401, 200, 403, 200, 403, 400]
    assert answers[5][1] == "1158201444"
    assert suppressions == [("c0", "email", "hard_bounce")]  # WhatsApp: no customer has that number


def test_feedback_bodies_over_the_limit_are_413_and_unconfigured_endpoints_404(tmp_path):
    async def scenario():
        async with Harness(tmp_path, max_body=2048, secrets={"line_secret": "line-channel-secret"}) as h:
            body = line_body()[:-3] + b' ' * 3000 + line_body()[-3:]
            big = await h.post("/v1/webhooks/line", data=body, headers=line_headers(body), token=None)
            off = await h.post("/v1/webhooks/whatsapp", data=b"{}", token=None)
            events_off = await h.post("/v1/events/orders", json_body=order_event())
            return big, off, events_off

    big, off, events_off = run(scenario())
    assert big[0] == 413
    assert off[0] == 404 and "LINKSTAR_WHATSAPP_APP_SECRET" in off[1]["message"]
    assert events_off[0] == 404 and events_off[1]["error"] == "not-configured"


def test_unknown_routes_and_methods_answer_json(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            return await h.get("/nowhere"), await h.get("/v1/events/orders")

    missing, method = run(scenario())
    assert missing[0] == 404 and missing[1]["error"] == "not-found"
    assert method[0] == 405

