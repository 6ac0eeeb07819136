"""A local Amazon Selling Partner API: Solicitations and Messaging.

Solicitations: `GET /solicitations/v1/orders/{amazonOrderId}?marketplaceIds=…` lists the actions
the order offers in `_links.actions`; `POST …/solicitations/productReviewAndSellerFeedback`
creates the solicitation (201).  Once an order has been solicited it no longer offers the action
and a second POST is refused, since Amazon allows one per order (the exact wording of that refusal
is not documented; this server answers 400 `InvalidInput`).

Messaging: `GET /messaging/v1/orders/{amazonOrderId}?marketplaceIds=…` lists the message types the
order offers (`messaging_actions` per order, `DEFAULT_MESSAGING_ACTIONS` for any other);
`POST …/messages/{action}` with a JSON body `{"text": …}` sends one (201 and an empty object).
The text is required, a string of 1 to the type's limit characters (2,000 for most types), else
400 `InvalidInput`; a body not sent as `application/json` is 415 (Amazon documents the status, not
its code; this server says `UnsupportedMediaType`).  A type the order does not offer is refused as
Amazon refuses it: 403 `Unauthorized`, "Invalid amazonOrderId and template combination."  Only the
types that carry text are served; an offered attachment type answers 400.

Both: errors are `{"errors": [{"code", "message", "details"}]}`; a missing or wrong
`x-amz-access-token` is 403 `Unauthorized`; the rate limit is 429 `QuotaExceeded` with
`x-amzn-RateLimit-Limit`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from aiohttp import web

from .base import Parsed, ProviderServer, Refusal, json_body

ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
ACTION = "productReviewAndSellerFeedback"
#: The message types that carry text, and the most characters each takes (the Messaging API model).
TEXT_LIMITS = {"confirmCustomizationDetails": 800, "confirmDeliveryDetails": 2000,
               "confirmOrderDetails": 2000, "confirmServiceDetails": 2000, "digitalAccessKey": 400,
               "unexpectedProblem": 2000}
DEFAULT_MESSAGING_ACTIONS = ("confirmDeliveryDetails", "unexpectedProblem")
STATUS_CODES = {400: "InvalidInput", 403: "Unauthorized", 404: "NotFound", 415: "UnsupportedMediaType",
                429: "QuotaExceeded"}
MESSAGES = {"Unauthorized": "Access to requested resource is denied.",
            "QuotaExceeded": "You exceeded your quota for the requested resource.",
            "OneMarketplace": "Exactly one marketplaceIds value is required",
            "NotEligible": "This order is not eligible for a solicitation now",
            "NotOffered": "Invalid amazonOrderId and template combination.",
            "UnsupportedMediaType": "The request payload is in an unsupported format."}


class AmazonServer(ProviderServer):
    name = "amazon"

    def __init__(self, *, access_token: str = "Atza|amazon-test-token", ineligible: set[str] | None = None,
                 messaging_actions: Mapping[str, Iterable[str]] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.access_token = access_token
        self.ineligible = set(ineligible or ())
        self.messaging_actions = {order: list(names) for order, names in (messaging_actions or {}).items()}
        self.solicited: set[str] = set()

    def clear(self) -> None:
        super().clear()
        self.solicited.clear()

    def routes(self):
        solicitations, messaging = "/solicitations/v1/orders/{order_id}", "/messaging/v1/orders/{order_id}"
        return [("GET", solicitations, self.actions),
                ("POST", solicitations + "/solicitations/" + ACTION, self.solicit),
                ("GET", messaging, self.message_actions),
                ("POST", messaging + "/messages/{action}", self.message)]

    def error_response(self, status, code, message):
        code = str(code or STATUS_CODES.get(status, "InternalFailure"))
        error = {"code": code, "message": message or MESSAGES.get(code, "Error"), "details": ""}
        return web.json_response({"errors": [error]}, status=status)

    def throttle_response(self, retry_after):
        response = self.error_response(429, "QuotaExceeded", None)
        response.headers["x-amzn-RateLimit-Limit"] = "1.0"
        if retry_after is not None:
            response.headers["Retry-After"] = str(int(retry_after))
        return response

    def describe(self, payload) -> str:
        if "action" in payload:
            return f"message {payload['action']}: {_first_line(payload['text'])}"
        return f"review solicitation ({payload['marketplace_id']})"

    def offered(self, order: str) -> list[str]:
        """The message types `order` offers now."""
        return list(self.messaging_actions.get(order, DEFAULT_MESSAGING_ACTIONS))

    # -- requests ------------------------------------------------------------------------------

    def parse(self, request: web.Request) -> Parsed:
        if request.headers.get("x-amz-access-token") != self.access_token:
            raise Refusal(self.error_response(403, "Unauthorized", None))
        order = request.match_info["order_id"]
        marketplace = request.query.get("marketplaceIds", "")
        if not ORDER_ID.match(order):
            raise Refusal(self.error_response(400, "InvalidInput", f"Invalid amazonOrderId {order!r}"))
        if not marketplace or "," in marketplace:
            raise Refusal(self.error_response(400, "InvalidInput", MESSAGES["OneMarketplace"]))
        return Parsed(order, {"order_id": order, "marketplace_id": marketplace})

    def parse_message(self, request: web.Request, body: bytes) -> Parsed:
        """A valid Messaging POST, or the refusal Amazon gives (the type's offer is checked later)."""
        parsed = self.parse(request)
        action = request.match_info["action"]
        payload = {**parsed.payload, "action": action}
        if action not in TEXT_LIMITS:
            return Parsed(parsed.recipient, payload)
        if request.content_type != "application/json":
            raise Refusal(self.error_response(415, "UnsupportedMediaType", None))
        problem, text = _text_problem(body, TEXT_LIMITS[action])
        if problem:
            raise Refusal(self.error_response(400, "InvalidInput", problem))
        return Parsed(parsed.recipient, {**payload, "text": text})

    async def actions(self, request: web.Request, body: bytes) -> web.StreamResponse:
        parsed = self.parse(request)
        return await self.respond(request, parsed, lambda: self._actions(parsed))

    async def solicit(self, request: web.Request, body: bytes) -> web.StreamResponse:
        parsed = self.parse(request)
        return await self.respond(request, parsed, lambda: self._solicit(parsed))

    async def message_actions(self, request: web.Request, body: bytes) -> web.StreamResponse:
        parsed = self.parse(request)
        return await self.respond(request, parsed, lambda: self._message_actions(parsed))

    async def message(self, request: web.Request, body: bytes) -> web.StreamResponse:
        parsed = self.parse_message(request, body)
        return await self.respond(request, parsed, lambda: self._message(parsed))

    # -- answers -------------------------------------------------------------------------------

    def _eligible(self, order: str) -> bool:
        return order not in self.ineligible and order not in self.solicited

    def _actions(self, parsed: Parsed) -> web.Response:
        order, marketplace = parsed.recipient, parsed.payload["marketplace_id"]
        base = f"/solicitations/v1/orders/{order}"
        actions = [{"href": f"{base}/solicitations/{ACTION}?marketplaceIds={marketplace}", "name": ACTION}] \
            if self._eligible(order) else []
        return web.json_response({"_links": {"actions": actions,
                                             "self": {"href": f"{base}?marketplaceIds={marketplace}"}},
                                  "_embedded": {"actions": []}})

    def _solicit(self, parsed: Parsed) -> web.Response:
        if not self._eligible(parsed.recipient):
            return self.error_response(400, "InvalidInput", MESSAGES["NotEligible"])
        self.solicited.add(parsed.recipient)
        self.deliver(parsed, f"solicitation-{parsed.recipient}")
        return web.json_response({}, status=201)

    def _message_actions(self, parsed: Parsed) -> web.Response:
        order, marketplace = parsed.recipient, parsed.payload["marketplace_id"]
        base, query = f"/messaging/v1/orders/{order}", f"?marketplaceIds={marketplace}"
        names = self.offered(order)
        links = [{"href": f"{base}/messages/{name}{query}", "name": name} for name in names]
        embedded = [{"_links": {"schema": {"href": f"{base}/messages/{name}/schema", "name": name},
                                "self": {"href": f"{base}/messages/{name}{query}", "name": name}}}
                    for name in names]
        return web.json_response({"_links": {"actions": links, "self": {"href": base + query}},
                                  "_embedded": {"actions": embedded}}, content_type="application/hal+json")

    def _message(self, parsed: Parsed) -> web.Response:
        action = parsed.payload["action"]
        if action not in self.offered(parsed.recipient):
            return self.error_response(403, "Unauthorized", MESSAGES["NotOffered"])
        if action not in TEXT_LIMITS:
            return self.error_response(400, "InvalidInput", f"{action} takes attachments, not text")
        self.deliver(parsed, f"message-{self.next_id()}")
        return web.json_response({}, status=201)


def _text_problem(body: bytes, limit: int) -> tuple[str | None, str]:
    """What is wrong with a Messaging body (None when nothing), and its text."""
    try:
        document = json_body(body)
    except ValueError:
        return "The request body is not valid JSON", ""
    if not isinstance(document, dict):
        return "The request body must be a JSON object", ""
    text = document.get("text")
    if text is None:
        return "text is required", ""
    if not isinstance(text, str):
        return "text must be a string", ""
    if not 1 <= len(text) <= limit:
        return f"text must be between 1 and {limit} characters long", ""
    return None, text


def _first_line(text: str, width: int = 40) -> str:
    """The first line with words on it, shortened, with `…` when anything was left out."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) > width:
        return repr(line[: width - 1] + "…")
    return repr(line if line == text.strip() else line + "…")
