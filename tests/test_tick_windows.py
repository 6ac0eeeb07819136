"""How a tick finds its occurrences: the windows it derives from its clock, the birth dates a
birthday window takes, and steps whose trigger offsets share one scan of the events."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstar_dsl.checker import Env, check_text
from linkstar_dsl.compiler.due import (
    NEARBY_OFFSETS,
    _nearby,
    birth_dates_between,
    clock_value,
    shifted,
    window_day,
)
from linkstar_dsl.compiler.plan import plan_flow
from linkstar_dsl.runtime.due_set import DueSet
from linkstar_dsl.store import migrate

BASE = datetime(2026, 3, 1, tzinfo=UTC)


def plans_of(*texts):
    plans = []
    for text in texts:
        report = check_text(text, "t.flow")
        env = Env.for_module(report.module)
        plans += [plan_flow(f, env) for f in report.module.flows]
    return plans, env.schema


def store():
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    return con


def add_order(con):
    con.execute("INSERT INTO customers (id, country, email) VALUES ('c1', 'US', 'c1@example.com')")
    con.execute("INSERT INTO orders (id, customer_id, marketplace, fulfillment, status, country, total, "
                "total_currency, item_count, placed_at) VALUES ('o1', 'c1', 'shopify', 'merchant', 'x', 'US', 10, "
                "'USD', 1, ?)", [BASE])


def test_the_windows_move_back_by_the_offset():
    now, since = datetime(2026, 3, 2, 5, tzinfo=UTC), datetime(2026, 3, 2, 4, tzinfo=UTC)
    assert clock_value(shifted("now", 3600).name, now, since) == datetime(2026, 3, 2, 4, tzinfo=UTC)
    assert clock_value(shifted("since", 86_400).name, now, since) == datetime(2026, 3, 1, 4, tzinfo=UTC)
    assert clock_value(window_day("first", 86_400).name, now, since) == date(2026, 2, 28)
    assert clock_value(window_day("last", 86_400).name, now, since) == date(2026, 3, 2)


def test_a_window_holding_the_first_of_march_takes_every_leap_day():
    dates = set(birth_dates_between(date(2027, 2, 28), date(2027, 3, 1)))
    assert date(1996, 2, 29) in dates and date(1900, 2, 28) in dates and date(2027, 3, 1) in dates
    assert not any(d.month == 2 and d.day == 29 and not calendar.isleap(d.year) for d in dates)
    assert date(1996, 3, 2) not in dates
    assert date(1996, 2, 29) not in birth_dates_between(date(2027, 2, 27), date(2027, 2, 28))


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 12, 31)), st.integers(0, 400))
@settings(max_examples=60, deadline=None)
def test_birth_dates_are_those_with_an_anniversary_in_the_window(first, length):
    last = first + timedelta(days=length)
    days = {(first + timedelta(days=n)).timetuple()[1:3] for n in range((last - first).days + 1)}
    found = set(birth_dates_between(first, last))
    for born in (date(1950, 1, 1) + timedelta(days=n) for n in range(0, 365 * 8, 3)):
        anniversary = (3, 1) if (born.month, born.day) == (2, 29) else (born.month, born.day)
        in_window = (born.month, born.day) in days or anniversary in days
        assert (born in found) == in_window, born


def test_nearby_offsets_share_a_scan():
    assert _nearby([0, 3600, 86_400, 432_000, 2_592_000]) == [{0, 3600, 86_400}, {432_000}, {2_592_000}]
    assert _nearby([0, NEARBY_OFFSETS]) == [{0, NEARBY_OFFSETS}]
    assert _nearby([0, NEARBY_OFFSETS + 1]) == [{0}, {NEARBY_OFFSETS + 1}]


def test_an_event_due_in_several_steps_of_one_scan_gives_a_row_for_each():
    con = store()
    add_order(con)
    delivered = BASE + timedelta(days=2)
    con.execute("INSERT INTO order_events VALUES ('e1', 'o1', 'delivered', ?, NULL)", [delivered])
    plans, schema = plans_of(
        "flow a\n  purpose service\n  on delivered\n  via email\n  step + 1h send \"x\"\n  step + 2h send \"y\"\n"
        "  step + 2d send \"z\"\n",
        "flow b\n  purpose service\n  on delivered + 1h\n  via email\n",
        "flow c\n  purpose service\n  on delivered + 30d\n  via email\n")
    due_set = DueSet(plans, schema)
    found = []
    for hour in range(31 * 24 + 2):
        now = delivered + timedelta(hours=hour)
        found += [(row["key"], row["due_at"]) for _, _, row in due_set.rows(con, now - timedelta(hours=1), now)]
    assert [(plan.name, [step.offset for step in plan.steps]) for plan in plans] == [
        ("a", [3600, 7200, 172_800]), ("b", [3600]), ("c", [2_592_000])]
    assert found == [("a:0:e1", delivered + timedelta(hours=1)), ("b:0:e1", delivered + timedelta(hours=1)),
                     ("a:1:e1", delivered + timedelta(hours=2)), ("a:2:e1", delivered + timedelta(days=2)),
                     ("c:0:e1", delivered + timedelta(days=30))]


def test_a_late_event_is_found_by_a_window_reaching_back_to_it():
    con = store()
    add_order(con)
    plans, schema = plans_of("flow a\n  purpose service\n  on shipped + 1h\n  via email\n")
    due_set = DueSet(plans, schema)
    now = BASE + timedelta(days=1)
    assert due_set.rows(con, now - timedelta(hours=1), now) == []
    # stored after the tick that covered its due time: the next tick looks back a day
    con.execute("INSERT INTO order_events VALUES ('e1', 'o1', 'shipped', ?, NULL)", [now - timedelta(hours=3)])
    later = now + timedelta(hours=1)
    assert [row["key"] for _, _, row in due_set.rows(con, later - timedelta(hours=25), later)] == ["a:0:e1"]


def test_a_birthday_before_the_day_counts_back_from_local_midnight():
    con = store()
    con.execute("INSERT INTO customers (id, country, timezone, birthday, email) "
                "VALUES ('c1', 'JP', 'Asia/Tokyo', DATE '1990-03-08', 'c1@example.com')")
    plans, schema = plans_of("flow b\n  purpose service\n  on birthday - 7d\n  via email\n")
    assert plans[0].steps[0].offset == -7 * 86_400
    now, since = datetime(2026, 3, 2, 5, tzinfo=UTC), datetime(2026, 3, 2, 4, tzinfo=UTC)
    assert clock_value(shifted("now", -3600).name, now, since) == datetime(2026, 3, 2, 6, tzinfo=UTC)
    due_set = DueSet(plans, schema)
    found = []
    start = datetime(2026, 2, 27, tzinfo=UTC)
    for hour in range(24 * 5):
        now = start + timedelta(hours=hour)
        found += [(row["key"], row["due_at"]) for _, _, row in due_set.rows(con, now - timedelta(hours=1), now)]
    # local midnight of 8 March in Tokyo is 15:00 UTC on 7 March; a week before, 28 February
    assert found == [("b:0:birthday:c1:2026", datetime(2026, 2, 28, 15, tzinfo=UTC))]
