"""A local LINE Messaging API: `POST /v2/bot/message/push`, validated and answered as LINE does.

* 401 without the right channel access token; 400 with LINE's error JSON ("The request body has
  N error(s)" and a `details` list naming each property) for a bad `to`, 0 or more than 5
  messages, an unknown message type, empty or over-long text, a Flex message without `altText` or
  a bubble/carousel container, or a retry key that is not a UUID;
* `X-Line-Retry-Key`: the first request with a key is executed; a repeat gets 409 with the
  accepted request id in `X-Line-Accepted-Request-Id`, and is not delivered again;
* a blocked user gets 200 and nothing is delivered, as on LINE; a spent monthly quota gets 429
  "You have reached your monthly limit."; the rate limit gets 429 "The API rate limit has been
  exceeded. Try again later.".
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from .base import Parsed, ProviderServer, Refusal, bearer_token, json_body

USER_ID = re.compile(r"^[UCR][0-9a-f]{32}$")
MESSAGE_TYPES = {"text", "textV2", "sticker", "image", "video", "audio", "location", "imagemap", "template",
                 "flex", "coupon"}
TEXT_LIMIT, ALT_TEXT_LIMIT = 5000, 1500


class LineServer(ProviderServer):
    name = "line"

    def __init__(self, *, token: str = "line-test-token", blocked: set[str] | None = None,
                 monthly_quota: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.blocked = set(blocked or ())
        self.monthly_quota = monthly_quota
        self.retry_keys: dict[str, tuple[str, list]] = {}
        self.undelivered: list[Parsed] = []

    def routes(self):
        return [("POST", "/v2/bot/message/push", self.push)]

    def clear(self) -> None:
        super().clear()
        self.retry_keys.clear()
        self.undelivered.clear()

    def error_response(self, status, code, message):
        default = {401: "Authentication failed. Confirm that the access token in the authorization header is "
                        "valid.", 429: "The API rate limit has been exceeded. Try again later.",
                   500: "An error occurred on the server."}
        return web.json_response({"message": message or default.get(status, "Request failed")}, status=status)

    async def push(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if bearer_token(request) != self.token:
            return self.error_response(401, None, None)
        parsed = self.parse(request, body)
        request_id = str(uuid.uuid4())
        return await self.respond(request, parsed, lambda: self.accept(parsed, request_id),
                                  lambda: self.repeat(parsed))

    def describe(self, payload) -> str:
        first = payload["messages"][0]
        if first["type"] == "text":
            return f"text {_short(first['text'])}"
        return f"{first['type']} {_short(first.get('altText', ''))}"

    def parse(self, request: web.Request, body: bytes) -> Parsed:
        key = request.headers.get("X-Line-Retry-Key")
        if key is not None and not _is_uuid(key):
            invalid = {"message": "The value for the 'X-Line-Retry-Key' header is invalid"}
            raise Refusal(web.json_response(invalid, status=400))
        try:
            document = json_body(body)
        except ValueError:
            raise Refusal(web.json_response({"message": "The request body has 1 error(s)",
                                             "details": [{"message": "Invalid JSON"}]}, status=400)) from None
        problems = request_problems(document)
        if problems:
            details = [{"message": message, "property": prop} for prop, message in problems]
            raise Refusal(web.json_response({"message": f"The request body has {len(details)} error(s)",
                                             "details": details}, status=400))
        return Parsed(document["to"], document, key)

    def repeat(self, parsed: Parsed) -> web.Response | None:
        if parsed.key is None or parsed.key not in self.retry_keys:
            return None
        accepted_id, sent = self.retry_keys[parsed.key]
        response = web.json_response({"message": "The retry key is already accepted", "sentMessages": sent},
                                     status=409)
        response.headers["X-Line-Accepted-Request-Id"] = accepted_id
        return response

    def accept(self, parsed: Parsed, request_id: str) -> web.Response:
        if self.monthly_quota is not None and len(self.deliveries) >= self.monthly_quota:
            return self.error_response(429, None, "You have reached your monthly limit.")
        sent = [{"id": str(10**17 + self.next_id()), "quoteToken": uuid.uuid4().hex}
                for _ in parsed.payload["messages"]]
        if parsed.key is not None:
            self.retry_keys[parsed.key] = (request_id, sent)
        if parsed.recipient in self.blocked:
            self.undelivered.append(parsed)
        else:
            self.deliver(parsed, sent[0]["id"])
        response = web.json_response({"sentMessages": sent})
        response.headers["X-Line-Request-Id"] = request_id
        return response


def request_problems(document) -> list[tuple[str, str]]:
    """(property, message) for every way the push request breaks LINE's rules."""
    if not isinstance(document, dict):
        return [("", "The request body must be a JSON object")]
    problems = []
    to = document.get("to")
    if not isinstance(to, str) or not USER_ID.match(to):
        problems.append(("to", "The property, 'to', in the request body is invalid (line: -, column: -)"))
    messages = document.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        problems.append(("messages", "Size must be between 1 and 5"))
        return problems
    for index, message in enumerate(messages):
        problems += [(f"messages[{index}].{prop}" if prop else f"messages[{index}]", text)
                     for prop, text in message_problems(message)]
    if "notificationDisabled" in document and not isinstance(document["notificationDisabled"], bool):
        problems.append(("notificationDisabled", "Must be a boolean"))
    return problems


def message_problems(message) -> list[tuple[str, str]]:
    if not isinstance(message, dict) or message.get("type") not in MESSAGE_TYPES:
        return [("type", "Must be one of the following values: " + ", ".join(sorted(MESSAGE_TYPES)))]
    if message["type"] == "text":
        text = message.get("text")
        if not isinstance(text, str) or not text:
            return [("text", "Must not be empty")]
        if len(text) > TEXT_LIMIT:
            return [("text", f"Length must be between 0 and {TEXT_LIMIT}")]
    if message["type"] == "flex":
        alt = message.get("altText")
        if not isinstance(alt, str) or not alt or len(alt) > ALT_TEXT_LIMIT:
            return [("altText", f"Length must be between 1 and {ALT_TEXT_LIMIT}")]
        contents = message.get("contents")
        if not isinstance(contents, dict) or contents.get("type") not in ("bubble", "carousel"):
            return [("contents.type", "Must be one of the following values: bubble, carousel")]
    return []


def _short(text: str, width: int = 40) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False
