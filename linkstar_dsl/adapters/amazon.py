"""Amazon SP-API Solicitations: check that the order offers the review request, then ask.

Amazon writes and localizes the message itself and allows one per order, so the request has no
body.  The eligibility check is mandatory: an order that no longer lists
`productReviewAndSellerFeedback` is `PERM` (skip the order; it is not an error of the buyer).
When an earlier attempt of this process may have gone through, a missing action on the retry
means Amazon already took the first one: that counts as sent.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from .errors import Facts
from .http import HttpAdapter
from .messages import AmazonSolicitation, OutgoingMessage, SendResult

ACTION = "productReviewAndSellerFeedback"


class AmazonSolicitationsAdapter(HttpAdapter):
    def __init__(self, context) -> None:
        super().__init__(context)
        header = context.description.auth_header or "x-amz-access-token"
        self._headers = {header: context.secrets["access_token"], "Accept": "application/json"}
        self._marketplace = context.options.get("marketplace_id", "")
        self._doubtful: set[str] = set()

    async def send(self, message: OutgoingMessage) -> SendResult:
        if not isinstance(message.content, AmazonSolicitation):
            return self.refused("unsupported_content", "Amazon only sends its own review solicitation")
        query = "?" + urlencode({"marketplaceIds": message.metadata.get("marketplace_id", self._marketplace)})
        order = quote(message.to, safe="")
        facts, document = await self.exchange(*self._endpoint("actions", order, query), headers=self._headers)
        if facts.status != 200:
            return self.result(facts)
        if not _offers(document, ACTION):
            if message.key in self._doubtful:
                self._doubtful.discard(message.key)
                return self.result(Facts(status=201, message="already solicited by an earlier attempt"))
            return self.refused("not_eligible", f"order does not offer {ACTION} now")
        facts, _ = await self.exchange(*self._endpoint("solicit", order, query), headers=self._headers)
        result = self.result(facts)
        if facts.transport in ("timeout", "disconnected") or (facts.status or 0) >= 500:
            self._doubtful.add(message.key)
        else:
            self._doubtful.discard(message.key)
        return result

    def _endpoint(self, name: str, order: str, query: str) -> tuple[str, str]:
        method, url = self.url(name, order_id=order)
        return method, url + query


def _offers(document, action: str) -> bool:
    actions = ((document or {}).get("_links") or {}).get("actions") or []
    return any(isinstance(a, dict) and a.get("name") == action for a in actions)
