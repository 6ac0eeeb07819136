"""Chaos and data safety: crashes and failing providers lose nothing and let nothing through.

1. A short chaos run (`scripts/chaos.py`, about 45 seconds): `linkstar run --every 1s` against
   local provider servers injecting 5xx, 429, hangs and resets, SIGKILLed at random and
   restarted, with consents revoked and buyers suppressed from another process after some kills;
   every invariant of the run must hold (no duplicate, nothing lost or left claimed, no
   send outside its window, without consent or after a suppression).
2. Migrations: a store made by each earlier schema version, filled with the demo data, is
   opened by this version; every row of every table it had is still there, unchanged, and the
   runtime works on it.
3. Crashes mid-write: `linkstar import` killed while it writes a large consents file leaves all
   of it or none of it, and the consents (with their evidence) imported before stay intact; a
   process committing ledger rows and consent evidence in transactions, killed at random, leaves
   only whole transactions, and the indexes agree with the table.
4. A killed writer, then another command: a runner killed with its changes still in DuckDB's
   write-ahead log, then `linkstar consent` run before the runner starts again, leaves a store
   whose indexes hold every ledger row and whose ledger rows can be updated (DuckDB 1.4 and 1.5
   wrote the indexes as they were before the log when such a command closed the store); the log
   is checkpointed when the store is opened, and only a log no connection of this process owns.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from linkstar_dsl import Engine, compile
from linkstar_dsl.demo_data import generate
from linkstar_dsl.runtime.render_context import RenderSettings
from linkstar_dsl.store import (current_version, latest_version, migrate, migrations, open_store,
                                 write_ahead_log_left)

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

def load_chaos():
    """`scripts/chaos.py` as a module (scripts/ is not a package)."""
    if "chaos" not in sys.modules:
        spec = importlib.util.spec_from_file_location("chaos", ROOT / "scripts" / "chaos.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["chaos"] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules["chaos"]


# ==================================================================================== 1. chaos


def test_a_short_chaos_run_keeps_every_invariant(tmp_path):
    chaos = load_chaos()
    # Between runs, another process revokes consents and suppresses buyers now and then: the
    # store it closes after a kill must stay usable for the next runner (section 4).
    report = asyncio.run(chaos.run_chaos(minutes=0.6, customers=240, seed=20261123, workdir=tmp_path,
                                         settle_seconds=12, disturb=0.25, echo=lambda text: None))
    print(report.text())
    assert report.figures["SIGKILLs"] >= 3, "the runner should be killed several times"
    assert sum(report.faults.values()) >= 5, "faults should be injected"
    assert report.figures["deliveries"] > 0
    assert report.figures["buyers suppressed"] > 0, "another process should write to the store between runs"
    assert report.ok, report.text()


def test_the_invariant_checks_catch_what_they_should(tmp_path):
    """Made-up deliveries that break each invariant are reported, and good ones are not."""
    chaos = load_chaos()
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    population = chaos.make_store(tmp_path / "s.duckdb", random.Random(3), start, 60, 16)
    windows = {channel: chaos.Window("00:00", "23:59") for channel in chaos.GROUPS}
    windows["sms"] = chaos.Window("09:00", "10:00")
    con = open_store(tmp_path / "s.duckdb")
    email = [c for c, ch in population.channel_of.items() if ch == "email"]
    consented = {c for (c,) in con.execute("SELECT customer_id FROM consents WHERE revoked_at IS NULL").fetchall()}
    without = next(c for c in email if c not in consented)
    line = next(c for c, ch in population.channel_of.items() if ch == "line")
    con.execute("INSERT INTO suppressions VALUES (?, NULL, 'complaint', ?, 'test')", [line, start])
    con.close()
    sms = next(c for c, ch in population.channel_of.items() if ch == "sms")
    deliveries = [chaos.Delivery("line", line, start + timedelta(hours=1)),
                  chaos.Delivery("line", line, start + timedelta(hours=1)),
                  chaos.Delivery("email", without, start),
                  chaos.Delivery("sms", sms, start)]                     # 06:00 in Chicago
    _, broken = chaos.check_invariants(tmp_path / "s.duckdb", deliveries, population, windows)
    assert broken["no buyer got a message twice"] == [f"{line} 2 times (line)"]
    assert len(broken["no send outside its window (buyer's local time)"]) == 1
    assert len(broken["no marketing send without consent"]) == 1
    assert len(broken["no send after a suppression"]) == 2
    assert set(broken["every delivery is in the ledger (sent, unknown or tried)"]) == {line, without, sms}
    assert chaos.Window("22:00", "06:00").contains(datetime(2026, 1, 1, 23, 30))
    assert not chaos.Window("22:00", "06:00").contains(datetime(2026, 1, 1, 12, 0))


# =============================================================================== 2. migrations


def snapshot(con, tables=None) -> dict[str, tuple[list[str], list]]:
    """Every table's columns and sorted rows (or only `tables`, with the columns given)."""
    result = {}
    names = tables or [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_name != 'schema_migrations'").fetchall()]
    for name in names:
        columns = tables[name][0] if tables else [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [name]).fetchall()]
        quoted = ", ".join(f'"{c}"' for c in columns)
        rows = con.execute(f'SELECT {quoted} FROM "{name}"').fetchall()
        result[name] = (columns, sorted(rows, key=repr))
    return result


