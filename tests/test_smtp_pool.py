"""SMTP connections are pooled: many messages share a few sessions, and errors never poison one.

Measured against a real aiosmtpd server that counts the sessions clients open.
"""

from __future__ import annotations

import asyncio

from linkstar_dsl.adapters import ChannelEngine, Email, OutgoingMessage
from linkstar_dsl.adapters.engine import ChannelsConfig
from linkstar_dsl.providers import SmtpServer


def mail(n: int, to: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(f"f:0:o{n}", "email", to or f"buyer{n}@example.com", Email("Shipped", "on its way"),
                           purpose="service")


def config(server: SmtpServer, **options) -> ChannelsConfig:
    smtp = {"base_url": server.base_url, "from_email": "shop@linkstar.example",
            "limits": {"per_second": 10_000, "retries": 0, "concurrency": 16}, **options}
    return ChannelsConfig(providers={"smtp": smtp})


def run(coro):
    return asyncio.run(coro)


def test_a_hundred_messages_open_no_more_connections_than_the_pool_holds():
    async def scenario():
        async with SmtpServer() as server:
            async with ChannelEngine(config(server, connections=4), environ={}, plugins=False) as engine:
                results = await asyncio.gather(*(engine.send(mail(n)) for n in range(100)))
            return results, server

    results, server = run(scenario())
    assert all(r.sent for r in results)
    assert len(server.messages) == 100
    assert 1 <= server.connections <= 4


def test_refused_messages_reset_the_session_and_keep_it():
    async def scenario():
        async with SmtpServer(bounce={"gone@example.com"}, defer={"busy@example.com"}) as server:
            server.fail_data("554 5.7.1 Message rejected as spam")
            async with ChannelEngine(config(server, connections=1), environ={}, plugins=False) as engine:
                spam = await engine.send(mail(1))
                gone = await engine.send(mail(2, "gone@example.com"))
                busy = await engine.send(mail(3, "busy@example.com"))
                fine = [await engine.send(mail(n)) for n in range(4, 7)]
            return spam, gone, busy, fine, server

    spam, gone, busy, fine, server = run(scenario())
    assert (spam.category, gone.category, gone.suppress_reason, busy.category) == \
        ("PERM", "SUPPRESS", "hard_bounce", "RETRY")
    assert all(r.sent for r in fine)
    assert [m.recipients for m in server.messages] == [(f"buyer{n}@example.com",) for n in range(4, 7)]
    assert server.connections == 1


def test_a_connection_is_retired_after_its_message_quota():
    async def scenario():
        async with SmtpServer() as server:
            async with ChannelEngine(config(server, connections=1, messages_per_connection=3),
                                     environ={}, plugins=False) as engine:
                results = [await engine.send(mail(n)) for n in range(10)]
            return results, server

    results, server = run(scenario())
    assert all(r.sent for r in results) and len(server.messages) == 10
    assert server.connections == 4  # 3 + 3 + 3 + 1


def test_a_connection_the_relay_dropped_is_replaced_not_used():
    async def scenario():
        async with SmtpServer() as server:
            async with ChannelEngine(config(server, connections=1), environ={}, plugins=False) as engine:
                first = await engine.send(mail(1))
                server.drop_sessions()  # the relay hangs up on the idle pooled session
                await asyncio.sleep(0.05)
                second = await engine.send(mail(2))
                engine.providers["smtp"].adapter.pool.idle_check = 0.0  # idle at all: NOOP first
                server.drop_sessions()
                third = await engine.send(mail(3))  # caught by the NOOP before the loop saw the hang-up
            return first, second, third, server

    first, second, third, server = run(scenario())
    assert first.sent and second.sent and third.sent, (second, third)
    assert [m.recipients[0] for m in server.messages] == [f"buyer{n}@example.com" for n in (1, 2, 3)]
    assert server.connections == 3
