"""`ProviderServers`: every local provider server at once, on free loopback ports.

    async with ProviderServers() as servers:
        config = servers.config()            # a ChannelsConfig pointing at them
        async with ChannelEngine(config, environ=servers.environ()) as engine:
            ...
        servers.line.deliveries              # what LINE received

`environ()` holds the test credentials each server expects, under the environment variable names
the provider descriptions read; nothing is put into the process environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..adapters.engine import ChannelsConfig
from ..adapters.masking import mask_recipient
from .amazon import AmazonServer
from .line import LineServer
from .sendgrid import SendGridServer
from .smtp import SmtpServer
from .twilio import TwilioServer
from .webhook import WebhookReceiver
from .whatsapp import WhatsAppServer

SHOP_EMAIL = "shop@linkstar.example"


class ProviderServers:
    def __init__(self, *, host: str = "127.0.0.1", **server_options: Mapping[str, Any]) -> None:
        """`server_options` per server name (line=dict(blocked={...}), smtp=dict(bounce={...}), …)."""
        options = {name: dict(server_options.get(name, {}), host=host)
                   for name in ("line", "whatsapp", "twilio", "sendgrid", "amazon", "webhook", "smtp")}
        self.line = LineServer(**options["line"])
        self.whatsapp = WhatsAppServer(**options["whatsapp"])
        self.twilio = TwilioServer(**options["twilio"])
        self.sendgrid = SendGridServer(**options["sendgrid"])
        self.amazon = AmazonServer(**options["amazon"])
        self.webhook = WebhookReceiver(**options["webhook"])
        self.smtp = SmtpServer(**options["smtp"])

    @property
    def all(self) -> dict[str, Any]:
        return {"line": self.line, "whatsapp": self.whatsapp, "twilio": self.twilio,
                "sendgrid": self.sendgrid, "amazon": self.amazon, "webhook": self.webhook, "smtp": self.smtp}

    @property
    def urls(self) -> dict[str, str]:
        urls = {name: server.base_url for name, server in self.all.items()}
        urls["webhook"] = self.webhook.url
        return urls

    async def __aenter__(self) -> ProviderServers:
        started = []
        try:
            for server in self.all.values():
                await server.start()
                started.append(server)
        except BaseException:
            for server in started:
                await server.stop()
            raise
        return self

    async def __aexit__(self, *exc_info) -> None:
        for server in self.all.values():
            await server.stop()

    def environ(self) -> dict[str, str]:
        """The credentials the servers accept, by the environment variable the descriptions name."""
        env = {"LINKSTAR_LINE_CHANNEL_TOKEN": self.line.token,
               "LINKSTAR_WHATSAPP_TOKEN": self.whatsapp.token,
               "LINKSTAR_TWILIO_ACCOUNT_SID": self.twilio.account_sid,
               "LINKSTAR_TWILIO_AUTH_TOKEN": self.twilio.auth_token,
               "LINKSTAR_SENDGRID_API_KEY": self.sendgrid.api_key,
               "LINKSTAR_AMAZON_ACCESS_TOKEN": self.amazon.access_token,
               "LINKSTAR_WEBHOOK_SECRET": self.webhook.secret}
        if self.smtp.username is not None:
            env["LINKSTAR_SMTP_USERNAME"] = self.smtp.username
            env["LINKSTAR_SMTP_PASSWORD"] = self.smtp.password or ""
        return env

    def provider_options(self) -> dict[str, dict[str, Any]]:
        """Options for every provider, pointing at these servers."""
        urls = self.urls
        sender = {"from_email": SHOP_EMAIL, "from_name": "LinkStar Shop"}
        return {
            "line": {"base_url": urls["line"]},
            "whatsapp": {"base_url": urls["whatsapp"], "phone_number_id": self.whatsapp.phone_number_id},
            "twilio": {"base_url": urls["twilio"], "from": "+15005550006",
                       "status_callback": self.webhook.base_url + "/status/twilio"},
            "sendgrid": {"base_url": urls["sendgrid"], **sender},
            "smtp": {"base_url": urls["smtp"], **sender},
            "amazon": {"base_url": urls["amazon"], "marketplace_id": "A1VC38T7YXB528"},
            "webhook": {"base_url": urls["webhook"]},
        }

    def config(self, *, email: str = "smtp", **overrides: Mapping[str, Any]) -> ChannelsConfig:
        """Every provider enabled against these servers; `email` picks smtp or sendgrid for email.

        `overrides` merge into one provider's options, e.g. `line={"limits": {"retries": 0}}`.
        """
        options = self.provider_options()
        for name, extra in overrides.items():
            options[name] = {**options[name], **extra}
        return ChannelsConfig(providers=options, routes={"email": email})

    def report(self, *, limit: int = 5) -> str:
        """What each server received, recipients masked: for `linkstar demo` to print."""
        lines = []
        for name, server in self.all.items():
            if name == "smtp":
                lines.append(f"{name:<9} {server.base_url:<28} {len(server.messages)} message(s) accepted")
                lines += [f"    {mask_recipient(m.recipients[0])}: email {m.message['Subject']!r}"
                          for m in server.messages[:limit]]
                continue
            lines.append(f"{name:<9} {server.base_url:<28} {len(server.received)} request(s), "
                         f"{len(server.deliveries)} delivered")
            lines += [f"    {mask_recipient(d.recipient)}: {server.describe(d.payload)}"
                      for d in server.deliveries[:limit]]
            if len(server.deliveries) > limit:
                lines.append(f"    … and {len(server.deliveries) - limit} more")
        return "\n".join(lines) + "\n"
