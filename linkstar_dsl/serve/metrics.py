"""Counters, gauges and histograms, written out in the Prometheus text format (version 0.0.4).

Small on purpose: the service needs labelled counters, a few gauges read at scrape time and two
latency histograms, nothing more.  Label values are escaped as the format asks (backslash, double
quote, line feed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Seconds: a tick or a request is fast, or it is very slow.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: tuple[str, ...], values: tuple, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    kind = "counter"

    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labels = name, help, labels
        self.values: dict[tuple, float] = {}

    def inc(self, *values, by: float = 1) -> None:
        key = tuple(str(v) for v in values)
        self.values[key] = self.values.get(key, 0) + by

    def get(self, *values) -> float:
        return self.values.get(tuple(str(v) for v in values), 0)

    def samples(self) -> Iterable[str]:
        for key in sorted(self.values):
            yield f"{self.name}{_labels(self.labels, key)} {_number(self.values[key])}"


class Gauge:
    """A value read when scraped (`read` returns a number, or label tuples → numbers)."""

    kind = "gauge"

    def __init__(self, name: str, help: str, read: Callable[[], object], labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.read, self.labels = name, help, read, labels

    def samples(self) -> Iterable[str]:
        value = self.read()
        if value is None:
            return
        if isinstance(value, dict):
            for key in sorted(value):
                yield f"{self.name}{_labels(self.labels, key)} {_number(value[key])}"
        else:
            yield f"{self.name} {_number(value)}"


class Histogram:
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: tuple[float, ...] = LATENCY_BUCKETS,
                 labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labels = name, help, labels
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self.series: dict[tuple, list] = {}  # labels → [bucket counts..., sum, count]

    def observe(self, value: float, *labels) -> None:
        key = tuple(str(v) for v in labels)
        series = self.series.setdefault(key, [0] * len(self.buckets) + [0.0, 0])
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                series[i] += 1
        series[-2] += value
        series[-1] += 1

    def count(self, *labels) -> int:
        series = self.series.get(tuple(str(v) for v in labels))
        return series[-1] if series else 0

    def samples(self) -> Iterable[str]:
        for key in sorted(self.series):
            series = self.series[key]
            for bound, count in zip(self.buckets, series):
                le = 'le="' + _number(bound) + '"'
                yield f"{self.name}_bucket{_labels(self.labels, key, le)} {count}"
            yield f"{self.name}_sum{_labels(self.labels, key)} {_number(series[-2])}"
            yield f"{self.name}_count{_labels(self.labels, key)} {series[-1]}"


class Registry:
    def __init__(self) -> None:
        self.metrics: list = []

    def add(self, metric):
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        lines = []
        for metric in self.metrics:
            lines.append(f"# HELP {metric.name} {metric.help}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"


class ServiceMetrics:
    """Every metric `linkstar serve` exposes."""

    def __init__(self) -> None:
        self.registry = Registry()
        add = self.registry.add
        self.decisions = add(Counter("linkstar_decisions_total", "Decisions by flow, outcome and gate reason.",
                                     ("flow", "decision", "reason")))
        self.sends = add(Counter("linkstar_sends_total",
                                 "Messages handed to a channel, by channel and outcome (sent, retryable, "
                                 "permanent, suppress, opted_out).", ("channel", "outcome")))
        self.completions = add(Counter("linkstar_completions_total",
                                       "Claimed sends completed, by how they ended (sent, retry, failed, unknown).",
                                       ("status",)))
        self.requests = add(Counter("linkstar_inbound_requests_total", "Inbound HTTP requests by endpoint and status.",
                                    ("endpoint", "status")))
        self.events = add(Counter("linkstar_inbound_events_total",
                                  "Events received, by endpoint and result (stored, duplicate).",
                                  ("endpoint", "result")))
        self.ticks = add(Counter("linkstar_ticks_total", "Engine ticks by result (ok, error, conflict).",
                                 ("result",)))
        self.tick_seconds = add(Histogram("linkstar_tick_seconds", "How long a tick took, sends included."))
        self.request_seconds = add(Histogram("linkstar_inbound_request_seconds",
                                             "How long an inbound request took, by endpoint.", labels=("endpoint",)))
        self.write_batch = add(Histogram("linkstar_write_batch_size", "Requests committed per store transaction.",
                                         buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)))

    def gauge(self, name: str, help: str, read: Callable[[], object], labels: tuple[str, ...] = ()) -> Gauge:
        return self.registry.add(Gauge(name, help, read, labels))

    def record_tick(self, report, seconds: float) -> None:
        self.tick_seconds.observe(seconds)
        self.ticks.inc("conflict" if report.conflict else "ok")
        for d in report.decisions:
            self.decisions.inc(d.flow, d.decision, d.reason)
        for c in report.completions:
            self.completions.inc(c.status)

    def render(self) -> str:
        return self.registry.render()
