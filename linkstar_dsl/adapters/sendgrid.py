"""Email through a SendGrid-v3-shaped Mail Send API.

One personalization per message; the ledger key goes in `custom_args` so Event Webhook reports
(bounces, spam reports, unsubscribes) can be matched to it.  202 means queued, not delivered.
"""

from __future__ import annotations

from .errors import Facts, classify
from .http import HttpAdapter, dumps
from .mailheaders import address_problem, needs_unsubscribe, one_line, unsubscribe_headers
from .messages import Email, OutgoingMessage, SendResult


class SendGridAdapter(HttpAdapter):
    def __init__(self, context) -> None:
        super().__init__(context)
        self._method, self._url = self.url("send")
        self._headers = {"Authorization": f"Bearer {context.secrets['api_key']}",
                         "Content-Type": "application/json", "Accept": "application/json"}
        options = context.options
        self._sender = {"email": options.get("from_email", "")}
        if options.get("from_name"):
            self._sender["name"] = one_line(options["from_name"])
        self._groups = dict(options.get("unsubscribe_groups", {}))
        self._mailto = options.get("unsubscribe_mailto")

    async def send(self, message: OutgoingMessage) -> SendResult:
        if not isinstance(message.content, Email):
            return self.refused("unsupported_content", f"email cannot send {type(message.content).__name__}")
        if needs_unsubscribe(message):
            return self.refused("missing_unsubscribe_url", "marketing email needs an unsubscribe URL")
        problem = address_problem(message.to)
        if problem is not None:  # what SendGrid answers to a malformed address: 400, permanent
            return classify(self.description, Facts(status=400, message=problem))
        facts, _ = await self.exchange(self._method, self._url, body=dumps(self.build_body(message)),
                                       headers=self._headers)
        return self.result(facts)

    def build_body(self, message: OutgoingMessage) -> dict:
        email: Email = message.content
        content = [{"type": "text/plain", "value": email.text}]
        if email.html:
            content.append({"type": "text/html", "value": email.html})
        recipient = {"to": [{"email": message.to}], "custom_args": {"msg_key": message.key}}
        body = {"personalizations": [recipient], "from": self._sender, "subject": one_line(email.subject),
                "content": content, "categories": [message.purpose]}
        headers = unsubscribe_headers(message, self._mailto)
        if headers:
            body["headers"] = headers
        group = self._groups.get(message.purpose)
        if group is not None:
            body["asm"] = {"group_id": int(group)}
        return body
