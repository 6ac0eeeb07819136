"""SIGKILL the runner mid-dispatch, many times, and find every due message delivered exactly once.

The runner is a real `linkstar run` process sending to a local LINE server that keeps LINE's
retry-key semantics; the provider-side rate is slowed so each kill lands while sends are in
flight.  After the last restart runs to the end, the server must hold one delivery per due
message (none lost, none twice), and the ledger must hold every send completed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from datetime import timedelta

import pytest

from linkstar_dsl.providers.servers import ProviderServers

from test_runtime import DELIVERED, DUE, line_id, make_store

FLOW = """
flow thanks
  purpose service
  on delivered + 48h
  where not refunded
  via line
  send "delivered"
  between 09:00 and 20:00 local
"""
MESSAGES = 240
KILLS = 8

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def _config(path, servers) -> None:
    line = servers.provider_options()["line"]
    path.write_text(
        "[channels.providers.line]\n"
        f'base_url = "{line["base_url"]}"\n'
        "limits = { per_second = 120, burst = 10, retries = 6, backoff = 0.05 }\n"
        "[render]\n"
        'sender_name = "Sakura Goods"\n'
        'sender_address = "1-2-3 Example-cho, Chiyoda-ku, Tokyo"\n'
        'shop_url = "https://shop.example.com"\n',
        encoding="utf-8")


async def _runner(tmp_path, servers, *, kill_after_requests: int | None) -> int:
    env = {**os.environ, **servers.environ(), "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linkstar_dsl", "run", str(tmp_path / "thanks.flow"), "--db",
        str(tmp_path / "s.duckdb"), "--config", str(tmp_path / "linkstar.toml"), "--once",
        "--at", (DUE + timedelta(minutes=5)).isoformat(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    if kill_after_requests is not None:
        # Kill once the runner has made this many requests (however long it took to start), so
        # the kill lands mid-dispatch on a slow machine as on a fast one.
        seen = len(servers.line.received)
        while process.returncode is None and len(servers.line.received) - seen < kill_after_requests:
            try:
                await asyncio.wait_for(process.wait(), 0.005)
            except asyncio.TimeoutError:
                pass
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
    out, err = await process.communicate()
    assert process.returncode in (0, -signal.SIGKILL), err.decode()
    return process.returncode


def test_sigkill_mid_dispatch_loses_nothing_and_sends_nothing_twice(tmp_path):
    make_store(tmp_path / "s.duckdb", n=MESSAGES).close()
    (tmp_path / "thanks.flow").write_text(FLOW, encoding="utf-8")
    rng = random.Random(20261123)

    async def scenario():
        async with ProviderServers() as servers:
            _config(tmp_path / "linkstar.toml", servers)
            killed, progress = 0, []
            for _ in range(KILLS):
                code = await _runner(tmp_path, servers, kill_after_requests=rng.randint(1, 40))
                killed += code == -signal.SIGKILL
                progress.append(len(servers.line.deliveries))
            await _runner(tmp_path, servers, kill_after_requests=None)
            return killed, progress, list(servers.line.deliveries), len(servers.line.received)

    killed, progress, deliveries, requests = asyncio.run(scenario())
    assert killed >= KILLS // 2, "the kills should land while the runner works"
    assert any(0 < p < MESSAGES for p in progress), "some kill should stop a dispatch half way"
    assert requests > MESSAGES  # sends were repeated after restarts, and the retry key kept them single
    per_recipient = Counter(d.recipient for d in deliveries)
    assert set(per_recipient) == {line_id(i) for i in range(MESSAGES)}  # none lost
    assert max(per_recipient.values()) == 1  # none twice
    assert len({d.key for d in deliveries}) == MESSAGES

    import duckdb

    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    statuses = dict(con.execute("SELECT status, count(*) FROM ledger GROUP BY status").fetchall())
    assert statuses == {"sent": MESSAGES}
    assert con.execute("SELECT count(*) FROM order_events WHERE occurred_at = ?", [DELIVERED]).fetchone()[0] == MESSAGES
