"""`linkstar serve`: the interpreter embedded in an always-on service next to the shop.

One process runs the engine's loop and an aiohttp server over one DuckDB store: events in
(canonical JSON, Shopify webhooks), delivery feedback in (LINE, Twilio, SendGrid, WhatsApp),
one-click unsubscribe and the preference page for buyers, erasure and consent for operators,
`/healthz` and Prometheus `/metrics` (SPEC.md §12).

    from linkstar_dsl.serve import Service, ServeConfig

    service = Service(program, "shop.duckdb", channels=channels, render_settings=settings,
                      config=ServeConfig(port=8080))
    await service.start()
    ...
    await service.stop()
"""

from __future__ import annotations

__all__ = ["ServeConfig", "Service", "make_app"]


def __getattr__(name: str):
    """The API, imported on first use: registering the commands must not load aiohttp or DuckDB."""
    if name == "Service":
        from .service import Service

        return Service
    if name == "ServeConfig":
        from .config import ServeConfig

        return ServeConfig
    if name == "make_app":
        from .app import make_app

        return make_app
    raise AttributeError(name)