@pytest.mark.parametrize("previous", [v for v, _, _ in migrations()][:-1])
def test_a_store_made_by_an_earlier_version_keeps_its_data(tmp_path, previous):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    migrate(con, target=previous)
    generate(con, orders=150, seed=7)
    con.execute("INSERT INTO ledger (key, flow, step, occurrence, order_id, customer_id, channel, template, purpose, "
                "decision, reason, due_at, send_at, status, detail) SELECT 'f:0:' || id, 'f', 0, id, order_id, "
                "(SELECT customer_id FROM orders WHERE orders.id = order_id), 'email', 'x', 'service', 'send', "
                "'sent', occurred_at, occurred_at, 'sent', '{\"n\": 1}' FROM order_events LIMIT 40")
    before = snapshot(con)
    assert current_version(con) == previous and before["orders"][1]
    con.close()

    con = open_store(path)
    assert current_version(con) == latest_version()
    assert snapshot(con, before) == before
    con.close()
    program = compile([ROOT / "examples"])

    async def tick():
        async with Engine(program, str(path), dry_run=True, render_settings=RenderSettings.demo()) as engine:
            return await engine.tick(datetime(2026, 10, 25, 3, 0, tzinfo=UTC))

    assert asyncio.run(tick()).decisions is not None


# ========================================================================== 3. crashes mid-write

