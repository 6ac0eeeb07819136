"""A pool of open SMTP connections to one relay, so a batch of mail does not pay a handshake
(TCP, EHLO, STARTTLS, AUTH) per message.

At most `size` connections are open at once; a sender waits for a free one rather than opening
more.  A connection goes back to the pool after a message, and after an answer that only
refused that message (a 5xx or 4xx reply, refused recipients) once an `RSET` has cleared the
transaction.  One that failed in transport (disconnected, timed out), failed its `RSET`, or
has carried `max_messages` messages is closed instead.  A connection that sat idle longer than
`idle_check` seconds is checked with `NOOP` before it is used again, since relays drop idle
clients and a message sent into a dead connection would look like one that may have been
accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiosmtplib

#: Answers that refuse the message but leave the session usable.
_MESSAGE_ERRORS = (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused)


class _Connection:
    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client
        self.used = 0
        self.idle_since = time.monotonic()


class SmtpPool:
    def __init__(self, connect: Callable[[], Awaitable[aiosmtplib.SMTP]], size: int = 4, *,
                 max_messages: int = 100, idle_check: float = 1.0) -> None:
        if size < 1:
            raise ValueError("an SMTP pool needs at least one connection")
        self._connect, self.size = connect, size
        self.max_messages, self.idle_check = max_messages, idle_check
        self._idle: list[_Connection] = []
        self._open = 0
        self._changed = asyncio.Condition()
        self._closed = False
        self.opened = 0  # connections opened over the pool's life

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        """A connection for one message; it goes back to the pool or is closed afterwards."""
        connection = await self._acquire()
        reusable = False
        try:
            yield connection.client
            reusable = True
        except _MESSAGE_ERRORS as exc:
            if getattr(exc, "code", None) != 421:  # 421: the relay is closing the session
                reusable = await _reset(connection.client)
            raise
        finally:
            await self._release(connection, reusable)

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when they come back."""
        async with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._changed.notify_all()
        await asyncio.gather(*(_quit(c.client) for c in idle))

    async def _acquire(self) -> _Connection:
        while True:
            async with self._changed:
                while not self._idle and self._open >= self.size:
                    await self._changed.wait()
                if self._closed:
                    raise aiosmtplib.SMTPServerDisconnected("the SMTP pool is closed")
                connection = self._idle.pop() if self._idle else None
                if connection is None:
                    self._open += 1
            if connection is None:
                return await self._new()
            if await self._alive(connection):
                return connection
            await self._discard(connection)

    async def _new(self) -> _Connection:
        try:
            client = await self._connect()
        except BaseException:
            async with self._changed:
                self._open -= 1
                self._changed.notify()
            raise
        self.opened += 1
        return _Connection(client)

    async def _alive(self, connection: _Connection) -> bool:
        if not connection.client.is_connected:
            return False
        if time.monotonic() - connection.idle_since < self.idle_check:
            return True
        try:
            await connection.client.noop()
        except (aiosmtplib.SMTPException, OSError):
            return False
        return True

    async def _release(self, connection: _Connection, reusable: bool) -> None:
        connection.used += 1
        keep = reusable and not self._closed and connection.used < self.max_messages \
            and connection.client.is_connected
        if keep:
            connection.idle_since = time.monotonic()
            async with self._changed:
                self._idle.append(connection)
                self._changed.notify()
            return
        await self._discard(connection)

    async def _discard(self, connection: _Connection) -> None:
        async with self._changed:
            self._open -= 1
            self._changed.notify()
        await _quit(connection.client)


async def _reset(client: aiosmtplib.SMTP) -> bool:
    """RSET after a refused message; False when the session is no longer usable."""
    if not client.is_connected:
        return False
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        return False
    return True


async def _quit(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
