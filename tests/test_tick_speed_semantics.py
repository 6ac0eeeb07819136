"""What a tick leaves out to save time changes no decision and no ledger row.

A tick fetches gate inputs only for the rows that get past the gates reading the due row alone,
past sends only for the recipients whose flows count them, and consents only for those whose
flows ask for consent in their market; new ledger rows are written with their claim columns
worked out by the statement.  Each shortcut is checked here against the long way round.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstar_dsl import gates
from linkstar_dsl.compiler.plan import FlowPlan, Message, StepPlan
from linkstar_dsl.gate_inputs import Recipients, Send
from linkstar_dsl.runtime import decide as decide_module
from linkstar_dsl.runtime import ledger
from linkstar_dsl.store import open_store

UTC = timezone.utc


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    from linkstar_dsl.demo_data import generate

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    con = open_store(path)
    generate(con, orders=800, seed=7)
    # every buyer a reorder-reminder target, so that the SMS flow reaches its consent gate
    con.execute("UPDATE customers SET tags = list_append(coalesce(tags, []), 'replenishable')")
    con.close()
    return path


def _ticks():
    from linkstar_dsl.demo_data import DEFAULT_DAYS, DEFAULT_START

    end = DEFAULT_START + timedelta(days=DEFAULT_DAYS)
    return [end - timedelta(days=5) + timedelta(hours=6 * k) for k in range(20)]


def _run(path):
    """Every decision and the ledger after ticks of the example flows, with what `fetch` was asked for."""
    from linkstar_dsl.resources import data_dir
    from linkstar_dsl.runtime.due_set import DueSet
    from linkstar_dsl.runtime.program import compile_paths

    program = compile_paths([data_dir("examples")])
    due = DueSet(program.plans, program.schema)
    con = open_store(path)
    decided = []
    for now in _ticks():
        made = decide_module.decide_tick(con, due, now - timedelta(hours=6), now)
        ledger.record_and_claim(con, [d for *_, d in made], now, "runner")
        decided += [(d.key, d.decision, d.reason, d.detail, d.channel, d.template, d.send_at) for *_, d in made]
    rows = con.execute("SELECT * FROM ledger ORDER BY key").fetchall()
    con.close()
    return decided, rows


def test_gate_inputs_left_out_change_no_decision(demo_store, tmp_path, monkeypatch):
    shutil.copy(demo_store, tmp_path / "short.duckdb")
    shutil.copy(demo_store, tmp_path / "long.duckdb")
    asked = []
    fetch = decide_module.fetch

    def counting(con, customers, now, consents_of=None, sends_of=None):
        asked.append((len(customers), len(consents_of or ()), len(sends_of or ())))
        return fetch(con, customers, now, consents_of, sends_of)

    monkeypatch.setattr(decide_module, "fetch", counting)
    short = _run(tmp_path / "short.duckdb")
    # the long way: every row through every gate, every recipient's consents and past sends
    monkeypatch.setattr(decide_module, "settled_by_row", lambda plan, row, now: False)
    monkeypatch.setattr(decide_module, "reads_consents", lambda plan, row: True)
    monkeypatch.setattr(decide_module, "reads_sends", lambda plan: True)
    long = _run(tmp_path / "long.duckdb")

    shortcut, everything = asked[:len(asked) // 2], asked[len(asked) // 2:]
    for part in range(3):  # recipients, consents and past sends were all left out
        assert sum(a[part] for a in shortcut) < sum(a[part] for a in everything), part
    decisions, _ = short
    assert any("consent" in detail for _, _, _, detail, *_ in decisions)  # a consent gate did decide
    assert {"sent", "guard"} <= {reason for _, _, reason, *_ in decisions}
    assert short == long


def _plan(*, steps=(), expire=None, cooldown=None, cap=None, once_per=None) -> FlowPlan:
    return FlowPlan(name="f", purpose="marketing", event="delivered", subject="order", at_local=None, unless=None,
                    guards=(), exits=(), steps=steps, window=None, legal_windows=(), cooldown=cooldown, cap=cap,
                    expire=expire, once_per=once_per, holdout=None, obligations=(), flow=None)


def test_settled_by_row_is_exactly_the_first_gates():
    plan = _plan(steps=(StepPlan(0, 0, ("email",), (Message("t"),)),), expire=3600)
    now = datetime(2026, 9, 1, 12, tzinfo=UTC)
    base = {"key": "f:0:e", "occurrence": "e", "customer_id": "c", "email": "c@example.com", "unless_ok": True,
            "guard_ok": True, "exited": False, "due_at": now - timedelta(minutes=30), "suppressed": [],
            "opted_out": [], "consents": [], "last_send": None, "cap_used": 0, "once_used": False}
    cases = [{}, {"unless_ok": False}, {"guard_ok": False}, {"exited": True}, {"due_at": now - timedelta(hours=2)},
             {"email": None}]
    for change in cases:
        row = {**base, **change}
        decided = gates.decide(plan, plan.steps[0], row, now)
        first_gates = decided.reason in ("unless", "guard", "exited", "expired")
        assert gates.settled_by_row(plan, row, now) is first_gates, (change, decided.reason)


def _reference_counts(sends, plan, row, now):
    """last_send, cap_used and once_used as SPEC.md words them, one list at a time."""
    journey = (plan.name, row.get("occurrence"))
    same_purpose = [s for s in sends if s.purpose == plan.purpose]
    others = [s for s in sends if (s.flow, s.occurrence) != journey]
    past = [s.send_at for s in same_purpose if s.send_at <= now and (s.flow, s.occurrence) != journey]
    window = timedelta(seconds=plan.cap[1]) if plan.cap else timedelta(0)
    return (max(past) if past else None, sum(1 for s in same_purpose if s.send_at > now - window),
            any(s.flow == plan.name and (s.order_id == row.get("order_id") or plan.once_per == "customer")
                for s in others))


sends = st.lists(st.builds(Send, st.sampled_from(["f", "g"]), st.sampled_from(["marketing", "service"]),
                           st.sampled_from(["o1", "o2", None]),
                           st.integers(-72, 72).map(lambda h: datetime(2026, 9, 1, tzinfo=UTC) + timedelta(hours=h)),
                           st.sampled_from(["e1", "e2", None])), max_size=8)


@settings(max_examples=200, deadline=None)
@given(sends=sends, once_per=st.sampled_from([None, "order", "customer"]), cooldown=st.sampled_from([None, 3_600]),
       cap=st.sampled_from([None, (2, 86_400), (1, 3_600)]), occurrence=st.sampled_from(["e1", "e2"]),
       order_id=st.sampled_from(["o1", "o2", None]))
def test_fill_counts_past_sends_as_the_spec_words_them(sends, once_per, cooldown, cap, occurrence, order_id):
    plan = _plan(cooldown=cooldown, cap=cap, once_per=once_per)
    now = datetime(2026, 9, 1, tzinfo=UTC)
    recipients = Recipients()
    recipients.sends["c"] = list(sends)
    row = recipients.fill({"customer_id": "c", "occurrence": occurrence, "order_id": order_id}, plan, now)
    if gates.reads_sends(plan):
        assert (row["last_send"], row["cap_used"], row["once_used"]) == _reference_counts(sends, plan, row, now)
    else:  # no gate counts them
        assert not {"last_send", "cap_used", "once_used"} & row.keys()


def test_new_ledger_rows_are_the_rows_the_upsert_writes(tmp_path):
    """A new row's claim columns, worked out by the insert, are those `_rows` gives every row."""
    now = datetime(2026, 9, 1, 12, tzinfo=UTC)
    decisions = [gates.Decision("f", 0, f"f:0:e{i}", f"e{i}", f"o{i}", f"c{i}", "email" if i % 3 else None, "t",
                                decision, reason, detail, now - timedelta(hours=1), send_at, "marketing")
                 for i, (decision, reason, detail, send_at) in enumerate([
                     ("send", "sent", "via email", now), ("skip", "guard", "a `where` …", None),
                     ("defer", "window", "local time 03:00 Asia/Tokyo is outside", now + timedelta(hours=6)),
                     ("send", "sent", 'quotes " and ünïcode', now)])]
    written = open_store(tmp_path / "a.duckdb")
    recorded = ledger.record(written, decisions, now, "runner")
    assert [d.key for d in recorded.claimed] == ["f:0:e0", "f:0:e3"]
    assert recorded.decisions == decisions
    upserted = open_store(tmp_path / "b.duckdb")
    _, rows, _ = ledger._rows(decisions, {}, now, "runner")
    table, params = ledger._rows_table(ledger._COLUMNS, rows)
    upserted.execute(f"INSERT INTO ledger ({ledger._NAMES}) SELECT * FROM {table}{ledger._UPSERT_TAIL}", params)
    query = "SELECT * FROM ledger ORDER BY key"
    assert written.execute(query).fetchall() == upserted.execute(query).fetchall()
