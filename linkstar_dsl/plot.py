"""`linkstar simulate --plot FILE`: a week of decisions at a glance, as a self-contained HTML page.

Three stacked bar charts, one bar per day: the sends by flow, the sends by channel, and the
messages held back by reason (deferred or skipped).  The charts are inline SVG with native
tooltips (`<title>`), and the page carries its own styles: no script, no library, nothing to
download, so it opens offline and can be attached to an email.  Below them, the same numbers
as a table.

A `.png` needs matplotlib, which linkstar does not depend on: when it is importable the same
three charts are drawn with it, otherwise the error says to ask for `.html` instead.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import attrs

from .gates import Decision

#: Colour-blind-safe colours (Okabe and Ito), then a few more for long lists.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#555555",
           "#8C564B", "#17BECF", "#BCBD22", "#7F7F7F")
FORMATS = (".html", ".htm", ".png")


class PlotError(Exception):
    """A plot that cannot be written: an unknown format, PNG without matplotlib, a file we cannot write."""


@attrs.frozen
class Series:
    """A stacked bar chart: per day, a count per name."""

    title: str
    unit: str
    names: tuple[str, ...]
    values: dict[date, Counter]


@attrs.frozen
class PlotData:
    start: datetime
    end: datetime
    days: tuple[date, ...]
    charts: tuple[Series, ...]
    totals: Counter  # send / defer / skip


def _day(d: Decision) -> date:
    # the same rule as simulate.timeline: a send counts on the day it goes, the rest on the due day
    when = d.send_at if d.decision == "send" and d.send_at else d.due_at
    return when.date()


def collect(decisions: Iterable[Decision], start: datetime, end: datetime) -> PlotData:
    by_flow: dict[date, Counter] = defaultdict(Counter)
    by_channel: dict[date, Counter] = defaultdict(Counter)
    held: dict[date, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    for d in decisions:
        day = _day(d)
        totals[d.decision] += 1
        if d.decision == "send":
            by_flow[day][d.flow] += 1
            by_channel[day][d.channel or "?"] += 1
        else:
            held[day][f"{d.reason} ({d.decision})"] += 1
    days = set()
    day = start.date()
    last = (end - timedelta(microseconds=1)).date()
    while day <= last:
        days.add(day)
        day += timedelta(days=1)
    days |= set(by_flow) | set(held)

    def names(table: dict[date, Counter]) -> tuple[str, ...]:
        return tuple(sorted({name for counts in table.values() for name in counts}))

    charts = (Series("Sends per day, by flow", "sends", names(by_flow), dict(by_flow)),
              Series("Sends per day, by channel", "sends", names(by_channel), dict(by_channel)),
              Series("Held back per day, by reason", "messages", names(held), dict(held)))
    return PlotData(start, end, tuple(sorted(days)), charts, totals)


def check_target(path: str) -> None:
    """Refuse a format we cannot write before any work is done."""
    suffix = _suffix(path)
    if suffix not in FORMATS:
        raise PlotError(f"{path}: --plot writes an HTML report (.html) or, with matplotlib installed, a .png")
    folder = Path(path).parent
    if not folder.is_dir():
        raise PlotError(f"{path}: cannot be written (no folder {folder})")
    if suffix == ".png" and not matplotlib_available():
        raise PlotError(f"{path}: a PNG needs matplotlib, which is not installed; "
                        f"write the HTML report instead (--plot {_with_suffix(path, '.html')}), "
                        "or install matplotlib (`pip install matplotlib`)")


def write(path: str, decisions: Sequence[Decision], start: datetime, end: datetime) -> None:
    check_target(path)
    data = collect(decisions, start, end)
    try:
        if _suffix(path) == ".png":
            _png(path, data)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(html_report(data))
    except OSError as exc:
        raise PlotError(f"{path}: cannot be written ({exc.strerror or exc})") from None


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _suffix(path: str) -> str:
    dot = path.rfind(".")
    return path[dot:].lower() if dot > max(path.rfind("/"), path.rfind("\\")) else ""


def _with_suffix(path: str, suffix: str) -> str:
    return path[: len(path) - len(_suffix(path))] + suffix


def colours(names: Sequence[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


# -------------------------------------------------------------------------------------- HTML

_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 6px} p.sub{color:#57606a;margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:20px} .legend{display:flex;gap:14px;flex-wrap:wrap;margin:4px 0 0;padding:0}
.legend li{list-style:none} .legend i{display:inline-block;width:11px;height:11px;margin-right:5px;border-radius:2px}
svg text{font-size:11px;fill:#57606a} table{border-collapse:collapse;margin-top:8px}
td,th{border-bottom:1px solid #d0d7de;padding:3px 10px;text-align:right} td:first-child,th:first-child,
td:nth-child(2),th:nth-child(2){text-align:left}
"""


