"""Email over SMTP with aiosmtplib, to a relay given as `smtp://host:port` (`smtps://` for TLS).

The Message-ID is derived from the ledger key, marketing mail carries the RFC 8058 one-click
unsubscribe headers, and the relay's reply code and enhanced status code (`550 5.1.1`) are
classified by the description's table: 5xx permanent (a bounced mailbox suppresses), 4xx transient.
Connections are reused through a pool (`smtppool`): at most `connections` open to the relay at
once (option; default the provider's concurrency limit), each carrying up to
`messages_per_connection` messages (default 100).
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit

import aiosmtplib

from .errors import Facts, classify
from .http import AdapterContext
from .idempotency import email_message_id
from .mailheaders import address_problem, needs_unsubscribe, one_line, unsubscribe_headers
from .messages import Email, OutgoingMessage, SendResult
from .smtppool import SmtpPool

_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


class SmtpAdapter:
    def __init__(self, context: AdapterContext) -> None:
        self.context = context
        self.description = context.description
        self.name = context.description.name
        self.channel = context.description.channel
        where = urlsplit(context.base_url)
        self._host, self._tls = where.hostname or "localhost", where.scheme == "smtps"
        self._port = where.port or (465 if self._tls else 25)
        options = context.options
        self._sender = options.get("from_email", "")
        self._sender_name = options.get("from_name")
        self._domain = self._sender.rpartition("@")[2] or "localhost"
        self._starttls = options.get("starttls")
        self._mailto = options.get("unsubscribe_mailto")
        self._timeout = context.timeout
        limits = dict(options.get("limits", {}))
        size = int(options.get("connections", limits.get("concurrency", context.description.limits.concurrency)))
        self.pool = SmtpPool(self._connect, size, max_messages=int(options.get("messages_per_connection", 100)))

    async def _connect(self) -> aiosmtplib.SMTP:
        secrets = self.context.secrets
        client = aiosmtplib.SMTP(hostname=self._host, port=self._port, username=secrets.get("username"),
                                 password=secrets.get("password"), use_tls=self._tls, start_tls=self._starttls,
                                 timeout=self._timeout)
        await client.connect()
        return client

    async def close(self) -> None:
        await self.pool.close()

    async def send(self, message: OutgoingMessage) -> SendResult:
        if not isinstance(message.content, Email):
            return self._classify(Facts(code="unsupported_content", message="email needs an Email content"))
        if needs_unsubscribe(message):
            return self._classify(Facts(code="missing_unsubscribe_url",
                                        message="marketing email needs an unsubscribe URL"))
        problem = address_problem(message.to)
        if problem is not None:  # what a relay answers to a malformed address: 501, permanent
            return self._classify(Facts(status=501, message=problem))
        mail = self.build_message(message)
        return self._classify(await self._deliver(mail, message.to, mail["Message-ID"]))

    def build_message(self, message: OutgoingMessage) -> EmailMessage:
        content: Email = message.content
        mail = EmailMessage()
        name = one_line(self._sender_name or "")
        # Address quotes the name, so a `:` or `,` in it cannot turn into a group or a second address.
        mail["From"] = Address(display_name=name, addr_spec=self._sender) if name else self._sender
        mail["To"] = message.to
        mail["Subject"] = one_line(content.subject)
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = email_message_id(message.key, self._domain)
        for name, value in unsubscribe_headers(message, self._mailto).items():
            mail[name] = value
        mail.set_content(content.text)
        if content.html:
            mail.add_alternative(content.html, subtype="html")
        return mail

    async def _deliver(self, mail: EmailMessage, recipient: str, message_id: str) -> Facts:
        try:
            async with self.pool.connection() as client:
                responses, _ = await client.send_message(mail, sender=self._sender, recipients=[recipient])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            return _reply_facts(refused.code, refused.message)
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError) as exc:
            return Facts(transport="connect", message=str(exc)[:200])
        except aiosmtplib.SMTPTimeoutError as exc:
            return Facts(transport="timeout", message=str(exc)[:200])
        except aiosmtplib.SMTPServerDisconnected as exc:
            return Facts(transport="disconnected", message=str(exc)[:200])
        except aiosmtplib.SMTPResponseException as exc:
            return _reply_facts(exc.code, exc.message)
        except aiosmtplib.SMTPNotSupported as exc:  # e.g. a non-ASCII address and a relay without SMTPUTF8
            return Facts(status=553, message=str(exc)[:200])
        except OSError as exc:
            return Facts(transport="connect", message=str(exc)[:200])
        reply = responses.get(recipient)
        return Facts(status=250, message=reply.message if reply else "", message_id=message_id.strip("<>"))

    def _classify(self, facts: Facts) -> SendResult:
        return classify(self.description, facts)


def _reply_facts(code: int, text: str) -> Facts:
    enhanced = _ENHANCED.search(text or "")
    return Facts(status=code, code=enhanced.group(1) if enhanced else None, message=(text or "")[:200])
