"""Simulation over a real DuckDB store: each gate fires for the right reason, in local time.

Also the store's layout a tick relies on: the lookup indexes of version 2 and a copy in time order.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from linkstar_dsl.checker import Env, check_text
from linkstar_dsl.compiler.plan import plan_flow
from linkstar_dsl.simulate import Simulation, scratch
from linkstar_dsl.store import open_store

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


_OPEN: dict[str, object] = {}


def _close(path: str) -> None:
    """The simulation attaches the file read-only, which DuckDB allows once the writer is closed."""
    con = _OPEN.pop(path, None)
    if con is not None:
        con.close()


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "s.duckdb"
    con = open_store(path)
    _OPEN[str(path)] = con
    yield con, str(path)
    _close(str(path))


def customer(con, cid, country="JP", tz="Asia/Tokyo", email=True, line=False, phone=None, source="shopify"):
    con.execute("INSERT INTO customers (id, source, email, line_user_id, phone, locale, timezone, country) "
                "VALUES (?, ?, ?, ?, ?, 'en', ?, ?)",
                [cid, source, f"{cid}@example.com" if email else None, "U" + "0" * 32 if line else None,
                 phone, tz, country])


def order(con, oid, cid, country="JP", marketplace="shopify"):
    con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, placed_at) "
                "VALUES (?, ?, ?, 'delivered', ?, 5000, 'JPY', TIMESTAMPTZ '2026-08-01 00:00:00+00')",
                [oid, cid, marketplace, country])


def event(con, eid, oid, name, when):
    con.execute("INSERT INTO order_events VALUES (?, ?, ?, ?, NULL)", [eid, oid, name, at(when)])


def plans_of(flow_text):
    """The plans of a file that must check clean, and their schema."""
    report = check_text(flow_text, "t.flow")
    assert report.errors == 0, [d.message for d in report.diagnostics]
    env = Env.for_module(report.module)
    return [plan_flow(f, env) for f in report.module.flows], env.schema


def simulate(path, flow_text, start, end, step="1h"):
    _close(path)
    plans, schema = plans_of(flow_text)
    sim = Simulation(scratch(path), plans, schema)
    hours = int(step[:-1])
    return sim, sim.run(at(start), at(end), timedelta(hours=hours))


SURVEY = """
flow survey
  purpose service
  market JP
  on delivered + 48h
  where not refunded and order.marketplace == shopify
  via line, email
  send "survey"
  between 10:00 and 18:00 local
  expire after 1d
"""


def explain_order(path, flow_text, order_id, when):
    """`explain`'s traces of one order at `when`, read from a scratch copy of the store."""
    from linkstar_dsl.explain import explain

    _close(path)
    plans, schema = plans_of(flow_text)
    return explain(scratch(path), plans, schema, order_id, at(when))


def outcomes(decisions):
    return {(d.order_id, d.decision, d.reason) for d in decisions}


def test_guards_channels_and_window(store):
    con, path = store
    customer(con, "c1", line=True)            # LINE friend: LINE first
    customer(con, "c2", email=False)          # no address at all
    customer(con, "c3")                       # email only
    customer(con, "c4")
    for i in range(1, 5):
        order(con, f"o{i}", f"c{i}")
    event(con, "e1", "o1", "delivered", "2026-08-03 03:00:00")  # due 05 Aug 12:00 JST: inside the window
    event(con, "e2", "o2", "delivered", "2026-08-03 03:00:00")
    event(con, "e3", "o3", "delivered", "2026-08-03 12:00:00")  # due 05 Aug 21:00 JST: deferred to 10:00
    event(con, "e4", "o4", "delivered", "2026-08-03 03:00:00")
    event(con, "r4", "o4", "refunded", "2026-08-04 00:00:00")
    _, decisions = simulate(path, SURVEY, "2026-08-03 00:00:00", "2026-08-07 00:00:00")
    assert outcomes(decisions) == {
        ("o1", "send", "sent"), ("o2", "skip", "no-channel"), ("o3", "defer", "window"),
        ("o3", "send", "sent"), ("o4", "skip", "guard")}
    sent = {d.order_id: d for d in decisions if d.decision == "send"}
    assert sent["o1"].channel == "line" and sent["o3"].channel == "email"
    assert sent["o3"].send_at == at("2026-08-06 01:00:00")   # 10:00 in Tokyo
    skipped = next(d for d in decisions if d.order_id == "o2")
    assert skipped.detail == "line: no line user id; email: no email"


