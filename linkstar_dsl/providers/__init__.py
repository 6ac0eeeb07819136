"""Local provider servers that behave like the real APIs, for tests, benchmarks and `linkstar demo`.

One aiohttp server per provider (LINE, WhatsApp Cloud API, Twilio, SendGrid, Amazon
Solicitations, a signed-webhook receiver) and an aiosmtpd SMTP server.  Each accepts the real
request shape, refuses malformed requests the way its provider does, records what it received,
enforces the provider's idempotency and rate limits, and injects faults on demand (see `base`).
`ProviderServers` starts them all on free loopback ports.

Run one on its own with `python -m linkstar_dsl.providers NAME [--port N]`.
"""

from __future__ import annotations

from .amazon import AmazonServer
from .base import Delivery, Fault, ProviderServer, Received
from .line import LineServer
from .sendgrid import SendGridServer
from .servers import ProviderServers
from .smtp import ReceivedMail, SmtpServer
from .twilio import TwilioServer
from .webhook import WebhookReceiver
from .whatsapp import WhatsAppServer

SERVERS = {"line": LineServer, "whatsapp": WhatsAppServer, "twilio": TwilioServer, "sendgrid": SendGridServer,
           "amazon": AmazonServer, "webhook": WebhookReceiver, "smtp": SmtpServer}

__all__ = ["AmazonServer", "Delivery", "Fault", "LineServer", "ProviderServer", "ProviderServers", "Received",
           "ReceivedMail", "SERVERS", "SendGridServer", "SmtpServer", "TwilioServer", "WebhookReceiver",
           "WhatsAppServer"]
