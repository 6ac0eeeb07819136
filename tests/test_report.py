"""`linkstar report` over a real DuckDB store with known ledger rows, events, suppressions and orders.

Every figure below is worked out by hand from the rows the fixture writes; the confidence
intervals are checked against the values Newcombe published for his method 10 (Statistics in
Medicine 17, 1998, table II).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from click.testing import CliRunner

from linkstar_dsl import cli
from linkstar_dsl.report.build import METRICS, as_json, build
from linkstar_dsl.report.queries import Filters, counts, open_read_only, sources
from linkstar_dsl.report.stats import lift, wilson
from linkstar_dsl.store import open_store

SENT_AT = datetime(2026, 8, 5, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 8, 20, 10, 0, tzinfo=UTC)


def ledger(con, key, flow, customer, *, step=0, template=None, decision="send", reason="sent", status="sent",
           channel="email", send_at=SENT_AT, due_at=SENT_AT, delivery=None):
    con.execute(
        "INSERT INTO ledger (key, flow, step, occurrence, customer_id, channel, template, purpose, decision, reason, "
        "due_at, send_at, status, delivery) VALUES (?, ?, ?, ?, ?, ?, ?, 'marketing', ?, ?, ?, ?, ?, ?)",
        [key, flow, step, key, customer, channel, template, decision, reason, due_at, send_at, status, delivery])


def event(con, ident, customer, name, when, **data):
    con.execute("INSERT INTO customer_events (id, customer_id, event, occurred_at, data) VALUES (?, ?, ?, ?, ?)",
                [ident, customer, name, when, json.dumps(data)])


def suppress(con, customer, channel, reason, when):
    con.execute("INSERT INTO suppressions VALUES (?, ?, ?, ?, 'test')", [customer, channel, reason, when])


def order(con, ident, customer, when, status="paid"):
    con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, placed_at) "
                "VALUES (?, ?, 'shopify', ?, 'JP', 1000, 'JPY', ?)", [ident, customer, status, when])


def bulk_sends(con, flow, step, prefix, n, *, stops=0, reason="complaint", channel=None, start=LATER):
    """`n` sends of one step; the first `stops` customers are suppressed a day later."""
    con.execute(
        "INSERT INTO ledger (key, flow, step, occurrence, customer_id, channel, purpose, decision, reason, due_at, "
        "send_at, status) SELECT ? || i, ?, ?, ? || i, ? || i, 'email', 'service', 'send', 'sent', ?, ?, 'sent' "
        "FROM range(?) t(i)", [f"{flow}:{step}:", flow, step, prefix, prefix, start, start, n])
    con.execute("INSERT INTO suppressions SELECT ? || i, ?, ?, ?, 'test' FROM range(?) t(i)",
                [prefix, channel, reason, start + timedelta(days=1), stops])


def build_store(path):
    con = open_store(path)
    day = timedelta(days=1)
    # flow `review`, step 1, split between two templates, with a holdout
    for i in range(10):
        ledger(con, f"review:0:p{i}", "review", f"p{i}", template="review_plain",
               delivery="bounced" if i == 8 else "delivered" if i < 8 else None)
    ledger(con, "review:0:pf", "review", "pf", template="review_plain", decision="skip", reason="send-failed",
           status="failed")
    for i in range(5):
        ledger(con, f"review:0:q{i}", "review", f"q{i}", template="review_photo")
    for i in range(20):
        ledger(con, f"review:0:h{i}", "review", f"h{i}", template="review_plain" if i % 2 else "review_photo",
               decision="skip", reason="holdout", status="decided", channel=None, send_at=None)
    ledger(con, "review:0:claimed", "review", "pc", template="review_plain", status="claimed")  # still in flight
    ledger(con, "review:0:guard", "review", "pg", template="review_plain", decision="skip", reason="guard",
           status="decided", send_at=None)
    # engagement, as the feedback layer writes it: with the ledger key, or without (attributed by time)
    for i in range(5):
        event(con, f"open{i}", f"p{i}", "opened", SENT_AT + timedelta(hours=1), ledger_key=f"review:0:p{i}",
              channel="email")
    event(con, "open5", "p5", "opened", SENT_AT + timedelta(hours=2), channel="email")      # attributed by time
    event(con, "open5b", "p5", "opened", SENT_AT + timedelta(hours=3), channel="email")     # same message again
    event(con, "open6", "p6", "opened", SENT_AT + 10 * day, channel="email")                # outside the window
    event(con, "open7", "p7", "opened", SENT_AT + timedelta(hours=2), channel="sms")        # another channel
    event(con, "click0", "p0", "clicked", SENT_AT + timedelta(hours=1), ledger_key="review:0:p0")
    event(con, "click1", "p1", "clicked", SENT_AT + timedelta(hours=1), ledger_key="review:0:p1")
    event(con, "reply2", "p2", "replied", SENT_AT + timedelta(hours=5), channel="email")
    event(con, "open_q0", "q0", "opened", SENT_AT - timedelta(hours=1), channel="email")     # before the send
    suppress(con, "p3", "email", "unsubscribed", SENT_AT + day)
    suppress(con, "p9", "sms", "sms_stop", SENT_AT + day)              # not the channel the message used
    suppress(con, "p4", None, "complaint", SENT_AT + day)             # every channel
    suppress(con, "p6", "email", "unsubscribed", SENT_AT - day)       # before the send
    # conversions within 7 days of the message (or of the due time, for holdout members)
    for c in ("p0", "p1", "p2", "q0", "h0", "h1"):
        order(con, f"order-{c}", c, SENT_AT + 2 * day)
    order(con, "order-p2b", "p2", SENT_AT + 3 * day)                  # a second order converts nothing more
    order(con, "order-p3", "p3", SENT_AT - day)                       # before the send
    order(con, "order-p4", "p4", SENT_AT + 10 * day)                  # outside 7d, inside 14d
    order(con, "order-p5", "p5", SENT_AT + day, status="canceled")
    # flow `survey`: step 1 over the alert threshold, step 2 above the rate but under 200 sends
    bulk_sends(con, "survey", 0, "s", 250, stops=2)                   # 0.8% of 250
    bulk_sends(con, "survey", 1, "t", 100, stops=5, reason="unsubscribed", channel="email")
    bulk_sends(con, "notice", 0, "n", 300, stops=1, reason="unsubscribed")  # 0.33%
    con.close()
    return str(path)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("report") / "shop.duckdb")


def make_report(path, **filters):
    con = open_read_only(path)
    try:
        f = Filters(**filters)
        src = sources(con)
        return build(counts(con, src, f), f, src)
    finally:
        con.close()


def rows_by_key(report):
    return {(r.flow, r.step, r.variant): r for r in report.rows}


def invoke(*args, env=None):
    return CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)


# -- statistics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("successes", "trials", "low", "high"),
                         [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
                          (1, 29, 0.0061, 0.1718)])
def test_wilson_interval_matches_published_values(successes, trials, low, high):
    got = wilson(successes, trials)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(("a", "m", "b", "n", "low", "high"),
                         [(56, 70, 48, 80, 0.0524, 0.3339), (9, 10, 3, 10, 0.1705, 0.8090),
                          (6, 7, 2, 7, 0.0582, 0.8062), (5, 56, 0, 29, -0.0381, 0.1926),
                          (0, 10, 0, 20, -0.1611, 0.2775), (0, 10, 0, 10, -0.2775, 0.2775)])
def test_newcombe_interval_matches_published_values(a, m, b, n, low, high):
    result = lift(a, m, b, n)
    assert result.difference == pytest.approx(a / m - b / n)
    assert (result.low, result.high) == pytest.approx((low, high), abs=5e-5)
    assert result.significant == (low > 0 or high < 0)


def test_no_lift_without_both_groups():
    assert lift(3, 10, 0, 0) is None
    assert lift(0, 0, 1, 10) is None


# -- counts and rates ----------------------------------------------------------------------------


def test_counts_per_flow_step_and_variant(store):
    rows = rows_by_key(make_report(store))
    assert set(rows) == {("review", 1, "review_photo"), ("review", 1, "review_plain"), ("survey", 1, None),
                         ("survey", 2, None), ("notice", 1, None)}
    plain = rows[("review", 1, "review_plain")]
    assert plain.counts == {"sent": 10, "delivered": 8, "failed": 2, "opened": 6, "clicked": 2, "replied": 1,
                            "unsubscribed": 1, "complained": 1, "converted": 3}
    assert plain.rates() == pytest.approx({"delivered": 0.8, "failed": 2 / 11, "opened": 0.6, "clicked": 0.2,
                                           "replied": 0.1, "unsubscribed": 0.1, "complained": 0.1, "converted": 0.3})
    photo = rows[("review", 1, "review_photo")]
    assert photo.counts == {"sent": 5, "delivered": 0, "failed": 0, "opened": 0, "clicked": 0, "replied": 0,
                            "unsubscribed": 0, "complained": 0, "converted": 1}
    assert rows[("survey", 2, None)].counts["unsubscribed"] == 5
    assert rows[("survey", 1, None)].counts["complained"] == 2


def test_holdout_members_are_the_control_of_every_variant(store):
    rows = rows_by_key(make_report(store))
    for variant, converted, sent in (("review_plain", 3, 10), ("review_photo", 1, 5)):
        row = rows[("review", 1, variant)]
        assert (row.holdout, row.holdout_converted) == (20, 2)
        expected = lift(converted, sent, 2, 20)
        assert row.lift == expected
        assert row.lift.difference == pytest.approx(converted / sent - 0.1)
    plain = rows[("review", 1, "review_plain")].lift
    assert (plain.low, plain.high) == pytest.approx((-0.0781, 0.5117), abs=5e-5)
    assert not plain.significant
    assert rows[("survey", 1, None)].lift is None


def test_longer_window_counts_later_orders_and_events(store):
    plain = rows_by_key(make_report(store, window=timedelta(days=14)))[("review", 1, "review_plain")]
    assert plain.counts["converted"] == 4   # p4's order on day 10
    assert plain.counts["opened"] == 7      # p6's open on day 10
    narrow = rows_by_key(make_report(store, window=timedelta(hours=1)))[("review", 1, "review_plain")]
    assert narrow.counts["opened"] == 5 and narrow.counts["converted"] == 0


def test_filters_by_flow_and_period(store):
    assert {r.flow for r in make_report(store, flow="survey").rows} == {"survey"}
    later = make_report(store, since=LATER)
    assert {r.flow for r in later.rows} == {"survey", "notice"}
    earlier = make_report(store, until=LATER)
    assert {r.flow for r in earlier.rows} == {"review"}


def test_alert_needs_the_rate_and_200_sends(store):
    alerts = make_report(store).alerts
    assert [(a.flow, a.step, a.sent, a.stopped) for a in alerts] == [("survey", 1, 250, 2)]
    assert alerts[0].rate == pytest.approx(0.008)


def test_store_without_feedback_tables(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE ledger (key VARCHAR, flow VARCHAR, step BIGINT, occurrence VARCHAR, "
                "customer_id VARCHAR, channel VARCHAR, template VARCHAR, purpose VARCHAR, decision VARCHAR, "
                "reason VARCHAR, due_at TIMESTAMPTZ, send_at TIMESTAMPTZ, status VARCHAR)")
    ledger_old = ("INSERT INTO ledger VALUES (?, 'f', 0, ?, ?, 'email', NULL, 'service', 'send', 'sent', ?, ?, "
                  "'sent')")
    con.execute(ledger_old, ["f:0:a", "a", "a", SENT_AT, SENT_AT])
    con.close()
    report = make_report(str(path))
    assert report.sources.missing() == ["ledger.delivery", "customer_events", "suppressions", "orders"]
    assert report.rows[0].counts["sent"] == 1 and report.rows[0].counts["converted"] == 0
    result = invoke("report", "--db", str(path))
    assert result.exit_code == 0, result.output
    assert "not in this store, counted as none: ledger.delivery, customer_events, suppressions, orders" in result.output


def test_feedback_layer_events_are_counted(tmp_path):
    from linkstar_dsl.feedback import FeedbackEvent, apply

    path = tmp_path / "fb.duckdb"
    con = open_store(path)
    con.execute("INSERT INTO customers (id, email, country) VALUES ('c1', 'c1@example.com', 'US')")
    ledger(con, "f:0:c1", "f", "c1")
    events = [FeedbackEvent("sendgrid", "e1", "delivered", "email", "c1@example.com", occurred_at=SENT_AT,
                            ledger_key="f:0:c1"),
              FeedbackEvent("sendgrid", "e2", "opened", "email", "c1@example.com", occurred_at=SENT_AT,
                            ledger_key="f:0:c1"),
              FeedbackEvent("sendgrid", "e3", "unsubscribed", "email", "c1@example.com",
                            occurred_at=SENT_AT + timedelta(hours=1), ledger_key="f:0:c1")]
    apply(con, events, SENT_AT + timedelta(days=1))
    con.close()
    row = make_report(str(path)).rows[0]
    assert row.counts == {**dict.fromkeys(METRICS, 0), "sent": 1, "delivered": 1, "opened": 1, "unsubscribed": 1}


# -- the command ---------------------------------------------------------------------------------


def test_json_output_has_stable_keys(store):
    result = invoke("report", "--db", store, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"format_version", "flow", "since", "until", "window_days", "confidence",
                         "missing_sources", "rows", "alerts"}
    assert data["format_version"] == 1 and data["window_days"] == 7 and data["missing_sources"] == []
    row = next(r for r in data["rows"] if r["variant"] == "review_plain")
    assert set(row) == {"flow", "step", "variant", *METRICS, "rates", "holdout", "lift"}
    assert set(row["rates"]) == set(METRICS) - {"sent"}
    assert row["holdout"] == {"members": 20, "converted": 2, "rate": 0.1}
    assert set(row["lift"]) == {"sent_rate", "holdout_rate", "difference", "low", "high", "significant"}
    assert row["lift"]["significant"] is False
    assert data["alerts"] == [{"flow": "survey", "step": 1, "sent": 250, "stopped": 2, "rate": 0.008,
                               "threshold": 0.005, "min_sends": 200}]


def test_plain_table_when_not_a_terminal(store):
    result = invoke("report", "--db", store, "--flow", "review")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0] == "messages per flow, step and variant (flow review, attribution window 7d)"
    assert lines[1].split() == ["flow", "step", "variant", "sent", "delivered", "failed", "opened", "clicked",
                                "replied", "unsub", "complaint", "converted"]
    plain = next(line for line in lines if "review_plain" in line and "pp" not in line)
    assert plain.split() == ["review", "1", "review_plain", "10", "8", "80.0%", "2", "18.2%", "6", "60.0%",
                             "2", "20.0%", "1", "10.0%", "1", "10.0%", "1", "10.0%", "3", "30.0%"]
    lift_line = next(line for line in lines if "review_plain" in line and "pp" in line)
    assert "3/10 30.0%" in lift_line and "2/20 10.0%" in lift_line and "+20.0 pp" in lift_line
    assert "[-7.8 pp, +51.2 pp]" in lift_line and lift_line.endswith("not significant")
    assert "no unsubscribe-rate alert (limit: 0.50% over at least 200 sends)" in out


def test_rich_tables_and_alert_on_request(store):
    result = invoke("report", "--db", store, "--color", "always", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.output and "┃" in result.output
    assert "ALERT survey step 1: 2 of 250 messages (0.80%)" in result.output


def test_no_color_wins_over_auto(store):
    result = invoke("report", "--db", store, env={"NO_COLOR": "1"})
    assert "\x1b[" not in result.output and "┃" not in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--db", "missing.duckdb"], "missing.duckdb: no such database"),
    (["--flow", "reveiw"], "no flow named reveiw in the ledger; did you mean review?"),
    (["--since", "yesterday"], "`yesterday` is not a date"),
    (["--since", "2026-09-01", "--until", "2026-08-01"], "--until must be after --since"),
    (["--window", "7 days"], "is not a window such as 48h, 7d or 2w"),
])
def test_bad_input_is_one_clear_line(store, args, message):
    full = args if args[0] == "--db" else ["--db", store, *args]
    result = CliRunner(mix_stderr=False).invoke(cli.main, ["report", *full]) if _mixes() else \
        CliRunner().invoke(cli.main, ["report", *full])
    assert result.exit_code == 2
    err = result.stderr
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def _mixes() -> bool:
    import inspect

    return "mix_stderr" in inspect.signature(CliRunner).parameters


def test_not_a_database_and_an_empty_ledger(tmp_path):
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    result = invoke("report", "--db", str(junk))
    assert result.exit_code == 2
    empty = tmp_path / "empty.duckdb"
    open_store(empty).close()
    result = invoke("report", "--db", str(empty))
    assert result.exit_code == 0
    assert result.output == "no messages sent, failed or held out in this period\n"
    data = json.loads(invoke("report", "--db", str(empty), "--format", "json").output)
    assert data["rows"] == [] and data["alerts"] == []


def test_json_of_a_report_is_serialisable(store):
    json.dumps(as_json(make_report(store)))
