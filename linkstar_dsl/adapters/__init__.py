"""Channel adapters: messages leave through real HTTP and SMTP clients that speak each provider's API.

Every adapter has one method, `async send(message: OutgoingMessage) -> SendResult`.  The result
is one of four outcomes the runtime acts on: **sent** (with the provider's message id),
**retryable** (with the seconds to wait), **permanent** (move on to the next channel), or
**suppress** (with the reason: `unsubscribed`, `hard_bounce`, `complaint`, `line_unfollow`,
`sms_stop`, `whatsapp_marketing_opt_out`, `undeliverable`).  The provider's status, code and
text are kept, and so is the finer class of the channel reference (`OK`, `DONE`, `RETRY`,
`RETRY?`, `DEFER`, `REROUTE`, `PERM`, `SUPPRESS`, `HALT`).

`ChannelEngine` runs the configured providers on one shared `aiohttp.ClientSession`, each
wrapped with its rate limits (per channel and per account), a concurrency cap, retries with
exponential back-off and jitter that honour `Retry-After`, and a circuit breaker.  The facts
about each provider (endpoints, authentication, limits, and the table that maps every status
and error code to a class) live in `channels/*.toml`, one file per provider;
`error_table()` renders that table for the documentation.

Adding a channel
----------------

*An HTTP API that takes one JSON or form request* needs no Python: write a TOML description
with a `[request]` table (see `linkstar_dsl.adapters.declarative` for the placeholders)::

    [provider]
    name = "acme_sms"
    channel = "sms"
    base_url = "https://api.acme.example"

    [auth]
    scheme = "bearer"
    secrets = { token = "ACME_SMS_TOKEN" }      # an environment variable, never the secret

    [endpoints]
    send = "POST /v1/messages"

    [request]
    endpoint = "send"
    format = "json"
    body = { to = "{to}", text = "{text}", reference = "{key}" }
    headers = { Idempotency-Key = "{key_uuid}" }

    [response]
    message_id = "id"           # JSON paths in the provider's answer
    code = "error.code"
    message = "error.message"

    [limits]
    per_second = 50
    retries = 3

    [[errors]]                  # first match wins; class from the channel reference
    status = 201
    class = "OK"
    meaning = "accepted"

    [[errors]]
    code = "opted_out"
    class = "SUPPRESS"
    reason = "sms_stop"
    meaning = "the recipient opted out"

    [[errors]]
    status = [500, 599]
    class = "RETRY?"
    meaning = "server error"

Put the file in a folder named by `description_dirs` in the `[channels]` configuration, or ship
it in a package and register it under the `linkstar.channels` entry-point group, pointing at a
`pathlib.Path` of the file::

    [project.entry-points."linkstar.channels"]
    acme_sms = "acme_linkstar:DESCRIPTION_PATH"

*Any other provider* takes one module: a class built from an `AdapterContext` (the description,
the shared session, the provider's secrets and its configured options) with an
`async send(message) -> SendResult`.  Subclass `HttpAdapter` to get `exchange` (one request,
transport failures translated) and `result` (classification by the description's table).  Give
the class a `DESCRIPTION` mapping with the same content as a TOML file, and register the class
itself under `linkstar.channels`::

    [project.entry-points."linkstar.channels"]
    acme_push = "acme_linkstar.push:AcmePushAdapter"

Then enable it in the configuration, with its options, like a built-in provider::

    [channels.providers.acme_sms]
    account = "main"

Secrets come only from environment variables or from the secrets file named by
`secrets_file`; recipients are masked in logs (`+81*****5678`, `a***@example.com`).
"""

from __future__ import annotations

from .descriptions import DescriptionError, ErrorRule, ProviderDescription, load_description
from .engine import ChannelEngine, ChannelsConfig
from .errors import error_table_markdown
from .fallback import FallbackOutcome, send_with_fallback
from .http import AdapterContext, HttpAdapter
from .masking import mask_recipient
from .messages import (
    SUPPRESS_REASONS,
    Adapter,
    AmazonSolicitation,
    Email,
    LineFlex,
    Outcome,
    OutgoingMessage,
    SendResult,
    Text,
    WhatsAppTemplate,
)
from .registry import ENTRY_POINT_GROUP, all_descriptions
from .secrets import MissingSecret, Secrets

__all__ = ["Adapter", "AdapterContext", "AmazonSolicitation", "ChannelEngine", "ChannelsConfig",
           "DescriptionError", "ENTRY_POINT_GROUP", "Email", "ErrorRule", "FallbackOutcome", "HttpAdapter",
           "LineFlex", "MissingSecret", "OutgoingMessage", "Outcome", "ProviderDescription",
           "SUPPRESS_REASONS", "SendResult", "Secrets", "Text", "WhatsAppTemplate", "all_descriptions",
           "error_table", "error_table_markdown", "load_description", "mask_recipient", "send_with_fallback"]


def error_table(*, plugins: bool = False) -> str:
    """The Markdown table of every status and code the shipped providers map (for SPEC.md)."""
    descriptions, _ = all_descriptions(plugins=plugins)
    return error_table_markdown(descriptions.values())
