"""The HTTP side of `linkstar serve`: routes and handlers on aiohttp.

    POST /v1/events/orders, /v1/events/customers      canonical events (bearer token)
    POST /v1/webhooks/shopify                          Shopify webhooks (X-Shopify-Hmac-Sha256)
    POST /v1/webhooks/line | twilio/status | twilio/inbound | sendgrid | whatsapp
    GET  /v1/webhooks/whatsapp                         Meta's verification handshake
    POST /v1/customers/{id}/erase, /v1/customers/{id}/consents   (bearer token)
    GET/POST /u/{token}                                one-click unsubscribe (RFC 8058), in buyers.py
    GET/POST /p/{token}                                the preference page, in buyers.py
    GET  /healthz, /metrics

Every request is counted and logged once by the middleware, by its route (never with a link
token in it); anything unexpected is a logged 500 with a one-line JSON message, never a traceback.
"""

from __future__ import annotations

import json
import logging
import time

from aiohttp import web

from ..importers.dates import DateReader
from ..importers.messages import RowError
from . import buyers, canonical, shopify, webhooks
from .erasure import Erasure
from .http import SERVICE, check_bearer, json_body, read_body, refusal_response, too_large
from .logs import event, masked
from .metrics import CONTENT_TYPE
from .optout import ConsentChange
from .refusal import Refusal, invalid
from .writer import WriterClosed

log = logging.getLogger("linkstar.serve")


def make_app(service) -> web.Application:
    app = web.Application(client_max_size=service.config.max_body, middlewares=[_observe])
    app[SERVICE] = service
    add = app.router
    add.add_post("/v1/events/orders", _events(canonical.ORDERS))
    add.add_post("/v1/events/customers", _events(canonical.CUSTOMERS))
    add.add_post("/v1/webhooks/shopify", _shopify)
    for name in webhooks.CREDENTIAL_HEADERS:
        add.add_post(f"/v1/webhooks/{name}", _feedback(name))
    add.add_get("/v1/webhooks/whatsapp", _whatsapp_handshake)
    add.add_post("/v1/customers/{customer_id}/erase", _erase)
    add.add_post("/v1/customers/{customer_id}/consents", _consent)
    add.add_get("/u/{token}", buyers.unsubscribe_page)
    add.add_post("/u/{token}", buyers.unsubscribe)
    add.add_get("/p/{token}", buyers.preferences_page)
    add.add_post("/p/{token}", buyers.save_preferences)
    add.add_get("/healthz", _healthz)
    add.add_get("/metrics", _metrics)
    return app


