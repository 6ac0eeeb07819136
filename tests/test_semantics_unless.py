"""`unless ordered` and `exit when ordered`: after the trigger, `ordered` means another order.

An order's own `ordered` event comes before anything else that happens to it, so inside `unless`
and `exit when` (where events count only after the trigger) the word counts every order of the
customer (SPEC.md §3.5).  The due query of a tick, the per-order query of `explain`, the
simulation and the reference evaluator agree on it.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import test_simulate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_eval import Reference
from test_simulate import customer, event, explain_order, order, outcomes, simulate
from test_sql_agrees import BASE, datasets, guards, load, tick_and_reference

from linkstar_dsl.checker import check_text
from linkstar_dsl.compiler.due import AFTER_TRIGGER, NOW, expr
from linkstar_dsl.schema import standard_schema
from linkstar_dsl.store import migrate

REORDER = ("on delivered + 2d unless ordered via email purpose service market JP "
           "where order.marketplace == shopify")

store = test_simulate.store  # the store fixture simulations share


def test_another_order_after_delivery_cancels_the_reminder(store):
    con, path = store
    for cid in ("c1", "c2", "c3", "c4"):
        customer(con, cid)
    order(con, "o1", "c1")
    event(con, "d1", "o1", "delivered", "2026-08-03 03:00:00")
    order(con, "o1b", "c1")
    event(con, "n1", "o1b", "ordered", "2026-08-04 00:00:00")      # reordered after delivery: cancels
    order(con, "o2", "c2")
    event(con, "b2", "o2", "ordered", "2026-08-01 00:00:00")
    event(con, "d2", "o2", "delivered", "2026-08-03 03:00:00")
    order(con, "o2b", "c2")
    event(con, "n2", "o2b", "ordered", "2026-08-02 00:00:00")      # before the trigger: does not count
    order(con, "o3", "c3")
    event(con, "d3", "o3", "delivered", "2026-08-03 03:00:00")
    order(con, "o4", "c4")                                           # someone else's order counts for nobody
    event(con, "n4", "o4", "ordered", "2026-08-04 00:00:00")
    _, decisions = simulate(path, REORDER, "2026-08-03 00:00:00", "2026-08-07 00:00:00")
    assert outcomes(decisions) == {("o1", "skip", "unless"), ("o2", "send", "sent"), ("o3", "send", "sent")}


def test_explain_shows_the_other_order_as_the_reason(store):
    con, path = store
    customer(con, "c1")
    order(con, "o1", "c1")
    event(con, "d1", "o1", "delivered", "2026-08-03 03:00:00")
    order(con, "o1b", "c1")
    event(con, "n1", "o1b", "ordered", "2026-08-04 00:00:00")
    traces = explain_order(path, REORDER, "o1", "2026-08-05 04:00:00")
    (trace,) = traces
    assert trace.outcome.startswith("SKIP (unless)")
    assert {c.detail: c.ok for c in trace.checks}["`ordered` is true"] is False


def test_a_sequence_exits_when_the_customer_orders_again(store):
    con, path = store
    customer(con, "c1")
    order(con, "o1", "c1")
    event(con, "d1", "o1", "delivered", "2026-08-03 03:00:00")
    order(con, "o1b", "c1")
    event(con, "n1", "o1b", "ordered", "2026-08-04 12:00:00")      # between the two steps
    flow = ("flow seq\n  purpose service\n  market JP\n  on delivered\n  where order.marketplace == shopify\n"
            "  via email\n  step send \"a\"\n  step + 2d send \"b\"\n  exit when ordered\n")
    _, decisions = simulate(path, flow, "2026-08-03 00:00:00", "2026-08-07 00:00:00")
    assert sorted((d.step, d.decision, d.reason) for d in decisions) == [(0, "send", "sent"), (1, "skip", "exited")]


def test_where_still_reads_the_triggering_order(store):
    """Outside `unless` and `exit when`, `ordered` is the triggering order's own event, as before."""
    con, path = store
    customer(con, "c1")
    order(con, "o1", "c1")
    event(con, "b1", "o1", "ordered", "2026-08-01 00:00:00")
    event(con, "d1", "o1", "delivered", "2026-08-03 03:00:00")
    flow = ("on delivered + 2d via email purpose service market JP "
            "where order.marketplace == shopify and ordered within 7d")
    _, decisions = simulate(path, flow, "2026-08-03 00:00:00", "2026-08-07 00:00:00")
    assert outcomes(decisions) == {("o1", "send", "sent")}


UNLESS_ORDERED = st.sampled_from(["ordered", "not ordered", "ordered within 3d", "ordered or refunded",
                                  "count(ordered) >= 2 and ordered"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=UNLESS_ORDERED, data=datasets(), hours=st.integers(0, 1000))
def test_explain_query_agrees_with_the_reference_after_the_trigger(condition, data, hours):
    """The per-order query `explain` runs reads `ordered` after the trigger as the reference does."""
    now = BASE + timedelta(hours=hours)
    schema = standard_schema()
    parsed = check_text(f"on delivered unless {condition} via email purpose service", "t.flow")
    unless = parsed.module.flows[0].clauses[0].unless
    q = expr(schema, unless, AFTER_TRIGGER)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    load(con, *data)
    customers, orders, reviews, events, cevents = data
    params = [now if p is NOW else p for p in q.params]
    got = {row[0] for row in con.execute(
        "SELECT e.id FROM order_events e JOIN orders o ON o.id = e.order_id JOIN customers c ON c.id = o.customer_id "
        f"LEFT JOIN reviews r ON r.order_id = o.id LEFT JOIN carts ct ON FALSE WHERE coalesce({q.sql}, FALSE)",
        params).fetchall()}
    by_id = {o["id"]: o for o in orders}
    by_customer = {c["id"]: c for c in customers}
    by_review = {r["order_id"]: r for r in reviews}
    expected = set()
    for eid, oid, _, occurred in events:
        o = by_id[oid]
        reference = Reference(schema, now, o, by_customer[o["customer_id"]], by_review.get(oid),
                              [(x, ev, t) for _, x, ev, t in events], [(x, ev, t) for _, x, ev, t in cevents],
                              orders, after=occurred)
        if reference.truth(unless):
            expected.add(eid)
    assert got == expected, condition


@st.composite
def reorder_flows(draw):
    """Flows on an order event with `unless ordered` or `exit when ordered` (a sequence)."""
    trigger = draw(st.sampled_from(["delivered", "refunded", "ordered"]))
    offset = draw(st.sampled_from(["", " + 1h", " + 2d"]))
    lines = ["flow f0", "  purpose service", f"  on {trigger}{offset} unless {draw(UNLESS_ORDERED)}",
             f"  where {draw(guards())}", "  via email"]
    if draw(st.booleans()):
        lines += ['  step send "a"', '  step + 1d send "b"',
                  f"  exit when {draw(st.sampled_from(['ordered', 'ordered or returned']))}"]
    return ["\n".join(lines) + "\n"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=reorder_flows(), data=datasets(), start=st.integers(0, 600), hours=st.integers(1, 900),
       draw=st.data())
def test_the_tick_agrees_with_the_reference_on_another_order(texts, data, start, hours, draw):
    got, expected = tick_and_reference(texts, data, start, hours, draw)
    assert got == expected, texts
