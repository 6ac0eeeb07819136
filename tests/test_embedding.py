"""The embedding API as a service uses it: the aiohttp example in `examples/embedding/`."""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

import linkstar_dsl
from linkstar_dsl.providers.servers import ProviderServers
from linkstar_dsl.runtime.render_context import RenderSettings

from test_runtime import line_id, make_store

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "embedding" / "shop_service.py"
CLOCK = datetime(2026, 9, 3, 3, 0, tzinfo=timezone.utc)
FLOW = """
flow thanks
  purpose service
  on delivered + 48h
  via line
  send "delivered"
"""


def load_example():
    spec = importlib.util.spec_from_file_location("shop_service", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_public_api_names_what_an_embedder_needs():
    for name in ("compile", "compile_text", "CompileError", "Engine", "EngineSettings", "TickReport", "Decision",
                 "ChannelsConfig", "register_channel"):
        assert getattr(linkstar_dsl, name) is not None
    with pytest.raises(AttributeError):
        linkstar_dsl.no_such_thing  # noqa: B018
    with pytest.raises(linkstar_dsl.CompileError) as caught:
        linkstar_dsl.compile_text("on delivred via line")
    assert "did you mean `delivered`" in str(caught.value)


def test_an_event_posted_to_the_example_service_is_sent_and_explained(tmp_path):
    module = load_example()
    con = make_store(tmp_path / "s.duckdb", n=0)
    con.execute("INSERT INTO customers (id, source, name, line_user_id, locale, timezone, country) "
                "VALUES ('c1', 'shopify', 'Aoi', ?, 'ja', 'Asia/Tokyo', 'JP')", [line_id(1)])
    con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, placed_at) "
                "VALUES ('o1', 'c1', 'shopify', 'delivered', 'JP', 3980, 'JPY', ?)", [CLOCK - timedelta(days=4)])

    async def scenario():
        async with ProviderServers() as servers:
            engine = linkstar_dsl.Engine(linkstar_dsl.compile_text(FLOW), con, channels=servers.config(),
                                         environ=servers.environ(), render_settings=RenderSettings.demo(),
                                         clock=lambda: CLOCK)
            async with engine:
                app = module.make_app(engine, con, every=timedelta(hours=1))
                async with TestClient(TestServer(app)) as client:
                    bad = await client.post("/events", json={"id": "e1"})
                    assert bad.status == 400 and "occurred_at" in await bad.text()
                    when = (CLOCK - timedelta(hours=48, minutes=1)).isoformat()
                    stored = await client.post("/events", json={"id": "e1", "order_id": "o1", "event": "delivered",
                                                                "occurred_at": when})
                    assert stored.status == 202
                    for _ in range(200):  # the background tick runs as soon as the event is stored
                        if servers.line.deliveries:
                            break
                        await asyncio.sleep(0.02)
                    answer = await (await client.get("/orders/o1/decisions")).json()
            return servers.line.deliveries, answer

    deliveries, answer = asyncio.run(scenario())
    assert [d.recipient for d in deliveries] == [line_id(1)]
    assert answer[0]["flow"] == "thanks" and answer[0]["decision"] == "send" and answer[0]["status"] == "sent"
