"""Amazon SP-API: the review solicitation, and buyer-seller messages through the Messaging API.

Both APIs work the same way: a GET lists what the order offers now (`_links.actions`), and only an
offered action may be posted.  An order that does not offer it is `PERM` `not_eligible` (skip the
order; it is not an error of the buyer).

* `AmazonSolicitation`: `productReviewAndSellerFeedback`, without a body.  Amazon writes and
  localizes the message itself and allows one per order.
* `Text`: a Messaging API message, `unexpectedProblem` unless the message's metadata names another
  `amazon_action`; the body is `{"text": …}`.  The text is checked before any call: not empty,
  within the action's length limit, and without a link, since Amazon refuses external links in
  these messages.

Amazon keeps no idempotency key.  When an attempt may have gone through (no complete answer, or a
5xx), its key is remembered; if the order no longer offers the action on the retry, Amazon took
the first attempt and that counts as sent.  A solicitation can be repeated safely (Amazon refuses
a second one), but a message may reach the buyer twice: a posted message whose answer is lost is
`message_unconfirmed` (`RETRY?` in the description), and the provider is not `repeat_safe`, so it
is not resent at once.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

import attrs

from .errors import Facts
from .http import HttpAdapter, dumps
from .messages import AmazonSolicitation, OutgoingMessage, SendResult, Text

SOLICITATION = "productReviewAndSellerFeedback"
DEFAULT_ACTION = "unexpectedProblem"
#: The Messaging API actions that carry text, and the most characters each takes.
TEXT_LIMITS = {"confirmCustomizationDetails": 800, "confirmDeliveryDetails": 2000,
               "confirmOrderDetails": 2000, "confirmServiceDetails": 2000, "digitalAccessKey": 400,
               "unexpectedProblem": 2000}
#: Actions that take attachments or nothing at all, never a text of ours.
WITHOUT_TEXT = ("amazonMotors", "legalDisclosure", "negativeFeedbackRemoval", "sendInvoice", "warranty")
UNCONFIRMED = "message_unconfirmed"
_LINK = re.compile(r"https?://", re.IGNORECASE)


class AmazonSolicitationsAdapter(HttpAdapter):
    def __init__(self, context) -> None:
        super().__init__(context)
        header = context.description.auth_header or "x-amz-access-token"
        self._headers = {header: context.secrets["access_token"], "Accept": "application/json"}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._marketplace = context.options.get("marketplace_id", "")
        self._doubtful: set[str] = set()

    async def send(self, message: OutgoingMessage) -> SendResult:
        if isinstance(message.content, AmazonSolicitation):
            return await self._solicit(message)
        if isinstance(message.content, Text):
            return await self._message(message, message.content.body)
        return self.refused("unsupported_content",
                            "Amazon takes its own review solicitation or a text for the Messaging API")

    async def _solicit(self, message: OutgoingMessage) -> SendResult:
        order, query = self._address(message)
        refusal = await self._check_offer(message, "actions", order, query, SOLICITATION)
        if refusal is not None:
            return refusal
        facts, _ = await self.exchange(*self._endpoint("solicit", query, order_id=order),
                                       headers=self._headers)
        self._note(message.key, facts)
        return self.result(facts)

    async def _message(self, message: OutgoingMessage, text) -> SendResult:
        action = message.metadata.get("amazon_action") or DEFAULT_ACTION
        problem = text_problem(action, text)
        if problem is not None:
            return self.refused(*problem)
        order, query = self._address(message)
        refusal = await self._check_offer(message, "messaging_actions", order, query, action)
        if refusal is not None:
            return refusal
        facts, _ = await self.exchange(*self._endpoint("message", query, order_id=order, action=action),
                                       body=dumps({"text": text}), headers=self._json_headers)
        if self._note(message.key, facts):
            facts = _unconfirmed(facts)
        return self.result(facts)

    def _address(self, message: OutgoingMessage) -> tuple[str, str]:
        """The order id for the path and the query naming the one marketplace."""
        marketplace = message.metadata.get("marketplace_id", self._marketplace)
        return quote(message.to, safe=""), "?" + urlencode({"marketplaceIds": marketplace})

    async def _check_offer(self, message: OutgoingMessage, endpoint: str, order: str, query: str,
                           action: str) -> SendResult | None:
        """The result to return when `action` is not to be posted now; None when it is."""
        facts, document = await self.exchange(*self._endpoint(endpoint, query, order_id=order),
                                              headers=self._headers)
        if facts.status != 200:
            return self.result(facts)
        if _offers(document, action):
            return None
        if message.key in self._doubtful:
            self._doubtful.discard(message.key)
            went_through = f"the order no longer offers {action}: an earlier attempt went through"
            return self.result(Facts(status=201, message=went_through))
        return self.refused("not_eligible", f"the order does not offer {action} now")

    def _note(self, key: str, facts: Facts) -> bool:
        """Remember a key whose attempt may have gone through; whether this one may have."""
        doubtful = facts.transport in ("timeout", "disconnected") or (facts.status or 0) >= 500
        if doubtful:
            self._doubtful.add(key)
        else:
            self._doubtful.discard(key)
        return doubtful

    def _endpoint(self, name: str, query: str, **values: str) -> tuple[str, str]:
        method, url = self.url(name, **values)
        return method, url + query


def text_problem(action, text) -> tuple[str, str] | None:
    """Why `text` cannot go out as Amazon message `action`, as (code, message); None when it can."""
    if not isinstance(action, str) or action not in TEXT_LIMITS:
        if action in WITHOUT_TEXT:
            return "unsupported_content", f"Amazon's {action} message carries no text of ours"
        if action == SOLICITATION:
            return "unsupported_content", "the review request is sent as an AmazonSolicitation, without text"
        return "unsupported_content", (f"unknown Amazon messaging action {action!r}; a text goes out as "
                                       "one of " + ", ".join(sorted(TEXT_LIMITS)))
    if not isinstance(text, str) or not text.strip():
        return "unsupported_content", "the Amazon message is empty"
    limit = TEXT_LIMITS[action]
    if len(text) > limit:
        return "unsupported_content", f"the {action} text is {len(text)} characters; Amazon allows {limit}"
    if _LINK.search(text):
        return "amazon_content", "the text has a link (http:// or https://); Amazon refuses external links"
    return None


def _offers(document, action: str) -> bool:
    links = document.get("_links") if isinstance(document, dict) else None
    actions = links.get("actions") if isinstance(links, dict) else None
    return isinstance(actions, list) and any(isinstance(a, dict) and a.get("name") == action for a in actions)


def _unconfirmed(facts: Facts) -> Facts:
    """A posted message without a clear answer: Amazon may have sent it to the buyer."""
    detail = ": ".join(part for part in (facts.code, facts.message) if part) or facts.transport or "no answer"
    return attrs.evolve(facts, code=UNCONFIRMED, message=f"{detail} (the message may have been sent)")