def test_expiry_bounds_a_deferral(store):
    con, path = store
    customer(con, "c1")
    order(con, "o1", "c1")
    event(con, "e1", "o1", "delivered", "2026-08-03 12:00:00")
    flow = SURVEY.replace("expire after 1d", "expire after 2h")
    _, decisions = simulate(path, flow, "2026-08-03 00:00:00", "2026-08-07 00:00:00")
    assert outcomes(decisions) == {("o1", "skip", "window")}


def test_send_window_follows_daylight_saving_time(store):
    con, path = store
    customer(con, "c1", country="US", tz="America/New_York")
    order(con, "o1", "c1", country="US")
    # Due 2026-11-01 03:00 UTC = 31 Oct 23:00 EDT; clocks go back that night, so 09:00 is EST (UTC-5).
    event(con, "e1", "o1", "shipped", "2026-11-01 03:00:00")
    flow = ("on shipped via email purpose transactional market US between 09:00 and 17:00 local "
            "where order.marketplace == shopify")
    _, decisions = simulate(path, flow, "2026-10-31 00:00:00", "2026-11-02 00:00:00")
    sent = [d for d in decisions if d.decision == "send"]
    assert len(sent) == 1 and sent[0].send_at == at("2026-11-01 14:00:00")


def test_suppression_consent_and_once(store):
    con, path = store
    for cid in ("c1", "c2", "c3"):
        customer(con, cid, country="DE", tz="Europe/Berlin", source="shopify")
        order(con, "o" + cid[1:], cid, country="DE")
        event(con, "e" + cid[1:], "o" + cid[1:], "delivered", "2026-08-03 08:00:00")
    con.execute("INSERT INTO suppressions VALUES ('c1', NULL, 'unsubscribed', TIMESTAMPTZ '2026-07-01 00:00:00+00', 'test')")
    con.execute("INSERT INTO consents VALUES ('c3', 'email', 'marketing', 'express', "
                "TIMESTAMPTZ '2026-01-01 00:00:00+00', NULL, 'checkout', TIMESTAMPTZ '2026-01-02 00:00:00+00', NULL)")
    flow = ("flow promo purpose marketing market DE on delivered + 1d where order.marketplace != amazon "
            "via email send \"promo\" once per order cooldown 7d per customer")
    _, decisions = simulate(path, flow, "2026-08-03 00:00:00", "2026-08-06 00:00:00")
    assert outcomes(decisions) == {("o1", "skip", "suppressed"), ("o2", "skip", "no-channel"),
                                   ("o3", "send", "sent")}
    no_consent = next(d for d in decisions if d.order_id == "o2")
    assert no_consent.detail == "email: no double opt in consent"


def test_replaying_the_same_clock_sends_nothing_new(store):
    con, path = store
    customer(con, "c1")
    order(con, "o1", "c1")
    event(con, "e1", "o1", "delivered", "2026-08-03 03:00:00")
    sim, first = simulate(path, SURVEY, "2026-08-03 00:00:00", "2026-08-07 00:00:00")
    assert [d.decision for d in first] == ["send"]
    again = sim.run(at("2026-08-03 00:00:00"), at("2026-08-07 00:00:00"), timedelta(hours=1))
    assert again == first  # nothing was added: every occurrence is already decided


def test_output_is_deterministic(store):
    con, path = store
    for i in range(20):
        customer(con, f"c{i}", line=i % 2 == 0)
        order(con, f"o{i}", f"c{i}")
        event(con, f"e{i}", f"o{i}", "delivered", f"2026-08-03 {i % 24:02d}:00:00")
    flow = SURVEY.replace("  expire after 1d\n", "  holdout 20%\n")
    runs = []
    for _ in range(2):
        _, decisions = simulate(path, flow, "2026-08-03 00:00:00", "2026-08-08 00:00:00")
        runs.append([json.dumps(d.record(), sort_keys=True) for d in decisions])
    assert runs[0] == runs[1]
    assert any('"reason": "holdout"' in r for r in runs[0])


def test_at_time_local_waits_for_the_local_hour(store):
    con, path = store
    customer(con, "c1", country="JP", tz="Asia/Tokyo")
    order(con, "o1", "c1")
    event(con, "e1", "o1", "shipped", "2026-08-03 03:00:00")  # 12:00 in Tokyo
    flow = ("on shipped + 1d at 09:30 local via email purpose transactional market JP "
            "where order.marketplace == shopify")
    _, decisions = simulate(path, flow, "2026-08-03 00:00:00", "2026-08-06 00:00:00")
    sent = [d for d in decisions if d.decision == "send"]
    # due 4 Aug 12:00 JST; the next 09:30 JST is 5 Aug 09:30 = 00:30 UTC; the hourly clock sends at 01:00.
    assert [d.reason for d in decisions] == ["at-time", "sent"]
    assert sent[0].send_at == at("2026-08-05 01:00:00")


