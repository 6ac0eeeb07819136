"""`python -m linkstar_dsl.providers NAME [--host H] [--port N] [--rate N]`: one local server.

Prints `ready <base URL>` on its first line once listening, then serves until interrupted or
terminated.  Faults and records are reached through the server's control API.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from . import SERVERS


async def serve(name: str, host: str, port: int, rate: int | None) -> None:
    options = {"host": host, "port": port}
    if rate and name != "smtp":
        options["rate_limit"] = (rate, 1.0)
    server = SERVERS[name](**options)
    await server.start()
    print(f"ready {server.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m linkstar_dsl.providers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(SERVERS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=int, default=None, help="provider-side limit, requests per second")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.name, args.host, args.port, args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
