"""Flows reading fields the store does not hold are refused with one clear line, not a crash.

A file may add fields to the standard records (`entity order` / `carrier: string?`); the
checker accepts them, and only an opened store can say whether its tables hold them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from linkstar_dsl.runtime.program import compile_paths
from linkstar_dsl.runtime.store_fields import missing_fields
from linkstar_dsl.store import open_store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

FLOW = '''entity order
  carrier: string?

entity customer
  loyalty_tier: string?

flow by_carrier
  purpose service
  market JP
  on delivered + 48h
  where order.fulfillment != FBA and order.carrier == "dhl"
  via line
  send "survey" (tier = customer.loyalty_tier)
'''


def linkstar(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "linkstar_dsl", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fields")
    done = linkstar("generate", "--orders", "300", "--db", "s.duckdb", cwd=folder)
    assert done.returncode == 0, done.stderr
    (folder / "f.flow").write_text(FLOW, encoding="utf-8")
    return folder


@pytest.mark.parametrize("command", [
    ["simulate", "f.flow", "--db", "s.duckdb", "--from", "2026-01-01", "--to", "2026-01-02"],
    ["explain", "f.flow", "--db", "s.duckdb", "--order", "O-1"],
    ["run", "f.flow", "--db", "s.duckdb", "--once", "--dry-run"],
])
def test_a_field_the_store_lacks_is_named_in_one_line(store, command):
    done = linkstar(*command, cwd=store)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" not in done.stderr
    assert "flow `by_carrier` reads `order.carrier` (f.flow:11:38)" in lines[0]
    assert "reads `customer.loyalty_tier`" in lines[0] and "ALTER TABLE orders ADD COLUMN \"carrier\"" in lines[0]
    assert done.stdout == ""


def test_once_the_columns_exist_the_flow_runs(store, tmp_path):
    copy = tmp_path / "s.duckdb"
    copy.write_bytes((store / "s.duckdb").read_bytes())
    (tmp_path / "f.flow").write_text(FLOW, encoding="utf-8")
    con = duckdb.connect(str(copy))
    con.execute("ALTER TABLE orders ADD COLUMN carrier VARCHAR")
    con.execute("ALTER TABLE customers ADD COLUMN loyalty_tier VARCHAR")
    con.close()
    done = linkstar("simulate", "f.flow", "--db", "s.duckdb", "--from", "2026-01-01", "--to", "2026-01-02",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_the_examples_read_only_fields_every_store_holds(tmp_path):
    con = open_store(str(tmp_path / "empty.duckdb"))
    assert missing_fields(compile_paths([EXAMPLES]).plans, con) == []


def test_an_embedded_engine_refuses_to_start_on_such_a_store(store):
    import asyncio

    from linkstar_dsl import Engine, compile_text
    from linkstar_dsl.runtime.render_context import RenderSettings
    from linkstar_dsl.store import StoreError

    con = duckdb.connect(str(store / "s.duckdb"), read_only=True)
    engine = Engine(compile_text(FLOW), con, render_settings=RenderSettings.demo())
    with pytest.raises(StoreError, match=r"reads `order.carrier` .*no column `carrier`"):
        asyncio.run(engine.start())
    assert engine.con is None
    assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 300  # the embedder's connection stays open
    con.close()
