"""A local SendGrid v3 Mail Send API: `POST /v3/mail/send`.

202 with an empty body and `X-Message-Id` when the request is valid; 400 with SendGrid's
`{"errors": [{"message", "field", "help"}]}` listing every problem (no personalizations, more
than 1,000 recipients, an invalid address, no sender, no subject, no content); 401 for a bad API
key; 429 with the `X-RateLimit-*` headers.  Addresses on the suppression list are accepted (202)
and silently dropped, as SendGrid does.

With `event_webhook` set (a loopback URL), every accepted message is followed by its Event
Webhook report, posted as SendGrid posts it: a JSON array with `processed` and then what
`outcomes` says for that address (`delivered` by default; `bounce`, `blocked`, `spamreport`,
`unsubscribe`, `group_unsubscribe`, `open`, `click`; `dropped` for a suppressed address), each with
`sg_event_id`, `sg_message_id` and the message's `custom_args`.  The report is signed with ECDSA
(`public_key` is the key to verify it with) when the `cryptography` package is installed, and
otherwise carries `webhook_token` as an HTTP Basic password; `signing` forces one or the other.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Mapping

from aiohttp import web

from ..feedback.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER, ecdsa_available
from .base import Parsed, ProviderServer, Refusal, bearer_token, json_body, loopback_url

OUTCOMES = ("delivered", "bounce", "blocked", "spamreport", "unsubscribe", "group_unsubscribe", "open", "click")

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"


class SendGridServer(ProviderServer):
    name = "sendgrid"

    def __init__(self, *, api_key: str = "SG.sendgrid-test-key", suppressed: set[str] | None = None,
                 event_webhook: str | None = None, outcomes: Mapping[str, str] | None = None,
                 signing: str | None = None, webhook_token: str = "sendgrid-webhook-token", **kwargs) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.suppressed = set(suppressed or ())
        self.dropped: list[Parsed] = []
        self.event_webhook, self.webhook_token = event_webhook, webhook_token
        self.outcomes = dict(outcomes or {})
        for address, outcome in self.outcomes.items():
            if outcome not in OUTCOMES:
                raise ValueError(f"outcome for {address} must be one of {', '.join(OUTCOMES)}")
        self.signing = signing or ("ecdsa" if ecdsa_available() else "token")
        if self.signing not in ("ecdsa", "token"):
            raise ValueError("signing must be ecdsa or token")
        self._private_key = _new_key() if self.signing == "ecdsa" else None
        self.event_posts: list[dict] = []

    @property
    def public_key(self) -> str | None:
        """The Base64 DER public key that verifies the Event Webhook's signature."""
        if self._private_key is None:
            return None
        from cryptography.hazmat.primitives import serialization

        der = self._private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def routes(self):
        return [("POST", "/v3/mail/send", self.send)]

    def error_response(self, status, code, message):
        default = {401: "The provided authorization grant is invalid, expired, or revoked",
                   413: "Payload too large", 429: "too many requests"}
        return web.json_response({"errors": [{"message": message or default.get(status, "internal error"),
                                              "field": None, "help": None}]}, status=status)

    def throttle_response(self, retry_after):
        response = self.error_response(429, None, None)
        response.headers.update({"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                                 "X-RateLimit-Reset": str(int(time.time() + (retry_after or 1)))})
        return response

    async def send(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if bearer_token(request) != self.api_key:
            return self.error_response(401, None, None)
        parsed = self.parse(body)
        return await self.respond(request, parsed, lambda: self.accept(parsed))

    def describe(self, payload) -> str:
        return f"email {payload.get('subject', '')!r}"

    def parse(self, body: bytes) -> Parsed:
        try:
            document = json_body(body)
        except ValueError:
            raise Refusal(_errors([("Bad Request", None)])) from None
        problems = request_problems(document)
        if problems:
            raise Refusal(_errors(problems))
        first = document["personalizations"][0]["to"][0]["email"]
        key = (document["personalizations"][0].get("custom_args") or {}).get("msg_key")
        return Parsed(first, document, key)

    def accept(self, parsed: Parsed) -> web.Response:
        message_id = uuid.uuid4().hex[:22]
        if parsed.recipient in self.suppressed:
            self.dropped.append(parsed)
        else:
            self.deliver(parsed, message_id)
        if self.event_webhook and loopback_url(self.event_webhook):
            self.spawn(self._post_events(self.events_for(parsed.payload, message_id)))
        return web.Response(status=202, headers={"X-Message-Id": message_id})

    def events_for(self, document: dict, message_id: str) -> list[dict]:
        """The Event Webhook records SendGrid reports for one accepted request."""
        found, now = [], int(time.time())
        for index, personalization in enumerate(document["personalizations"]):
            for address in (a["email"] for a in personalization["to"]):
                base = {"email": address, "timestamp": now, "smtp-id": f"<{message_id}@sendgrid.example>",
                        "sg_message_id": f"{message_id}.filterdrecv-{index}.0",
                        "category": document.get("categories", []),
                        **dict(personalization.get("custom_args") or {})}
                found += [{**base, **extra, "sg_event_id": _event_id()}
                          for extra in self._steps(address, document)]
        return found

    def _steps(self, address: str, document: dict) -> list[dict]:
        if address in self.suppressed:
            return [{"event": "dropped", "reason": "Bounced Address"}]
        outcome = self.outcomes.get(address, "delivered")
        steps = [{"event": "processed"}]
        if outcome == "bounce":
            return steps + [{"event": "bounce", "type": "bounce", "status": "5.1.1",
                             "reason": "550 5.1.1 The email account that you tried to reach does not exist"}]
        if outcome == "blocked":
            return steps + [{"event": "bounce", "type": "blocked", "status": "5.7.1",
                             "reason": "550 5.7.1 Message rejected by the receiving server's policy"}]
        steps.append({"event": "delivered", "response": "250 OK"})
        if outcome == "group_unsubscribe":
            steps.append({"event": "group_unsubscribe", "asm_group_id": (document.get("asm") or {}).get("group_id")})
        elif outcome == "click":
            steps += [{"event": "open"}, {"event": "click", "url": "https://shop.example/review"}]
        elif outcome != "delivered":
            steps.append({"event": outcome})
        return steps

    async def _post_events(self, events: list[dict]) -> None:
        body = json.dumps(events).encode()
        headers = {"Content-Type": "application/json"}
        if self._private_key is not None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec

            stamp = str(int(time.time()))
            signed = self._private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
            headers.update({SIGNATURE_HEADER: base64.b64encode(signed).decode(), TIMESTAMP_HEADER: stamp})
        else:
            credentials = base64.b64encode(f"linkstar:{self.webhook_token}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        answer = await self.post_back(self.event_webhook, body, headers)
        self.event_posts.append({"events": events, "answer": answer})


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _event_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")



MESSAGES = {
    "personalizations": "The personalizations field is required and must have at least one personalization.",
    "to": "The to array is required for all personalization objects, and must have at least one email object "
          "with a valid email address.",
    "address": "Does not contain a valid address.",
    "too_many": "The personalizations field may not have more than 1000 recipients.",
    "from": "The from object must be provided for every email send. It is an object that requires an email "
            "parameter, but may also contain a name parameter.",
    "subject": "The subject is required. You can get around this requirement if you use a template with a "
               "subject defined or if every personalization has a subject defined.",
    "content": "Unless a valid template_id is provided, the content parameter is required. There must be at "
               "least one defined content block. We typically suggest both text/plain and text/html blocks "
               "are included, but only one block is required.",
    "content_order": "If present, text/plain content must be first, followed by text/html, then any other "
                     "content.",
}


def _errors(problems: list[tuple[str, str | None]]) -> web.Response:
    errors = [{"message": message, "field": field, "help": HELP} for message, field in problems]
    return web.json_response({"errors": errors}, status=400)


def request_problems(document) -> list[tuple[str, str | None]]:
    """(message, field) for every way the request breaks SendGrid's rules."""
    if not isinstance(document, dict):
        return [("The request body must be a JSON object", None)]
    personalizations = document.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        problems = [(MESSAGES["personalizations"], "personalizations")]
        personalizations = []
    else:
        problems = _recipient_problems(personalizations)
    sender = document.get("from")
    if not isinstance(sender, dict) or not EMAIL.match(str(sender.get("email", ""))):
        problems.append((MESSAGES["from"], "from.email"))
    if "template_id" not in document:
        problems += _content_problems(document, personalizations)
    return problems


def _recipient_problems(personalizations: list) -> list[tuple[str, str | None]]:
    problems, recipients = [], 0
    for index, item in enumerate(personalizations):
        to = item.get("to") if isinstance(item, dict) else None
        if not isinstance(to, list) or not to:
            problems.append((MESSAGES["to"], f"personalizations.{index}.to"))
            continue
        recipients += len(to)
        for position, address in enumerate(to):
            if not isinstance(address, dict) or not EMAIL.match(str(address.get("email", ""))):
                problems.append((MESSAGES["address"], f"personalizations.{index}.to.{position}.email"))
    if len(personalizations) > 1000 or recipients > 1000:
        problems.append((MESSAGES["too_many"], "personalizations"))
    return problems


def _content_problems(document: dict, personalizations: list) -> list[tuple[str, str | None]]:
    problems = []
    every_has_subject = all(isinstance(p, dict) and p.get("subject") for p in personalizations)
    if not document.get("subject") and not every_has_subject:
        problems.append((MESSAGES["subject"], "subject"))
    content = document.get("content")
    blocks_ok = isinstance(content, list) and content and all(
        isinstance(c, dict) and c.get("type") and c.get("value") for c in content)
    if not blocks_ok:
        problems.append((MESSAGES["content"], "content"))
    elif len(content) > 1 and content[0].get("type") != "text/plain":
        problems.append((MESSAGES["content_order"], "content"))
    return problems