def html_report(data: PlotData) -> str:
    e = html.escape
    period = f"{data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC"
    cards = "".join(f'<div class="card"><b>{data.totals[k]:,}</b>{label}</div>'
                    for k, label in (("send", "sent"), ("defer", "deferred"), ("skip", "skipped")))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>linkstar simulate: {e(period)}</title>", f"<style>{_STYLE}</style></head><body>",
             "<h1>What the flows would do</h1>", f'<p class="sub">linkstar simulate, {e(period)}</p>',
             f'<div class="cards">{cards}</div>']
    for series in data.charts:
        parts.append(f"<h2>{e(series.title)}</h2>")
        if not series.names:
            parts.append(f'<p class="sub">no {e(series.unit)} in this period</p>')
            continue
        parts.append(svg_chart(series, data.days))
        palette = colours(series.names)
        parts.append('<ul class="legend">' + "".join(
            f'<li><i style="background:{palette[n]}"></i>{e(n)} ({sum(c[n] for c in series.values.values()):,})</li>'
            for n in series.names) + "</ul>")
    parts.append(_table(data))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def svg_chart(series: Series, days: Sequence[date]) -> str:
    """Stacked bars, one `<g class="day">` per day, with a y axis of round numbers."""
    e = html.escape
    palette = colours(series.names)
    peak = max([sum(series.values.get(d, Counter()).values()) for d in days] + [1])
    step, top = _axis(peak)
    bar = max(6, min(48, 840 // max(len(days), 1) - 12))
    gap = max(4, bar // 2)
    left, plot_h, bottom = 44, 180, 34
    width = left + len(days) * (bar + gap) + gap
    height = plot_h + bottom + 10
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(series.title)}">')]
    for tick in range(0, top + 1, step):
        y = 10 + plot_h - plot_h * tick / top
        out.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="1"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    for i, day in enumerate(days):
        x = left + gap + i * (bar + gap)
        counts = series.values.get(day, Counter())
        total = sum(counts.values())
        out.append(f'<g class="day" data-day="{day.isoformat()}"><title>{day:%a %Y-%m-%d}: {total:,} '
                   f'{e(series.unit)}</title>')
        y = 10 + plot_h
        for name in series.names:
            n = counts.get(name, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            out.append(f'<rect x="{x}" y="{y:.1f}" width="{bar}" height="{h:.1f}" fill="{palette[name]}">'
                       f"<title>{day:%a %Y-%m-%d} · {e(name)}: {n:,}</title></rect>")
        cx = x + bar / 2
        out.append(f'<text x="{cx:.1f}" y="{plot_h + 24}" text-anchor="middle">{day:%a}</text>'
                   f'<text x="{cx:.1f}" y="{plot_h + 37}" text-anchor="middle">{day:%m-%d}</text></g>')
    out.append("</svg>")
    return "".join(out)


def _axis(peak: int) -> tuple[int, int]:
    """A round step (1, 2 or 5 times a power of ten) giving at most five gridlines, and the top."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if peak / (step * factor) <= 5:
                s = step * factor
                return s, -(-peak // s) * s
        step *= 10


def _table(data: PlotData) -> str:
    e = html.escape
    flows, held = data.charts[0], data.charts[2]
    rows = []
    for day in data.days:
        names = sorted(set(flows.values.get(day, {})))
        if not names and not held.values.get(day):
            continue
        reasons = held.values.get(day, Counter())
        why = ", ".join(f"{e(r)} {n:,}" for r, n in sorted(reasons.items()))
        sends = ", ".join(f"{e(f)} {flows.values[day][f]:,}" for f in names)
        rows.append(f"<tr><td>{day:%a %Y-%m-%d}</td><td>{sends or '-'}</td>"
                    f"<td>{sum(flows.values.get(day, Counter()).values()):,}</td><td>{why or '-'}</td></tr>")
    if not rows:
        return '<p class="sub">no message came due in this period</p>'
    return ("<h2>Day by day</h2><table><tr><th>day</th><th>sends by flow</th><th>sends</th><th>held back</th></tr>"
            + "".join(rows) + "</table>")


# --------------------------------------------------------------------------------------- PNG


def _png(path: str, data: PlotData) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{d:%a}\n{d:%m-%d}" for d in data.days]
    figure, axes = plt.subplots(len(data.charts), 1, figsize=(max(6, len(data.days) * 0.8), 9), squeeze=False)
    for ax, series in zip(axes[:, 0], data.charts):
        palette = colours(series.names)
        base = [0] * len(data.days)
        for name in series.names:
            values = [series.values.get(d, Counter()).get(name, 0) for d in data.days]
            ax.bar(labels, values, bottom=base, label=name, color=palette[name])
            base = [b + v for b, v in zip(base, values)]
        ax.set_title(series.title, loc="left", fontsize=10)
        if series.names:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
