"""A local SMTP server (aiosmtpd) on the running event loop, recording every message.

Recipients in `bounce` are refused at RCPT with `550 5.1.1` (a hard bounce), those in `defer`
with `451 4.3.0` (try again later); `fail_data` makes the next DATA commands fail with a reply of
your choice.  With `username`/`password` set, AUTH is required (LOGIN or PLAIN, without TLS:
loopback only).  Each accepted message is parsed, so tests can read its headers.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
import warnings
from email.message import EmailMessage

import attrs
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@attrs.frozen
class ReceivedMail:
    at: float
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    def record(self) -> dict:
        return {"at": self.at, "from": self.sender, "to": list(self.recipients),
                "subject": self.message["Subject"], "message_id": self.message["Message-ID"],
                "headers": dict(self.message.items())}


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        if address in self.server.bounce:
            return "550 5.1.1 The email account that you tried to reach does not exist"
        if address in self.server.defer:
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        if self.server.data_failures:
            return self.server.data_failures.pop(0)
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        self.server.messages.append(ReceivedMail(time.monotonic(), envelope.mail_from,
                                                 tuple(envelope.rcpt_tos), message))
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer:
    name = "smtp"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, username: str | None = None,
                 password: str | None = None, bounce: set[str] | None = None,
                 defer: set[str] | None = None) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.bounce = set(bounce or ())
        self.defer = set(defer or ())
        self.data_failures: list[str] = []
        self.messages: list[ReceivedMail] = []
        self.connections = 0  # SMTP sessions opened by clients since start
        self._sessions: list[SMTP] = []
        self._server: asyncio.base_events.Server | None = None

    @property
    def base_url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def fail_data(self, reply: str = "554 5.7.1 Message rejected as spam", times: int = 1) -> None:
        self.data_failures.extend([reply] * times)

    def drop_sessions(self) -> None:
        """Close every open client session, as a relay does with idle or misbehaving clients."""
        for session in self._sessions:
            if session.transport is not None:
                session.transport.close()
        self._sessions.clear()

    def clear(self) -> None:
        self.messages.clear()
        self.data_failures.clear()

    async def start(self) -> SmtpServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmtpServer:
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    def _protocol(self) -> SMTP:
        self.connections += 1
        auth = self.username is not None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")  # loopback only
            session = SMTP(_Handler(self), hostname="linkstar.local", ident="LinkStar local SMTP",
                           auth_required=auth, auth_require_tls=False,
                           authenticator=self._authenticate if auth else None, loop=asyncio.get_running_loop())
        self._sessions.append(session)
        return session

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.username \
            and auth_data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)
