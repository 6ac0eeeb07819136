"""A provider described entirely in TOML: any HTTP API that takes one JSON or form request.

The description's `[request]` table names the endpoint, the body format (`json` or `form`), the
body and extra headers, with placeholders filled from the message:

    {to} {key} {key_uuid} {channel} {purpose} {unsubscribe_url} {text} {subject} {html}

`{key_uuid}` is a UUID derived from the ledger key, for providers that take an idempotency key.
A placeholder the message cannot fill (for example `{subject}` for a text message) refuses the
message before any call.  Authentication follows `[auth] scheme`: `bearer` (secret `token`),
`basic` (secrets `username` and `password`), `header` (secret `token` in the header named by
`[auth] header`) or `none`.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from .http import HttpAdapter, dumps
from .idempotency import key_uuid
from .messages import Email, OutgoingMessage, SendResult, Text


class DeclarativeAdapter(HttpAdapter):
    def __init__(self, context) -> None:
        super().__init__(context)
        request = context.description.request
        self._method, self._url = self.url(request.get("endpoint", "send"), **_url_values(context.options))
        self._format = request.get("format", "json")
        self._body = request.get("body", {})
        content_type = "application/json" if self._format == "json" else "application/x-www-form-urlencoded"
        self._headers = {"Content-Type": content_type, **auth_headers(context)}
        self._extra_headers = dict(request.get("headers", {}))

    async def send(self, message: OutgoingMessage) -> SendResult:
        values = placeholder_values(message)
        try:
            body = fill(self._body, values)
            headers = {**self._headers, **fill(self._extra_headers, values)}
        except KeyError as missing:
            return self.refused("unsupported_content", f"this message has no {missing.args[0]}")
        raw = dumps(body) if self._format == "json" else urlencode(body).encode()
        facts, _ = await self.exchange(self._method, self._url, body=raw, headers=headers)
        return self.result(facts)


def auth_headers(context) -> dict[str, str]:
    scheme, secrets = context.description.auth_scheme, context.secrets
    if scheme == "bearer":
        return {"Authorization": f"Bearer {secrets['token']}"}
    if scheme == "basic":
        pair = f"{secrets['username']}:{secrets['password']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if scheme == "header":
        return {context.description.auth_header: secrets["token"]}
    return {}


def placeholder_values(message: OutgoingMessage) -> dict[str, str]:
    values = {"to": message.to, "key": message.key, "key_uuid": str(key_uuid(message.key, "declarative")),
              "channel": message.channel, "purpose": message.purpose}
    if message.unsubscribe_url:
        values["unsubscribe_url"] = message.unsubscribe_url
    content = message.content
    if isinstance(content, Text):
        values["text"] = content.body
    elif isinstance(content, Email):
        values.update(subject=content.subject, text=content.text)
        if content.html:
            values["html"] = content.html
    return values


def fill(template: Any, values: Mapping[str, str]) -> Any:
    """The template with every `{name}` replaced; raises KeyError for a missing name."""
    if isinstance(template, str):
        names = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        return template.format_map({name: values[name] for name in names}) if names else template
    if isinstance(template, Mapping):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    return template


def _url_values(options: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in options.items() if isinstance(value, (str, int))}