def test_explain_shows_each_gate_with_its_value(store):
    from linkstar_dsl.explain import render

    con, path = store
    customer(con, "c1", line=False)
    order(con, "o1", "c1")
    event(con, "e1", "o1", "delivered", "2026-08-03 03:00:00")
    event(con, "r1", "o1", "refunded", "2026-08-04 00:00:00")
    traces = explain_order(path, SURVEY, "o1", "2026-08-05 04:00:00")
    (trace,) = traces
    assert trace.outcome.startswith("SKIP (guard)")
    checks = {c.detail: c.ok for c in trace.checks}
    assert checks["`not refunded` is false"] is False
    assert checks["`order.marketplace == shopify` is true"] is True
    assert checks["no line user id"] is False
    text = render(traces, "order o1", at("2026-08-05 04:00:00"))
    assert "✗ where" in text and "channel line" in text


def test_state_windows_narrow_the_federal_one(store):
    con, path = store
    for cid, state in (("c1", "FL"), ("c2", "NY")):
        customer(con, cid, country="US", tz="America/New_York", email=False, phone="+12125550100")
        con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, state, total, total_currency, "
                    "placed_at) VALUES (?, ?, 'shopify', 'delivered', 'US', ?, 50, 'USD', "
                    "TIMESTAMPTZ '2026-08-01 00:00:00+00')", ["o" + cid[1:], cid, state])
        con.execute("INSERT INTO consents VALUES (?, 'sms', 'marketing', 'written', "
                    "TIMESTAMPTZ '2026-01-01 00:00:00+00', NULL, 'web_form', NULL, NULL)", [cid])
        # 20:30 New York time (EDT): inside TCPA's 08:00–21:00, after Florida's 20:00.
        event(con, "e" + cid[1:], "o" + cid[1:], "delivered", "2026-08-04 00:30:00")
    flow = ("flow sms purpose marketing market US on delivered where customer.source != amazon via sms "
            "between 08:00 and 21:00 local send \"promo\" cooldown 7d per customer")
    _, decisions = simulate(path, flow, "2026-08-03 12:00:00", "2026-08-05 00:00:00")
    first = {d.order_id: (d.decision, d.reason) for d in decisions}
    assert first["o2"] == ("send", "sent")
    assert ("o1", "defer", "window") in outcomes(decisions)
    sent_fl = [d for d in decisions if d.order_id == "o1" and d.decision == "send"]
    assert sent_fl and sent_fl[0].send_at >= at("2026-08-04 12:00:00")  # 08:00 EDT next morning


def test_casl_implied_consent_lapses_after_two_years(store):
    con, path = store
    for cid, granted in (("c1", "2025-06-01"), ("c2", "2024-01-01")):
        customer(con, cid, country="CA", tz="America/Toronto")
        order(con, "o" + cid[1:], cid, country="CA")
        con.execute("INSERT INTO consents VALUES (?, 'email', 'marketing', 'implied', ?, NULL, 'purchase', NULL, NULL)",
                    [cid, at(f"{granted} 00:00:00")])
        event(con, "e" + cid[1:], "o" + cid[1:], "delivered", "2026-08-03 15:00:00")
    flow = ("flow promo purpose marketing market CA on delivered where customer.source != amazon "
            "via email send \"promo\" cooldown 7d per customer")
    _, decisions = simulate(path, flow, "2026-08-03 00:00:00", "2026-08-05 00:00:00")
    assert outcomes(decisions) == {("o1", "send", "sent"), ("o2", "skip", "no-channel")}


def test_unless_and_exit_count_only_events_after_the_trigger(store):
    con, path = store
    customer(con, "c1")
    order(con, "o1", "c1")
    event(con, "p0", "o1", "refunded", "2026-08-01 00:00:00")   # before the trigger: does not count
    event(con, "e1", "o1", "delivered", "2026-08-03 03:00:00")
    customer(con, "c2")
    order(con, "o2", "c2")
    event(con, "e2", "o2", "delivered", "2026-08-03 03:00:00")
    event(con, "p2", "o2", "refunded", "2026-08-04 00:00:00")   # after the trigger: cancels the run
    flow = ("on delivered + 48h unless refunded via email purpose service market JP "
            "where order.marketplace == shopify between 10:00 and 18:00 local")
    _, decisions = simulate(path, flow, "2026-08-03 00:00:00", "2026-08-07 00:00:00")
    assert outcomes(decisions) == {("o1", "send", "sent"), ("o2", "skip", "unless")}