BASE_CONSENTS = [{"customer_id": f"B-{n}", "channel": "email", "purpose": "marketing", "level": "double_opt_in",
                  "granted_at": "2024-05-01T09:31:00+09:00", "double_opt_in_at": "2024-05-01T09:35:00+09:00",
                  "source": "checkout_checkbox", "evidence": {"form": "checkout-v3", "ip": f"192.0.2.{n}"}}
                 for n in range(3)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def import_process(path: Path, db: Path, staging: Path | None = None) -> subprocess.Popen:
    environ = {**os.environ, "TMPDIR": str(staging)} if staging else None
    return subprocess.Popen([sys.executable, "-m", "linkstar_dsl", "import", str(path), "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environ)


def wait_for_staging(process: subprocess.Popen, staging: Path, limit: float = 60) -> bool:
    """Wait until the import stages its file (its transaction is open then); False if it ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if any(staging.glob("linkstar-import-*")):
            return True
        time.sleep(0.005)
    return False


def consents(db: Path) -> dict[str, dict]:
    con = open_store(db)
    try:
        return {cid: json.loads(evidence) for cid, evidence in
                con.execute("SELECT customer_id, evidence FROM consents").fetchall()}
    finally:
        con.close()


def test_an_import_killed_mid_file_leaves_all_or_nothing_and_earlier_evidence_intact(tmp_path):
    base_db = tmp_path / "base.duckdb"
    base = write_jsonl(tmp_path / "base" / "consents.jsonl", BASE_CONSENTS)
    assert subprocess.run([sys.executable, "-m", "linkstar_dsl", "import", str(base), "--db", str(base_db)],
                          capture_output=True).returncode == 0
    rows = 30_000
    big = write_jsonl(tmp_path / "big" / "consents.jsonl", [
        {**BASE_CONSENTS[0], "customer_id": f"C-{n}", "evidence": {"form": "checkout-v3", "n": n}}
        for n in range(rows)])
    expected_base = {r["customer_id"]: r["evidence"] for r in BASE_CONSENTS}
    rng = random.Random(5)
    killed = 0
    for attempt in range(6):  # each on a fresh copy of the store, until kills have landed mid-file
        db = tmp_path / f"store-{attempt}.duckdb"
        shutil.copyfile(base_db, db)
        staging = tmp_path / f"staging-{attempt}"
        staging.mkdir()
        process = import_process(big, db, staging)
        mid_file = wait_for_staging(process, staging)
        time.sleep(rng.uniform(0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed += mid_file and process.returncode == -signal.SIGKILL
        stored = consents(db)
        assert len(stored) in (len(BASE_CONSENTS), len(BASE_CONSENTS) + rows), len(stored)
        assert {k: v for k, v in stored.items() if k.startswith("B-")} == expected_base
        if killed >= 2:
            break
    assert killed >= 1, "a kill should land while the file is being written"
    process = import_process(big, db)
    assert process.wait(timeout=300) == 0
    stored = consents(db)
    assert len(stored) == len(BASE_CONSENTS) + rows and stored["C-12345"] == {"form": "checkout-v3", "n": 12345}


WRITER = r'''
import json, sys
from datetime import datetime, timezone
from linkstar_dsl.store import open_store

con = open_store(sys.argv[1])
batch = con.execute("SELECT count(*) FROM ledger").fetchone()[0] // 50
while True:
    con.execute("BEGIN TRANSACTION")
    now = datetime.now(timezone.utc)
    for n in range(50):
        key = f"f:0:b{batch}-{n}"
        con.execute("INSERT INTO ledger (key, flow, step, occurrence, customer_id, channel, purpose, decision, "
                    "reason, due_at, status, claimed_by) VALUES (?, 'f', 0, ?, ?, 'email', 'marketing', 'send', "
                    "'sent', ?, 'claimed', 'w')", [key, f"b{batch}-{n}", f"c{batch}-{n}", now])
        con.execute("INSERT INTO consents (customer_id, channel, purpose, level, granted_at, source, evidence) "
                    "VALUES (?, 'email', 'marketing', 'express', ?, 'form', ?)",
                    [f"c{batch}-{n}", now, json.dumps({"batch": batch, "n": n})])
    # complete the previous batch, as a runner completes its claims: the indexed columns change
    con.execute("UPDATE ledger SET status = 'sent', decision = 'send', reason = 'sent', claimed_by = NULL "
                "WHERE status = 'claimed' AND occurrence LIKE ?", [f"b{batch - 1}-%"])
    con.execute("COMMIT")
    print(batch, flush=True)
    batch += 1
'''


def test_ledger_and_consent_evidence_survive_kills_mid_transaction(tmp_path):
    db = tmp_path / "store.duckdb"
    open_store(db).close()
    rng = random.Random(11)
    committed = -1
    for _ in range(5):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
        started = time.monotonic()
        for line in process.stdout:  # let it commit for a while, then kill it at a random moment
            committed = max(committed, int(line))
            if time.monotonic() - started > rng.uniform(0.3, 1.2):
                break
        time.sleep(rng.uniform(0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        con = open_store(db)
        try:
            ledger = con.execute("SELECT count(*) FROM ledger").fetchone()[0]
            evidence = con.execute("SELECT customer_id, evidence FROM consents").fetchall()
            assert ledger % 50 == 0 and ledger == len(evidence), "only whole transactions"
            assert ledger >= (committed + 1) * 50, "every transaction reported committed is there"
            assert all(json.loads(e)["n"] == int(c.rsplit("-", 1)[1]) for c, e in evidence)
            by_index = con.execute("SELECT count(*) FROM ledger WHERE decision = 'send'").fetchone()[0]
            by_scan = con.execute("SELECT count(*) FROM ledger WHERE decision || '' = 'send'").fetchone()[0]
            assert by_index == by_scan == ledger, "the indexes hold every row"
            claimed = con.execute("SELECT count(*) FROM ledger WHERE status = 'claimed'").fetchone()[0]
            assert claimed <= 50
        finally:
            con.close()
    assert committed >= 5


# ============================================================== 4. a killed writer, then another command

KILLED_RUNNER = r'''
import sys
from datetime import datetime, timezone
from linkstar_dsl.store import open_store

con = open_store(sys.argv[1])
now = datetime.now(timezone.utc)
for batch in range(3):  # claims, then their completion, as a runner writes them
    con.execute("BEGIN TRANSACTION")
    for n in range(10):
        con.execute("INSERT INTO ledger (key, flow, step, occurrence, customer_id, channel, purpose, "
                    "decision, reason, due_at, status, claimed_by) VALUES (?, 'f', 0, ?, ?, 'email', "
                    "'service', 'defer', 'window', ?, 'claimed', 'r')",
                    [f"f:0:{batch}-{n}", f"{batch}-{n}", f"c{n}", now])
    con.execute("UPDATE ledger SET decision = 'send', reason = 'sent', status = 'sent', send_at = ? "
                "WHERE occurrence LIKE ?", [now, f"{batch}-%"])
    con.execute("COMMIT")
print("committed", flush=True)
sys.stdin.read()  # killed here, its changes in the write-ahead log only
'''


def kill_a_runner_after_its_commits(db: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUNNER, str(db)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "committed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    process.stdin.close()


def test_a_command_run_after_a_killed_runner_leaves_the_ledger_indexes_whole(tmp_path):
    db = tmp_path / "store.duckdb"
    con = open_store(db)
    con.execute("INSERT INTO customers (id, country) VALUES ('c1', 'DE')")
    con.close()
    kill_a_runner_after_its_commits(db)
    assert Path(f"{db}.wal").exists(), "the killed runner's changes should be in the write-ahead log only"

    # another process opens the store, writes something that is not the ledger, and closes it
    consent = subprocess.run([sys.executable, "-m", "linkstar_dsl", "consent", "grant", "--db", str(db),
                              "--customer", "c1", "--channel", "email", "--purpose", "marketing",
                              "--evidence", '{"form": "checkout-v3"}'], check=False, capture_output=True,
                             text=True)
    assert consent.returncode == 0, consent.stderr

    # the next runner: every ledger row is found through the indexes and can be completed
    con = open_store(db)
    try:
        assert con.execute("SELECT count(*) FROM ledger").fetchone()[0] == 30
        by_index = con.execute("SELECT count(*) FROM ledger WHERE decision = 'send'").fetchone()[0]
        by_scan = con.execute("SELECT count(*) FROM ledger WHERE decision || '' = 'send'").fetchone()[0]
        assert by_index == by_scan == 30, "the ledger's indexes should hold every row"
        con.execute("UPDATE ledger SET decision = 'skip', reason = 'suppressed', customer_id = 'c2', "
                    "step = 1")
        assert con.execute("SELECT count(*) FROM ledger WHERE decision = 'skip'").fetchone()[0] == 30
        assert con.execute("SELECT count(*) FROM consents WHERE customer_id = 'c1'").fetchone()[0] == 1
    finally:
        con.close()


def test_only_a_log_left_by_a_killed_process_is_checkpointed_on_opening(tmp_path, caplog):
    db = tmp_path / "store.duckdb"
    caplog.set_level(logging.WARNING, logger="linkstar.store")
    first = open_store(db)
    first.execute("INSERT INTO customers (id, country) VALUES ('c1', 'DE')")
    assert write_ahead_log_left(db)
    open_store(db).close()  # the log is this process's own, still open: nothing to recover
    first.close()
    assert not caplog.records and not write_ahead_log_left(db)

    kill_a_runner_after_its_commits(db)
    assert write_ahead_log_left(db)
    con = open_store(db)
    try:
        assert not write_ahead_log_left(db), "the killed runner's log should be checkpointed at once"
        assert con.execute("SELECT count(*) FROM ledger").fetchone()[0] == 30
    finally:
        con.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"{db}: a write-ahead log was left beside it (a process stopped before closing the store); "
        "writing its changes to the database, indexes included, before anything else"]
