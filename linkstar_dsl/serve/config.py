"""The service's settings: where it listens, its limits, and the secrets each endpoint checks.

Settings come from the `[serve]` table of `linkstar.toml`; secrets never do.  Each secret is read
from an environment variable, else from the secrets file named in `[channels]` (the same lookup
the channel adapters use).  An endpoint whose secret is not set answers 404 `not-configured`, so
a service can run with only the endpoints it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import attrs

#: Environment variable of each secret, by its role.
SECRET_NAMES = {
    "token": "LINKSTAR_SERVE_TOKEN",                         # bearer token of /v1/events and /v1/customers
    "shopify_secret": "LINKSTAR_SHOPIFY_WEBHOOK_SECRET",     # the app's secret: X-Shopify-Hmac-Sha256
    "line_secret": "LINKSTAR_LINE_CHANNEL_SECRET",           # x-line-signature
    "twilio_token": "LINKSTAR_TWILIO_AUTH_TOKEN",            # X-Twilio-Signature
    "sendgrid_key": "LINKSTAR_SENDGRID_WEBHOOK_KEY",         # signed Event Webhook (public key)
    "sendgrid_token": "LINKSTAR_SENDGRID_WEBHOOK_TOKEN",     # or a shared token
    "whatsapp_secret": "LINKSTAR_WHATSAPP_APP_SECRET",       # X-Hub-Signature-256
    "whatsapp_verify_token": "LINKSTAR_WHATSAPP_VERIFY_TOKEN",  # the GET verification handshake
}
#: A bearer token shorter than this is refused: it could be guessed.
MIN_TOKEN = 16
MiB = 1024 * 1024


class ConfigError(ValueError):
    """A `[serve]` setting or a secret that cannot be used; the message names it."""


def _positive(instance, attribute, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"[serve] {attribute.name} must be a positive number, got {value!r}")


@attrs.frozen
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    #: How often the engine ticks when nothing arrives.
    every: timedelta = timedelta(minutes=1)
    #: After events arrive, the engine ticks this many seconds later (more events may follow).
    debounce: float = attrs.field(default=1.0, validator=_positive)
    #: Largest request body accepted (bytes); larger ones get 413.
    max_body: int = attrs.field(default=MiB, validator=_positive)
    #: Largest body of an unsubscribe or preference form (bytes).
    max_form: int = attrs.field(default=16 * 1024, validator=_positive)
    #: Most events in one request.
    max_events: int = attrs.field(default=1000, validator=_positive)
    #: The public base URL providers post to (`https://hooks.shop.example`); Twilio signs the full
    #: URL, so behind a proxy give it here.  Without it, the URL of the request as received.
    public_url: str | None = None
    #: Seconds a graceful shutdown waits for requests in progress.
    shutdown_timeout: float = attrs.field(default=30.0, validator=_positive)
    #: SendGrid unsubscribe group id → purpose.
    sendgrid_groups: Mapping[int, str] = attrs.field(factory=dict)
    secrets: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    def secret(self, role: str) -> str | None:
        return self.secrets.get(role) or None

    @classmethod
    def load(cls, table: Mapping, lookup, **overrides) -> ServeConfig:
        """From a `[serve]` table and a secret lookup (`name -> value or None`)."""
        known = {f.name for f in attrs.fields(cls)} - {"secrets", "every"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"[serve] has no setting {', '.join(unknown)} (settings: {', '.join(sorted(known))})")
        values = dict(table)
        if "sendgrid_groups" in values:
            try:
                values["sendgrid_groups"] = {int(k): str(v) for k, v in dict(values["sendgrid_groups"]).items()}
            except (TypeError, ValueError):
                raise ConfigError("[serve] sendgrid_groups maps group ids (numbers) to purposes") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        secrets = {role: lookup(name) for role, name in SECRET_NAMES.items()}
        token = secrets.get("token")
        if token and len(token) < MIN_TOKEN:
            raise ConfigError(f"{SECRET_NAMES['token']} must be at least {MIN_TOKEN} characters long")
        try:
            return cls(**values, secrets={k: v for k, v in secrets.items() if v})
        except TypeError as exc:
            raise ConfigError(f"[serve]: {exc}") from None
