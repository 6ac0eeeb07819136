"""What a tick leaves out: the statements that look up deferrals when none is due, the parts of
the `due` statement for kinds with no deferral due, every statement after it when nothing is due,
and the customers whose birthday cannot have its local midnight in the window."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from test_tick_windows import plans_of
from test_tick_windows import store as empty_store

from linkstar_dsl.compiler import due as due_module
from linkstar_dsl.compiler.due import anniversary_days, clock_value, window_day
from linkstar_dsl.runtime.due_set import DueSet

BASE = datetime(2026, 3, 1, tzinfo=UTC)
#: Zones at the ends of the offsets in use, with half and quarter hours, and DST at midnight.
ZONES = ("Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Chatham", "Asia/Kathmandu", "America/St_Johns",
         "America/Santiago", "Asia/Beirut", "Asia/Tokyo", "Europe/London", "UTC")


def store():
    con = empty_store()
    con.execute("INSERT INTO customers (id, country, email, timezone, birthday) "
                "VALUES ('c1', 'US', 'c1@example.com', 'Asia/Tokyo', DATE '1990-02-27')")
    con.execute("INSERT INTO orders (id, customer_id, marketplace, fulfillment, status, country, total, "
                "total_currency, item_count, placed_at) VALUES ('o1', 'c1', 'shopify', 'merchant', 'x', 'US', 10, "
                "'USD', 1, ?)", [BASE])
    return con


def defer(con, key: str, flow: str, occurrence: str, send_at: datetime, order_id: str | None = "o1"):
    con.execute("INSERT INTO ledger (key, flow, step, occurrence, order_id, customer_id, purpose, decision, "
                "reason, due_at, send_at) VALUES (?, ?, 0, ?, ?, 'c1', 'service', 'defer', 'window', ?, ?)",
                [key, flow, occurrence, order_id, BASE, send_at])


FLOWS = ("flow a\n  purpose service\n  on shipped\n  via email\n",
         "flow b\n  purpose service\n  on birthday\n  via email\n")


def keys(due_set, con, now):
    return [row["key"] for _, _, row in due_set.rows(con, now - timedelta(hours=1), now)]


def ran(due_set) -> set[str]:
    return {name for name, seconds in due_set.timings if seconds}


def test_the_deferral_lookups_run_only_when_a_deferral_is_due():
    con = store()
    con.execute("INSERT INTO order_events VALUES ('e1', 'o1', 'shipped', ?, NULL)", [BASE + timedelta(minutes=5)])
    due_set = DueSet(*plans_of(*FLOWS))
    names = [name for name, _ in due_set.statements]
    # the connection's first tick, with no deferral: no pending table is made, nor read
    assert keys(due_set, con, BASE + timedelta(hours=1)) == ["a:0:e1"]
    assert [name for name, _ in due_set.timings] == names
    assert not ran(due_set) & {"defers_due", "pending_oe", "pending_c"}
    defer(con, "a:0:e1", "a", "e1", BASE + timedelta(hours=5))
    defer(con, "b:0:birthday:c1:2026", "b", "birthday:c1:2026", BASE + timedelta(hours=7), None)
    # deferrals, none due yet: counted, not looked up
    assert keys(due_set, con, BASE + timedelta(hours=2)) == []
    assert "defers_due" in ran(due_set) and not ran(due_set) & {"pending_oe", "pending_c"}
    # the order's deferral is due, the birthday's is not
    assert keys(due_set, con, BASE + timedelta(hours=5)) == ["a:0:e1"]
    assert {"pending_oe", "pending_c"} <= ran(due_set)
    # both are due: the birthday's occurrence found in its year
    assert keys(due_set, con, BASE + timedelta(hours=8)) == ["a:0:e1", "b:0:birthday:c1:2026"]


def test_each_due_statement_reads_the_pending_tables_it_is_chosen_for():
    due_set = DueSet(*plans_of(*FLOWS))
    assert set(due_set.due) == {frozenset(), frozenset({"pending_oe"}), frozenset({"pending_c"}),
                                frozenset({"pending_oe", "pending_c"})}
    for held, sql in due_set.due.items():
        for table in due_set.pending:
            assert bool(re.search(rf"{due_module.TEMP}{table}\b", sql)) == (table in held), (held, table)


def test_a_tick_with_nothing_due_stops_after_the_due_statement():
    con = store()
    due_set = DueSet(*plans_of(*FLOWS))
    assert keys(due_set, con, BASE + timedelta(hours=1)) == []
    assert ran(due_set) <= {"fresh", "defers", "due"}
    assert [name for name, _ in due_set.timings] == [name for name, _ in due_set.statements]
    # the same connection's next tick makes the tables the first one skipped, in order
    con.execute("INSERT INTO order_events VALUES ('e1', 'o1', 'shipped', ?, NULL)", [BASE + timedelta(minutes=90)])
    assert keys(due_set, con, BASE + timedelta(hours=2)) == ["a:0:e1"]
    assert {"ord", "rows", "cust", "result"} <= ran(due_set)


def test_a_pending_table_left_from_an_earlier_tick_is_not_read_again():
    con = store()
    due_set = DueSet(*plans_of(*FLOWS))
    con.execute("INSERT INTO order_events VALUES ('e1', 'o1', 'shipped', ?, NULL)", [BASE - timedelta(days=2)])
    defer(con, "a:0:e1", "a", "e1", BASE + timedelta(hours=1))
    assert keys(due_set, con, BASE + timedelta(hours=1)) == ["a:0:e1"]
    con.execute("UPDATE ledger SET decision = 'send' WHERE key = 'a:0:e1'")
    # `pending_oe` still holds e1, but no deferral is due: it must not come back
    assert keys(due_set, con, BASE + timedelta(hours=2)) == []


def local_midnight(day: date, zone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)),
       st.integers(1, 26 * 3600), st.sampled_from(ZONES))
@settings(max_examples=300, deadline=None)
def test_every_local_midnight_in_the_window_is_on_an_anniversary_day(start, seconds, zone):
    low = start.replace(tzinfo=UTC)
    high = low + timedelta(seconds=seconds)
    first, last = anniversary_days(low, high)
    for n in range(-3, (high - low).days + 4):
        day = low.date() + timedelta(days=n)
        if low < local_midnight(day, zone) <= high:
            assert first <= day <= last, (day, zone)
    # never wider than the window's days
    assert clock_value(window_day("first", 0).name, high, low) <= first
    assert last <= clock_value(window_day("last", 0).name, high, low)


def test_an_hour_s_window_takes_two_days_of_birth_dates():
    assert anniversary_days(datetime(2026, 3, 2, 14, tzinfo=UTC), datetime(2026, 3, 2, 15, tzinfo=UTC)) == (
        date(2026, 3, 2), date(2026, 3, 3))
    assert anniversary_days(datetime(2026, 3, 1, 23, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)) == (
        date(2026, 3, 1), date(2026, 3, 2))


def test_birthdays_at_the_ends_of_the_offsets_are_found_hour_by_hour():
    con = empty_store()
    for i, zone in enumerate(ZONES):
        for born in (date(1990, 3, 1), date(1990, 3, 2), date(1992, 2, 29), date(1899, 3, 1)):
            con.execute("INSERT INTO customers (id, country, email, timezone, birthday) VALUES (?, 'US', 'x', ?, ?)",
                        [f"c{i}-{born}", zone, born])
    due_set = DueSet(*plans_of(FLOWS[1]))
    found = []
    start = datetime(2027, 2, 26, tzinfo=UTC)
    for hour in range(24 * 6):
        now = start + timedelta(hours=hour)
        found += [(row["customer_id"], row["due_at"]) for _, _, row in due_set.rows(con, now - timedelta(hours=1), now)]
    expected = []
    for i, zone in enumerate(ZONES):
        for born in (date(1990, 3, 1), date(1990, 3, 2), date(1992, 2, 29), date(1899, 3, 1)):
            day = date(2027, 3, 1) if born.month == 2 else born.replace(year=2027)
            expected.append((f"c{i}-{born}", local_midnight(day, zone)))
    assert sorted(found) == sorted(expected)
