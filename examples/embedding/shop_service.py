"""A small aiohttp service that embeds the LinkStar runtime next to a shop.

    python examples/embedding/shop_service.py FLOWS... --db shop.duckdb --config linkstar.toml [--port 8080]

* `POST /events` takes an order event as JSON (`{"id": "...", "order_id": "...", "event":
  "delivered", "occurred_at": "2026-09-01T10:00:00+09:00"}`) and stores it before answering;
* the engine ticks every minute in the background (and once at once after each event);
* `GET /orders/{id}/decisions` answers "why did (or didn't) this buyer get this message" from the
  ledger.

It uses only the public API: `linkstar_dsl.compile`, `linkstar_dsl.Engine`, `ChannelsConfig`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from aiohttp import web

import linkstar_dsl
from linkstar_dsl.runtime.render_context import RenderSettings
from linkstar_dsl.store import open_store

EVENT_FIELDS = ("id", "order_id", "event", "occurred_at")
ENGINE = web.AppKey("engine", linkstar_dsl.Engine)
STORE = web.AppKey("store", duckdb.DuckDBPyConnection)
WAKE = web.AppKey("wake", asyncio.Event)


def make_app(engine: linkstar_dsl.Engine, con: duckdb.DuckDBPyConnection, *,
             every: timedelta = timedelta(minutes=1)) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[ENGINE], app[STORE], app[WAKE] = engine, con, asyncio.Event()

    async def post_event(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            values = [str(body[name]) for name in EVENT_FIELDS]
            when = datetime.fromisoformat(values[3])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise web.HTTPBadRequest(text="an event needs id, order_id, event and an ISO 8601 occurred_at\n")
        if when.tzinfo is None:
            raise web.HTTPBadRequest(text="occurred_at needs a UTC offset\n")
        cursor = request.app[STORE].cursor()
        try:
            cursor.execute("INSERT INTO order_events VALUES (?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
                           [values[0], values[1], values[2], when])
        finally:
            cursor.close()
        request.app[WAKE].set()
        return web.json_response({"stored": values[0]}, status=202)

    async def decisions(request: web.Request) -> web.Response:
        cursor = request.app[STORE].cursor()
        try:
            rows = cursor.execute(
                "SELECT flow, step + 1, decision, reason, channel, status, due_at, send_at FROM ledger "
                "WHERE order_id = ? ORDER BY due_at, flow, step", [request.match_info["order_id"]]).fetchall()
        finally:
            cursor.close()
        names = ("flow", "step", "decision", "reason", "channel", "status", "due_at", "send_at")
        return web.json_response([dict(zip(names, row)) for row in rows], dumps=lambda v: json.dumps(v, default=str))

    async def ticker(app: web.Application):
        async def loop():
            while True:
                report = await app[ENGINE].tick()
                if report.decisions:
                    print("tick:", dict(report.counts()), flush=True)
                app[WAKE].clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(app[WAKE].wait(), every.total_seconds())

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.router.add_post("/events", post_event)
    app.router.add_get("/orders/{order_id}/decisions", decisions)
    app.cleanup_ctx.append(ticker)
    return app


async def serve(flows: list[str], db: str, config: str, port: int) -> None:
    program = linkstar_dsl.compile(flows)
    table = tomllib.loads(Path(config).read_text(encoding="utf-8"))
    con = open_store(db)
    engine = linkstar_dsl.Engine(program, con, channels=linkstar_dsl.ChannelsConfig.from_toml(config),
                                 render_settings=RenderSettings.from_env(**table.get("render", {})))
    async with engine:
        runner = web.AppRunner(make_app(engine, con))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(f"listening on http://127.0.0.1:{port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flows", nargs="+")
    parser.add_argument("--db", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.flows, args.db, args.config, args.port))
    except linkstar_dsl.CompileError as exc:
        raise SystemExit(str(exc)) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