@web.middleware
async def _observe(request: web.Request, handler):
    service = request.app[SERVICE]
    started = time.perf_counter()
    resource = request.match_info.route.resource
    endpoint = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except Refusal as refusal:
        response = refusal_response(refusal)
    except WriterClosed:
        response = web.json_response({"error": "stopping", "message": "the service is shutting down; retry"},
                                     status=503, headers={"Retry-After": "5"})
    except web.HTTPRequestEntityTooLarge as exc:
        response = refusal_response(too_large(exc.actual_size or 0, exc.max_size or service.config.max_body))
    except web.HTTPException as exc:
        response = web.json_response({"error": exc.reason.lower().replace(" ", "-"), "message": exc.reason},
                                     status=exc.status, headers={k: v for k, v in exc.headers.items()
                                                                 if k.lower() == "allow"})
    except Exception as exc:  # noqa: BLE001 - logged, answered in one line
        event(log, "request-failed", logging.ERROR, method=request.method, endpoint=endpoint,
              error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        response = web.json_response({"error": "internal", "message": "the request failed inside the service; "
                                      "it was logged"}, status=500)
    seconds = time.perf_counter() - started
    service.metrics.requests.inc(endpoint, response.status)
    service.metrics.request_seconds.observe(seconds, endpoint)
    event(log, "request", method=request.method, endpoint=endpoint, status=response.status,
          ms=round(seconds * 1000, 2), remote=request.remote)
    return response


# -- events in -----------------------------------------------------------------------------------


def _events(kind: canonical.Kind):
    async def handle(request: web.Request) -> web.Response:
        service = request.app[SERVICE]
        check_bearer(request, service.config.secret("token"))
        body = await read_body(request, service.config.max_body)
        batch = canonical.parse(kind, body, service.tables, service.event_subjects, service.config.max_events)
        result = await service.writer.submit(f"events:{kind.name}", batch)
        if isinstance(result, Refusal):
            raise result
        endpoint = f"/v1/events/{kind.name}"
        service.metrics.events.inc(endpoint, "stored", by=len(result.stored))
        service.metrics.events.inc(endpoint, "duplicate", by=len(result.duplicates))
        return web.json_response({"stored": len(result.stored), "duplicates": len(result.duplicates),
                                  "duplicate_ids": list(result.duplicates)})

    return handle


async def _shopify(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    secret = service.config.secret("shopify_secret")
    if not secret:
        raise Refusal(404, "not-configured", "this endpoint is off: set LINKSTAR_SHOPIFY_WEBHOOK_SECRET to use it")
    body = await read_body(request, service.config.max_body)
    shopify.verify(secret, request.headers, body)
    delivery = shopify.parse(request.headers, body, service.tables)
    outcome = await service.writer.submit("shopify", delivery)
    service.metrics.events.inc("/v1/webhooks/shopify", "duplicate" if outcome.duplicate else "stored")
    return web.json_response({"topic": delivery.topic, "action": outcome.action, "duplicate": outcome.duplicate,
                              **outcome.detail})


def _feedback(name: str):
    async def handle(request: web.Request) -> web.Response:
        service = request.app[SERVICE]
        receiver = service.receivers.get(name)
        if receiver is None:
            raise webhooks.not_configured(name)
        body = await read_body(request, service.config.max_body)
        base = service.config.public_url.rstrip("/") if service.config.public_url else \
            f"{request.scheme}://{request.host}"
        events = webhooks.parse(name, receiver, base + request.raw_path, request.headers, body)
        await service.writer.submit("feedback", events)
        service.metrics.events.inc(f"/v1/webhooks/{name}", "received", by=len(events))
        event(log, "feedback", provider=name, events=len(events), kinds=sorted({e.kind for e in events}),
              addresses=masked(e.address for e in events))
        if name == "twilio/inbound":
            return web.Response(text=webhooks.TWIML_EMPTY, content_type="text/xml")
        return web.json_response({"received": len(events)})

    return handle



async def _whatsapp_handshake(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    challenge = webhooks.Handshake(service.config.secret("whatsapp_verify_token")).answer(request.query)
    return web.Response(text=challenge)


# -- customers: erasure and consent --------------------------------------------------------------


async def _erase(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    check_bearer(request, service.config.secret("token"))
    document = json_body(await read_body(request, service.config.max_form), optional=True)
    reason = document.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise invalid("reason", "must be a text of at most 500 characters")
    customer_id = request.match_info["customer_id"]
    result: Erasure | None = await service.writer.submit("erase", (customer_id, reason))
    if result is None:
        raise Refusal(404, "not-found", f"the store holds nothing about customer {customer_id}")
    return web.json_response({"customer_id": customer_id, "pseudonym": result.pseudonym,
                              "erased_at": result.erased_at.isoformat(), "already_erased": result.already,
                              "cleared": result.cleared})


async def _consent(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    check_bearer(request, service.config.secret("token"))
    document = json_body(await read_body(request, service.config.max_form))
    allowed = {"action", "channel", "purpose", "level", "source", "evidence", "at"}
    for name in document:
        if name not in allowed:
            raise invalid(name, f"unknown field; a consent change has {', '.join(sorted(allowed))}")
    for name in ("action", "channel", "purpose"):
        if not isinstance(document.get(name), str):
            raise invalid(name, "is required")
    if not isinstance(document.get("evidence", {}), dict):
        raise invalid("evidence", "must be a JSON object")
    at = None
    if document.get("at") is not None:
        try:
            at = DateReader().timestamp(document["at"])
        except RowError:
            raise invalid("at", f"{document['at']!r} is not a date") from None
    change = ConsentChange(document["action"], request.match_info["customer_id"], document["channel"],
                           document["purpose"], str(document.get("level", "express")),
                           str(document.get("source", "api"))[:64], document.get("evidence") or {}, at)
    result = await service.writer.submit("consent", change)
    if isinstance(result, Refusal):
        raise result
    return web.json_response({"customer_id": change.customer_id, "action": change.action, **result})


# -- operations ----------------------------------------------------------------------------------


async def _healthz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    health = service.health()
    return web.json_response(health, status=200 if health["status"] == "ok" else 503,
                             dumps=lambda v: json.dumps(v, default=str))


async def _metrics(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.Response(body=service.metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})
