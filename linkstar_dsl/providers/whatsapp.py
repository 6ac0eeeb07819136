"""A local WhatsApp Cloud API: `POST /{version}/{phone_number_id}/messages`.

Answers as Meta's Graph API does: errors as `{"error": {"message", "type", "code", "error_data",
"fbtrace_id"}}` with HTTP 400 (401 and code 190 for a bad token).  It knows which templates are
approved and their category, which users opened a 24-hour window (free-form text to anyone else is
131047), who stopped marketing (131050 for a marketing template) and which numbers are not on
WhatsApp (131026).  No idempotency: a repeat is a second message, as on the real API.
"""

from __future__ import annotations

import base64
import re
import uuid

from aiohttp import web

from .base import Parsed, ProviderServer, Refusal, bearer_token, json_body

MESSAGES = {100: "Invalid parameter", 190: "Invalid OAuth access token", 130429: "Rate limit hit",
            131026: "Message undeliverable", 131047: "Re-engagement message",
            131049: "This message was not delivered to maintain healthy ecosystem engagement.",
            131050: "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
                    "messages on WhatsApp from your business",
            131056: "(Business Account, Consumer Account) pair rate limit hit",
            132001: "Template name does not exist in the translation", 131000: "Something went wrong"}


class WhatsAppServer(ProviderServer):
    name = "whatsapp"

    def __init__(self, *, token: str = "whatsapp-test-token", phone_number_id: str = "1000000001",
                 templates: dict[str, str] | None = None, open_windows: set[str] | None = None,
                 marketing_opt_outs: set[str] | None = None, not_on_whatsapp: set[str] | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.token, self.phone_number_id = token, phone_number_id
        #: approved template name → category (marketing, utility, authentication); None: any name
        self.templates = templates
        self.open_windows = set(open_windows or ())
        self.marketing_opt_outs = set(marketing_opt_outs or ())
        self.not_on_whatsapp = set(not_on_whatsapp or ())

    def routes(self):
        return [("POST", "/{version}/{phone_number_id}/messages", self.messages)]

    def error_response(self, status, code, message):
        code = int(code) if code is not None else (190 if status == 401 else 131000)
        text = message or MESSAGES.get(code, "An unknown error occurred")
        error = {"message": f"(#{code}) {text}", "type": "OAuthException", "code": code,
                 "error_data": {"messaging_product": "whatsapp", "details": text},
                 "fbtrace_id": base64.b64encode(uuid.uuid4().bytes[:12]).decode()}
        return web.json_response({"error": error}, status=status)

    def throttle_response(self, retry_after):
        return self.error_response(400, 130429, None)

    async def messages(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if bearer_token(request) != self.token:
            return self.error_response(401, 190, None)
        if not re.fullmatch(r"v\d+\.\d+", request.match_info["version"]) \
                or request.match_info["phone_number_id"] != self.phone_number_id:
            return self.error_response(400, 100, "Unsupported post request. Object does not exist or cannot "
                                                 "be loaded due to missing permissions")
        parsed = self.parse(body)
        return await self.respond(request, parsed, lambda: self.accept(parsed))

    def describe(self, payload) -> str:
        if payload.get("type") == "template":
            return f"template {payload['template']['name']} ({payload['template']['language']['code']})"
        return f"text {payload['text']['body'][:40]!r}"

    def parse(self, body: bytes) -> Parsed:
        try:
            document = json_body(body)
        except ValueError:
            raise Refusal(self.error_response(400, 100, "The request body is not valid JSON")) from None
        problem = request_problem(document)
        if problem:
            raise Refusal(self.error_response(400, 100, problem))
        return Parsed(document["to"], document, document.get("biz_opaque_callback_data"))

    def accept(self, parsed: Parsed) -> web.Response:
        document, to = parsed.payload, parsed.recipient
        if to in self.not_on_whatsapp:
            return self.error_response(400, 131026, None)
        if document["type"] == "template":
            name = document["template"]["name"]
            if self.templates is not None and name not in self.templates:
                return self.error_response(400, 132001, f"template name ({name}) does not exist in "
                                                        f"{document['template']['language']['code']}")
            category = (self.templates or {}).get(name, "marketing")
            if category == "marketing" and to in self.marketing_opt_outs:
                return self.error_response(400, 131050, None)
        elif to not in self.open_windows:
            return self.error_response(400, 131047, "Message failed to send because more than 24 hours have "
                                                    "passed since the customer last replied to this number.")
        wamid = "wamid." + base64.b64encode(f"linkstar-{self.next_id()}-{to}".encode()).decode()
        self.deliver(parsed, wamid)
        return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                  "messages": [{"id": wamid}]})


def request_problem(document) -> str | None:
    if not isinstance(document, dict):
        return "The request body must be a JSON object"
    if document.get("messaging_product") != "whatsapp":
        return "The parameter messaging_product is required."
    if not isinstance(document.get("to"), str) or not re.fullmatch(r"\d{6,15}", document["to"]):
        return "The parameter to is required and must be a phone number in international format."
    kind = document.get("type", "text")
    if kind == "template":
        template = document.get("template")
        if not isinstance(template, dict) or not isinstance(template.get("name"), str):
            return "The parameter template['name'] is required."
        language = template.get("language")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str):
            return "The parameter template['language']['code'] is required."
        components = template.get("components", [])
        if not isinstance(components, list) or not all(isinstance(c, dict) and "type" in c
                                                       for c in components):
            return "template['components'] must be a list of components with a type."
        return None
    if kind == "text":
        text = document.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("body"), str) or not text["body"]:
            return "The parameter text['body'] is required."
        if len(text["body"]) > 4096:
            return "text['body'] is longer than 4096 characters."
        return None
    return f"Unsupported message type {kind!r} on this local server"