# ----------------------------------------------------------------------------- the store's layout


def test_version_2_turns_a_version_1_store_to_single_column_lookups(tmp_path):
    import duckdb

    from linkstar_dsl.store import key_lookups, migrate

    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    migrate(con, target=1)  # the store as version 1 left it, with data
    customer(con, "c1")
    for i in range(3):
        order(con, f"o{i}", "c1")
        event(con, f"e{i}", f"o{i}", "delivered", "2026-08-03 03:00:00")
    con.close()
    con = open_store(path)
    assert {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()} >= {1, 2}
    keys = dict(con.execute("SELECT index_name, expressions FROM duckdb_indexes() WHERE sql IS NOT NULL").fetchall())
    for name, column in (("order_events_by_order_id", "order_id"), ("customer_events_by_customer_id", "customer_id"),
                         ("ledger_by_customer_id", "customer_id"), ("ledger_by_decision", "decision"),
                         ("orders_by_customer", "customer_id"), ("consents_by_customer", "customer_id")):
        assert keys[name].strip("[]").replace('"', "").replace("'", "") == column
    assert con.execute("SELECT count(*) FROM order_events").fetchone()[0] == 3
    with key_lookups(con):
        plan = con.execute("EXPLAIN ANALYZE SELECT event FROM order_events "
                           "WHERE order_id IN (SELECT id FROM orders WHERE id = 'o1')").fetchall()[0][1]
    assert "Index Scan" in plan
    assert con.execute("SELECT current_setting('dynamic_or_filter_threshold')").fetchone()[0] == 50


def test_a_store_copied_in_time_order_keeps_every_row(tmp_path):
    import duckdb

    from linkstar_dsl.store import StoreError
    from linkstar_dsl.store.rewrite import copy_in_time_order

    source = tmp_path / "s.duckdb"
    con = open_store(source)
    customer(con, "c1")
    order(con, "o1", "c1")
    for eid, when in (("e3", "2026-08-05 00:00:00"), ("e1", "2026-08-01 00:00:00"), ("e2", "2026-08-03 00:00:00")):
        event(con, eid, "o1", "shipped", when)
    con.close()
    target = tmp_path / "t.duckdb"
    copied = copy_in_time_order(source, target)
    assert copied["order_events"] == 3 and copied["customers"] == 1 and copied["orders"] == 1
    con = duckdb.connect(str(target), read_only=True)
    assert [r[0] for r in con.execute("SELECT id FROM order_events").fetchall()] == ["e1", "e2", "e3"]
    con.close()
    with pytest.raises(StoreError):
        copy_in_time_order(source, target)


def test_a_store_copied_in_slices_keeps_time_order_rows_and_indexes(tmp_path, monkeypatch):
    import duckdb

    from linkstar_dsl.store import rewrite

    source = tmp_path / "s.duckdb"
    con = open_store(source)
    indexes = sorted(con.execute("SELECT index_name, sql FROM duckdb_indexes() WHERE sql IS NOT NULL").fetchall())
    for c in range(5):
        customer(con, f"c{c}")
        order(con, f"o{c}", f"c{c}")
    days = [9, 2, 7, 1, 8, 3, 6, 4, 5]
    for i, day in enumerate(days):
        event(con, f"e{i}", f"o{i % 5}", "shipped", f"2026-08-{day:02d} 00:00:00")
    con.close()
    monkeypatch.setattr(rewrite, "SLICE_ROWS", 2)
    target = tmp_path / "t.duckdb"
    copied = rewrite.copy_in_time_order(source, target)
    assert copied["order_events"] == 9 and copied["customers"] == 5 and copied["orders"] == 5
    con = duckdb.connect(str(target), read_only=True)
    times = [r[0] for r in con.execute("SELECT occurred_at FROM order_events").fetchall()]
    assert times == sorted(times) and len(set(times)) == 9
    assert sorted(r[0] for r in con.execute("SELECT id FROM customers").fetchall()) == [f"c{c}" for c in range(5)]
    assert sorted(con.execute("SELECT index_name, sql FROM duckdb_indexes() WHERE sql IS NOT NULL").fetchall()) \
        == indexes
    con.close()
