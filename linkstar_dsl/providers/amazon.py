"""A local Amazon SP-API Solicitations endpoint.

`GET /solicitations/v1/orders/{amazonOrderId}?marketplaceIds=…` lists the actions the order
offers in `_links.actions`; `POST …/solicitations/productReviewAndSellerFeedback` creates the
solicitation (201).  Once an order has been solicited it no longer offers the action and a second
POST is refused, since Amazon allows one per order (the exact wording of that refusal is not
documented; this server answers 400 `InvalidInput`).  Errors are `{"errors": [{"code", "message",
"details"}]}`; a missing or wrong `x-amz-access-token` is 403 `Unauthorized`; the rate limit is
429 `QuotaExceeded` with `x-amzn-RateLimit-Limit`.
"""

from __future__ import annotations

import re

from aiohttp import web

from .base import Parsed, ProviderServer, Refusal

ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
ACTION = "productReviewAndSellerFeedback"
STATUS_CODES = {403: "Unauthorized", 404: "NotFound", 429: "QuotaExceeded"}
MESSAGES = {"Unauthorized": "Access to requested resource is denied.",
            "QuotaExceeded": "You exceeded your quota for the requested resource.",
            "OneMarketplace": "Exactly one marketplaceIds value is required",
            "NotEligible": "This order is not eligible for a solicitation now"}


class AmazonServer(ProviderServer):
    name = "amazon"

    def __init__(self, *, access_token: str = "Atza|amazon-test-token", ineligible: set[str] | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.access_token = access_token
        self.ineligible = set(ineligible or ())
        self.solicited: set[str] = set()

    def clear(self) -> None:
        super().clear()
        self.solicited.clear()

    def routes(self):
        base = "/solicitations/v1/orders/{order_id}"
        return [("GET", base, self.actions), ("POST", base + "/solicitations/" + ACTION, self.solicit)]

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
        return f"review solicitation ({payload['marketplace_id']})"

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

    async def actions(self, request: web.Request, body: bytes) -> web.StreamResponse:
        parsed = self.parse(request)
        return await self.respond(request, parsed, lambda: self._actions(parsed))

    async def solicit(self, request: web.Request, body: bytes) -> web.StreamResponse:
        parsed = self.parse(request)
        return await self.respond(request, parsed, lambda: self._solicit(parsed))

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
