"""`simulate --plot` and the readable `simulate` output: the HTML charts, PNG refusal, rich or plain."""

from __future__ import annotations

import io
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from linkstar_dsl import cli, plot, simulate_cli
from linkstar_dsl.gates import Decision
from linkstar_dsl.store import open_store

START = datetime(2026, 10, 19, tzinfo=UTC)  # a Monday
END = START + timedelta(days=7)
SVG = "{http://www.w3.org/2000/svg}"


def decision(flow, day, hour, outcome="send", reason="sent", channel="email"):
    when = START + timedelta(days=day, hours=hour)
    return Decision(flow, 0, f"{flow}:{day}:{hour}:{outcome}", "occ", "o1", "c1", channel, "t", outcome, reason, "",
                    when, when if outcome == "send" else None, "service")


WEEK = ([decision("jp_survey", 0, 10, channel="line")] * 3 + [decision("jp_survey", 0, 11)] * 2
        + [decision("us_review", 2, 15, channel="sms")] * 4 + [decision("us_review", 2, 3, "defer", "window")]
        + [decision("us_review", 4, 9, "skip", "guard")] * 2 + [decision("jp_survey", 6, 9, "skip", "no-channel")])


def charts(page: str) -> list[ET.Element]:
    start = 0
    found = []
    while (at := page.find("<svg", start)) >= 0:
        end = page.index("</svg>", at) + len("</svg>")
        found.append(ET.fromstring(page[at:end]))
        start = end
    return found


def test_html_report_has_one_bar_group_per_day_and_the_names():
    page = plot.html_report(plot.collect(WEEK, START, END))
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    svgs = charts(page)
    assert [s.get("aria-label") for s in svgs] == ["Sends per day, by flow", "Sends per day, by channel",
                                                   "Held back per day, by reason"]
    days = [(START + timedelta(days=i)).date().isoformat() for i in range(7)]
    for svg in svgs:
        groups = svg.findall(f"{SVG}g")
        assert [g.get("data-day") for g in groups] == days
    for name in ("jp_survey", "us_review", "line", "email", "sms", "window (defer)", "guard (skip)",
                 "no-channel (skip)"):
        assert name in page
    assert '<div class="card"><b>9</b>sent</div>' in page


def test_bars_are_stacked_in_proportion():
    svg = charts(plot.html_report(plot.collect(WEEK, START, END)))[0]
    monday, _, wednesday = svg.findall(f"{SVG}g")[:3]
    heights = [float(r.get("height")) for r in monday.findall(f"{SVG}rect")]
    assert len(heights) == 1 and heights[0] == pytest.approx(180 * 5 / 5)  # 5 sends, axis top 5
    (review,) = wednesday.findall(f"{SVG}rect")
    assert float(review.get("height")) == pytest.approx(180 * 4 / 5)
    assert review.find(f"{SVG}title").text.endswith("us_review: 4")
    by_channel = charts(plot.html_report(plot.collect(WEEK, START, END)))[1]
    monday_channels = by_channel.findall(f"{SVG}g")[0].findall(f"{SVG}rect")
    assert sorted(float(r.get("height")) for r in monday_channels) == pytest.approx([180 * 2 / 5, 180 * 3 / 5])


def test_axis_uses_round_steps():
    assert plot._axis(5) == (1, 5)
    assert plot._axis(7) == (2, 8)
    assert plot._axis(41) == (10, 50)
    assert plot._axis(1234) == (500, 1500)


def test_png_needs_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing it now fails
    with pytest.raises(plot.PlotError) as caught:
        plot.check_target(str(tmp_path / "week.png"))
    message = str(caught.value)
    assert "a PNG needs matplotlib, which is not installed" in message
    assert f"--plot {tmp_path / 'week.html'}" in message


def test_unknown_format_and_missing_folder(tmp_path):
    with pytest.raises(plot.PlotError, match="writes an HTML report"):
        plot.check_target(str(tmp_path / "week.pdf"))
    with pytest.raises(plot.PlotError, match="no folder"):
        plot.check_target(str(tmp_path / "nowhere" / "week.html"))


def test_progress_bar_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    class Fake:
        def run(self, start, end, tick, progress=None):
            now = start
            while now < end:
                now += tick
                if progress:
                    progress(now)
            return ["done"]

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    assert simulate_cli._run(Fake(), START, END, timedelta(hours=1)) == ["done"]
    assert "simulating" in err.getvalue() and "168/168" in err.getvalue()
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    simulate_cli._run(Fake(), START, END, timedelta(hours=1))
    assert quiet.getvalue() == ""


FLOW = """flow survey
  purpose service
  market JP
  on delivered + 48h
  via email
  send "survey"
  between 10:00 and 18:00 local
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plot")
    con = open_store(folder / "shop.duckdb")
    for i in range(3):
        con.execute("INSERT INTO customers (id, email, timezone, country) VALUES (?, ?, 'Asia/Tokyo', 'JP')",
                    [f"c{i}", f"c{i}@example.com"])
        con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, "
                    "placed_at) VALUES (?, ?, 'shopify', 'delivered', 'JP', 10, 'JPY', ?)",
                    [f"o{i}", f"c{i}", START - timedelta(days=5)])
        con.execute("INSERT INTO order_events VALUES (?, ?, 'delivered', ?, NULL)",
                    [f"e{i}", f"o{i}", START - timedelta(days=2) + timedelta(hours=1 + 2 * i)])
    con.close()
    (folder / "survey.flow").write_text(FLOW)
    return folder


def run_simulate(shop, *extra, env=None):
    return CliRunner().invoke(cli.main, ["simulate", str(shop / "survey.flow"), "--db", str(shop / "shop.duckdb"),
                                         "--from", "2026-10-19", "--to", "2026-10-21", "--step", "3h", *extra],
                              env=env, catch_exceptions=False)


def test_simulate_plain_when_not_a_terminal_and_plot(shop):
    target = shop / "week.html"
    result = run_simulate(shop, "--plot", str(target))
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["day", "flow", "send", "defer", "skip", "held", "back", "by"]
    assert lines[1].split()[:3] == ["2026-10-19", "survey", "3"]
    assert lines[-1] == "sends by channel: email 3"
    page = target.read_text(encoding="utf-8")
    assert "survey" in page and [g.get("data-day") for g in charts(page)[0].findall(f"{SVG}g")] == [
        "2026-10-19", "2026-10-20"]


def test_simulate_rich_table_on_request_and_never_with_no_color(shop):
    rich = run_simulate(shop, "--color", "always", env={"COLUMNS": "120"})
    assert "\x1b[" in rich.stdout and "┃" in rich.stdout and "sends by channel" in rich.stdout
    plain = run_simulate(shop, env={"NO_COLOR": "1"})
    assert "\x1b[" not in plain.stdout and "┃" not in plain.stdout


def test_simulate_png_refused_before_running(shop, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run_simulate(shop, "--plot", str(shop / "week.png"))
    assert result.exit_code == 2 and result.stdout == ""
    assert "a PNG needs matplotlib" in result.stderr and "week.html" in result.stderr
