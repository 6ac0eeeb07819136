"""The harness the `test_serve_*` files share: a running service on a loopback port, with a store,
local provider servers, a clock the test moves, and an HTTP client.  No tests of its own.

Signatures are computed here the way each provider documents them, independently of the code
that checks them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Self

import aiohttp
import yarl

from linkstar_dsl.providers.servers import ProviderServers
from linkstar_dsl.runtime.program import compile_text
from linkstar_dsl.runtime.render_context import RenderSettings
from linkstar_dsl.serve.config import ServeConfig
from linkstar_dsl.serve.service import Service
from linkstar_dsl.store import open_store

DELIVERED = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
TOKEN = "serve-token-0123456789abcdef"
LINK_SECRET = "link-secret-for-tests-0123456789"
SECRETS = {"token": TOKEN, "shopify_secret": "shopify-app-secret", "line_secret": "line-channel-secret",
           "twilio_token": "twilio-auth-token", "sendgrid_token": "sendgrid-webhook-token",
           "whatsapp_secret": "meta-app-secret", "whatsapp_verify_token": "verify-me"}
SETTINGS = RenderSettings.demo(link_secret=LINK_SECRET)

FLOWS = """
flow thanks
  purpose service
  on delivered + 1h
  via email
  send "delivered"

flow offer
  purpose marketing
  on delivered + 48h
  via email
  send "delivered"
  between 10:00 and 18:00 local
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_store(path, customers: int = 2):
    """US buyers c0, c1… with email, phone and LINE ids; a delivered order and its event each."""
    con = open_store(path)
    for i in range(customers):
        con.execute("INSERT INTO customers (id, name, email, phone, line_user_id, locale, timezone, country) "
                    "VALUES (?, ?, ?, ?, ?, 'en', 'America/New_York', 'US')",
                    [f"c{i}", f"Buyer {i}", f"c{i}@example.com", f"+1555000000{i}", "U" + f"{i:032x}"])
        con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, state, total, total_currency, "
                    "placed_at, delivered_at, tracking_url) VALUES (?, ?, 'shopify', 'delivered', 'US', 'NY', 40, "
                    "'USD', ?, ?, ?)", [f"o{i}", f"c{i}", DELIVERED - timedelta(days=3), DELIVERED,
                                        f"https://track.example.com/{i}"])
        con.execute("INSERT INTO order_events VALUES (?, ?, 'delivered', ?, ?)",
                    [f"e{i}", f"o{i}", DELIVERED, json.dumps({"carrier": "UPS", "signed_by": f"Buyer {i}"})])
    return con


class Harness:
    """`async with Harness(tmp_path) as h:` a started service; `h.post(...)`, `h.rows(...)`."""

    def __init__(self, tmp_path, *, flows: str = FLOWS, customers: int = 2, clock: datetime | None = None,
                 channels=None, **config) -> None:
        self.con = make_store(tmp_path / "serve.duckdb", customers)
        self.clock = Clock(clock or DELIVERED - timedelta(hours=1))
        self.flows = flows
        self.channels = channels
        options = {"port": 0, "every": timedelta(days=1), "debounce": 3600.0, "secrets": dict(SECRETS), **config}
        self.config = ServeConfig(**options)

    async def __aenter__(self) -> Self:
        self.servers = ProviderServers()
        await self.servers.__aenter__()
        self.service = Service(compile_text(self.flows), self.con, channels=self.channels or self.servers.config(),
                               environ=self.servers.environ(), render_settings=SETTINGS, config=self.config,
                               clock=self.clock)
        await self.service.start()
        while self.service.ticks.ticks == 0 and self.service.ticks.last_error is None:
            await asyncio.sleep(0.005)  # the tick every start begins with, so that tests' ticks come after
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.http.close()
        if not self.service.stopping:
            await self.service.stop()
        await self.servers.__aexit__(*exc_info)

    def url(self, path: str) -> str:
        return self.service.url + path

    async def post(self, path: str, *, json_body=None, data: bytes | str | None = None, headers=None,
                   token: str | None = TOKEN) -> tuple[int, object]:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        # sent byte for byte as given: Twilio signs the URL exactly as it posts it
        async with self.http.post(yarl.URL(self.url(path), encoded=True), data=data, headers=headers) as response:
            return response.status, await _content(response)

    async def get(self, path: str, **kwargs) -> tuple[int, object]:
        async with self.http.get(self.url(path), **kwargs) as response:
            return response.status, await _content(response)

    def rows(self, sql: str, params=()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()


async def _content(response):
    if response.content_type == "application/json":
        return await response.json()
    return await response.text()


# -- signing as each provider documents it ----------------------------------------------------------


def shopify_headers(body: bytes, topic: str, webhook_id: str, secret: str = SECRETS["shopify_secret"]) -> dict:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-Shopify-Hmac-Sha256": digest, "X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Shop-Domain": "sakura-goods.myshopify.com", "Content-Type": "application/json"}


def line_headers(body: bytes, secret: str = SECRETS["line_secret"]) -> dict:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"x-line-signature": digest, "Content-Type": "application/json"}


def twilio_headers(url: str, params: dict, secret: str = SECRETS["twilio_token"]) -> dict:
    payload = url + "".join(k + v for k, v in sorted(params.items()))
    digest = base64.b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha1).digest()).decode()
    return {"X-Twilio-Signature": digest, "Content-Type": "application/x-www-form-urlencoded"}


def whatsapp_headers(body: bytes, secret: str = SECRETS["whatsapp_secret"]) -> dict:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


def sendgrid_headers(token: str = SECRETS["sendgrid_token"]) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"linkstar:{token}".encode()).decode(),
            "Content-Type": "application/json"}
