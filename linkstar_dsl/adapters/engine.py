"""The channel engine: one shared HTTP session, one reliable adapter per configured provider.

    config = ChannelsConfig(providers={"line": {}, "smtp": {"base_url": "smtp://relay:25",
                                                            "from_email": "shop@example.com"}})
    async with ChannelEngine(config) as engine:
        result = await engine.send(message)                     # routed by message.channel
        outcome = await engine.send_with_fallback([line_message, email_message])

Only providers named in the configuration are started, and each must find its secrets (in the
environment, or in the secrets file the configuration names) when the engine starts.  A
provider entry may name the provider it configures (`provider = "line"`) so that two accounts of
one provider can run side by side; `account` keys the per-account rate limit.

An engine given `share=(i, n)` is one of `n` engines in separate processes sending for one
runner: each of its rate limits and concurrency caps is its part of the configured one (the
parts add up to the whole), so together they never exceed what the configuration allows.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from .descriptions import ProviderDescription
from .fallback import FallbackOutcome, send_with_fallback
from .http import AdapterContext, open_session
from .limits import CircuitBreaker, Limits, RateLimiter
from .messages import Outcome, OutgoingMessage, SendResult
from .registry import adapter_class, all_descriptions
from .reliable import ReliableAdapter
from .secrets import Secrets


@attrs.frozen
class ChannelsConfig:
    #: provider entry name → options (base_url, account, limits, from_email, …)
    providers: Mapping[str, Mapping[str, Any]]
    #: channel → provider entry, when several serve one channel (email: sendgrid or smtp)
    routes: Mapping[str, str] = attrs.field(factory=dict)
    #: channel → requests per second over every account of that channel
    channel_limits: Mapping[str, float] = attrs.field(factory=dict)
    secrets_file: str | None = None
    description_dirs: tuple[str, ...] = ()

    @classmethod
    def from_toml(cls, path: str | Path) -> ChannelsConfig:
        """Read the `[channels]` table of a configuration file (relative paths from its folder)."""
        path = Path(path)
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("channels", {})
        here = path.resolve().parent
        secrets = table.get("secrets_file")
        return cls(providers=table.get("providers", {}), routes=table.get("routes", {}),
                   channel_limits=table.get("limits", {}),
                   secrets_file=str(here / secrets) if secrets else None,
                   description_dirs=tuple(str(here / d) for d in table.get("description_dirs", ())))


class ChannelEngine:
    def __init__(self, config: ChannelsConfig, *, environ: Mapping[str, str] | None = None,
                 session: aiohttp.ClientSession | None = None, plugins: bool = True,
                 share: tuple[int, int] = (0, 1)) -> None:
        self.config = config
        self.share = share
        self._secrets = Secrets(environ, config.secrets_file)
        self._session = session
        self._owns_session = session is None
        self._plugins = plugins
        self.providers: dict[str, ReliableAdapter] = {}
        self.descriptions: dict[str, ProviderDescription] = {}
        self.adapters: dict[str, ReliableAdapter] = {}
        self._limiters: dict[tuple, RateLimiter] = {}

    async def __aenter__(self) -> ChannelEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def start(self) -> None:
        descriptions, classes = all_descriptions(self.config.description_dirs, plugins=self._plugins)
        if self._session is None:
            self._session = open_session()
        try:
            for entry, options in self.config.providers.items():
                description = _described(descriptions, options.get("provider", entry), entry)
                self.descriptions[entry] = description
                context = AdapterContext(description, self._session, self._secrets.for_provider(description),
                                         dict(options))
                adapter = adapter_class(description, classes)(context)
                self.providers[entry] = self._reliable(entry, description, options, adapter)
        except BaseException:
            await self.close()
            raise
        self.adapters = self._routes()

    def _reliable(self, entry: str, description: ProviderDescription, options: Mapping[str, Any],
                  adapter) -> ReliableAdapter:
        settings = attrs.evolve(description.limits, **dict(options.get("limits", {})))
        limiters = []
        channel_rate = self.config.channel_limits.get(description.channel)
        if channel_rate:
            limiters.append(self._shared_limiter(("channel", description.channel), channel_rate, None))
        if settings.per_second:
            account = ("account", description.name, str(options.get("account", entry)))
            limiters.append(self._shared_limiter(account, settings.per_second, settings.burst))
        return ReliableAdapter(adapter, provider=entry, settings=settings,
                               limits=Limits(limiters, part(settings.concurrency, self.share)),
                               breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown),
                               repeat_safe=description.repeat_safe)

    def _shared_limiter(self, key: tuple, rate: float, burst: int | None) -> RateLimiter:
        """One limiter per channel and per (provider, account), shared by every entry using it."""
        if key not in self._limiters:
            whole = RateLimiter.per_second(rate, burst)
            self._limiters[key] = whole if self.share[1] == 1 else \
                RateLimiter(part(whole.limit, self.share), whole.period)
        return self._limiters[key]

    def indivisible(self, count: int) -> str | None:
        """The first rate limit or concurrency cap too small to give each of `count` shares one request."""
        for key, limiter in self._limiters.items():
            if limiter.limit < count:
                whose = f"channel {key[1]}" if key[0] == "channel" else f"{key[1]} account {key[2]}"
                return f"the rate limit of {whose} allows {limiter.limit} request(s) per {limiter.period:g} s"
        for entry, provider in self.providers.items():
            if provider.settings.concurrency < count:
                return f"the concurrency cap of {entry} is {provider.settings.concurrency}"
        return None

    def limit_window(self, channels: Iterable[str]) -> float:
        """The longest period of the rate limits on `channels`: how long a request counts against them
        after its answer came back."""
        return max((limiter.period for channel in channels if channel in self.adapters
                    for limiter in self.adapters[channel].limits.limiters), default=0.0)

    async def close(self) -> None:
        for provider in self.providers.values():
            closing = getattr(provider.adapter, "close", None)  # adapters holding connections (SMTP)
            if closing is not None:
                await closing()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _routes(self) -> dict[str, ReliableAdapter]:
        """channel → the adapter that serves it."""
        found: dict[str, ReliableAdapter] = {}
        for entry, adapter in self.providers.items():
            found.setdefault(self.descriptions[entry].channel, adapter)
        for channel, entry in self.config.routes.items():
            if entry not in self.providers:
                raise LookupError(f"channels.routes.{channel}: {entry!r} is not a configured provider")
            found[channel] = self.providers[entry]
        return found

    def adapter(self, channel: str) -> ReliableAdapter:
        return self.adapters[channel]

    async def send(self, message: OutgoingMessage) -> SendResult:
        adapter = self.adapters.get(message.channel)
        if adapter is None:
            return SendResult(Outcome.PERMANENT, "", "PERM", code="no_adapter",
                              message=f"no provider configured for channel {message.channel!r}")
        return await adapter.send(message)

    async def send_with_fallback(self, messages: Sequence[OutgoingMessage]) -> FallbackOutcome:
        return await send_with_fallback(self.adapters, messages)


def part(whole: int, share: tuple[int, int]) -> int:
    """Share `index` of `count` of a whole number of requests: the parts add up to the whole."""
    index, count = share
    return whole // count + (index < whole % count)


def _described(descriptions: Mapping[str, ProviderDescription], name: str, entry: str) -> ProviderDescription:
    try:
        return descriptions[name]
    except KeyError:
        raise LookupError(f"channels.providers.{entry}: no provider named {name!r} "
                          f"(known: {', '.join(sorted(descriptions))})") from None

