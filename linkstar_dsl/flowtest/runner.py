"""Running one flow test: build its store, replay the clock with the real simulation, and compare
every decision with what the test expects.

Matching: each expectation, in the order written, takes the first decision not yet taken that
fits its selectors (flow, step, order, customer) and its outcome.  Under `strict` (the default)
the last decision of every message (the one that stands at the end of the period) must have been
expected too; deferrals on the way may be listed but need not be.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import attrs
import duckdb

from ..gates import Decision
from ..simulate import Simulation
from .model import Case, Expectation, Suite
from .store import Stores
from .values import show_time


@attrs.frozen
class Made:
    """A decision and the clock of the tick that made it."""

    now: datetime
    decision: Decision


@attrs.frozen
class Failure:
    expectation: Expectation | None  # None: a decision nobody expected
    actual: tuple[Made, ...]
    trace: tuple[str, ...] = ()


@attrs.frozen
class CaseResult:
    suite: Suite
    name: str
    line: int
    status: str  # pass | fail | error
    failures: tuple[Failure, ...] = ()
    made: tuple[Made, ...] = ()
    seconds: float = 0.0
    error: str | None = None
    #: several flows, steps or templates could have made a decision: name them in the report
    labelled: bool = False
    #: the clock's period, shown when a test expected a decision and got none
    period: tuple[datetime, datetime] | None = None


def run_suite(suite: Suite, select: str | None = None, observer=None) -> list[CaseResult]:
    if suite.compile_error is not None:
        return [CaseResult(suite, name, line, "error", error="the flows under test do not compile:\n"
                           + suite.compile_error) for name, line in suite.unrun
                if select is None or select.casefold() in name.casefold()]
    stores = Stores()
    try:
        return [run_case(suite, case, observer, stores) for case in suite.cases
                if select is None or select.casefold() in case.name.casefold()]
    finally:
        stores.close()


def run_case(suite: Suite, case: Case, observer=None, stores: Stores | None = None) -> CaseResult:
    started = time.perf_counter()
    own = stores is None
    stores = stores or Stores()
    try:
        try:
            con = stores.fresh(case.fixtures)
        except duckdb.Error as exc:
            stores.close()  # a half-filled store is not reused
            return CaseResult(suite, case.name, case.line, "error", seconds=time.perf_counter() - started,
                              error=f"the test's data cannot be stored: {str(exc).splitlines()[0]}")
        made = _simulate(con, suite, case)
        failures = [_with_trace(con, suite, case, f) for f in compare(case, made)]
        if observer is not None:
            observer(con, suite, case, made)
    finally:
        if own:
            stores.close()
    labelled = len(case.plans) > 1 or any(len(p.steps) > 1 or len(s.messages) > 1 for p in case.plans
                                          for s in p.steps)
    return CaseResult(suite, case.name, case.line, "fail" if failures else "pass", tuple(failures),
                      tuple(made), time.perf_counter() - started, labelled=labelled,
                      period=(case.start, case.end))


def _simulate(con, suite: Suite, case: Case) -> list[Made]:
    """Every tick of the period through `Simulation.tick`, except runs of ticks with nothing due.

    The test's data says when its occurrences fall due, and each deferral says when it wakes up:
    the clock goes from one such instant to the next.  The ticks in between are not taken on
    trust: the steps' own probe queries must find nothing due in them (else they are halved and
    asked again, down to single ticks).  The ticks stay on the same grid, so the decisions and
    their times are those of a plain tick-by-tick replay.
    """
    simulation = Simulation(con, list(case.plans), suite.program.schema)
    made: list[Made] = []
    step, end = case.step, case.end
    ahead = sorted({t + timedelta(seconds=s.offset) for p in case.plans for s in p.steps
                    for event, _, t in case.fixtures.occurrences if event == p.event})

    def tick(since: datetime) -> None:
        now = min(since + step, end)
        decided = simulation.tick(since, now)
        made.extend(Made(now, d) for d in decided)
        ahead.extend(d.send_at for d in decided if d.decision == "defer" and d.send_at is not None)
        ahead.sort()

    def walk(since: datetime, ticks: int) -> None:
        if ticks == 1:
            tick(since)
        elif _anything_due(con, simulation, since, min(since + ticks * step, end)):
            half = ticks // 2
            walk(since, half)
            walk(since + half * step, ticks - half)

    since = case.start
    while since < end:
        target = next((t for t in ahead if t > since), end)
        ticks = max(1, -(-(min(target, end) - since) // step))  # the tick whose end reaches `target`
        if ticks > 1:
            walk(since, ticks - 1)
            since += (ticks - 1) * step
        tick(since)
        since = min(since + step, end)
    return made


def _anything_due(con, simulation: Simulation, since: datetime, now: datetime) -> bool:
    """Whether any step has something due in (since, now]; True when it cannot be asked."""
    queries = getattr(simulation.due_set, "queries", None)
    if not queries:
        return True
    for (flow, step), query in queries.items():
        if getattr(query, "probe_sql", None) is None:
            return True
        binding = query.bind(now=now, since=since, flow=flow, step=step, probe=True)
        if con.execute(query.probe_sql, binding).fetchone()[0]:
            return True
    return False


# ---------------------------------------------------------------------- comparing


def selects(e: Expectation, d: Decision) -> bool:
    return ((e.flow is None or d.flow == e.flow) and (e.step is None or d.step == e.step)
            and (e.order is None or d.order_id == e.order)
            and (e.customer is None or d.customer_id == e.customer))


def fits(e: Expectation, d: Decision) -> bool:
    if d.decision != e.decision:
        return False
    if e.reason is not None and d.reason != e.reason:
        return False
    if e.channel is not None and d.channel != e.channel:
        return False
    if e.at is not None and d.send_at != e.at:
        return False
    if e.due is not None and d.due_at != e.due:
        return False
    if e.template is not None and d.template != e.template:
        return False
    return e.detail is None or e.detail.casefold() in (d.detail or "").casefold()


def compare(case: Case, made: list[Made]) -> list[Failure]:
    taken: set[int] = set()
    failures = []
    for e in case.expectations:
        chosen = [i for i, m in enumerate(made) if selects(e, m.decision)]
        if e.decision == "nothing":
            chosen = [i for i in chosen if e.due is None or made[i].decision.due_at == e.due]
            if chosen:
                failures.append(Failure(e, tuple(made[i] for i in chosen)))
            continue
        hit = next((i for i in chosen if i not in taken and fits(e, made[i].decision)), None)
        if hit is None:
            failures.append(Failure(e, tuple(made[i] for i in chosen)))
        else:
            taken.add(hit)
    if case.strict:
        shown = {m.decision.key for f in failures for m in f.actual}
        last: dict[str, int] = {}
        for i, m in enumerate(made):
            last[m.decision.key] = i
        for key, i in last.items():
            # A message already shown against an expectation that it missed is not repeated.
            if i not in taken and key not in shown:
                failures.append(Failure(None, tuple(m for m in made if m.decision.key == key)))
    return failures


# ---------------------------------------------------------------------- describing


def describe_expected(e: Expectation, zone) -> str:
    if e.decision == "nothing":
        return f"no message due {show_time(e.due, zone)}" if e.due else "no message at all"
    if e.decision == "send":
        text = "send" + (f" via {e.channel}" if e.channel else "")
        text += f" at {show_time(e.at, zone)}" if e.at else ""
    else:
        text = f"{e.decision} ({e.reason})" + (f" via {e.channel}" if e.channel else "")
        text += f" until {show_time(e.at, zone)}" if e.at else ""
    extras = [f"due {show_time(e.due, zone)}" if e.due else None,
              f"template \"{e.template}\"" if e.template else None,
              f"detail containing \"{e.detail}\"" if e.detail else None]
    extras = [x for x in extras if x]
    return text + (" (" + ", ".join(extras) + ")" if extras else "")


def describe_actual(m: Made, zone, label: bool = False) -> str:
    """One decision as a line; `label` adds its flow, step and template, when they tell it apart."""
    d = m.decision
    if d.decision == "send":
        what = f"send via {d.channel} at {show_time(d.send_at, zone)}"
    elif d.decision == "defer":
        what = f"defer ({d.reason}) until {show_time(d.send_at, zone)}: {d.detail}"
    else:
        what = f"skip ({d.reason}): {d.detail}"
    extra = [f"{d.flow} step {d.step + 1}", f"template \"{d.template}\""] if label else []
    return what + " (" + ", ".join([*extra, f"due {show_time(d.due_at, zone)}"]) + ")"


def subject_of(d: Decision) -> str:
    return f"order {d.order_id}" if d.order_id else f"customer {d.customer_id}"


def _with_trace(con, suite: Suite, case: Case, failure: Failure) -> Failure:
    """The failure with the gates of its order (or customer), as `linkstar explain` shows them."""
    e = failure.expectation
    if failure.actual:
        # The decision most like the one expected: the last of the same kind, else the last.
        same = [m for m in failure.actual if e is not None and m.decision.decision == e.decision]
        pick = (same or list(failure.actual))[-1]
        d = pick.decision
        subject, label = d.order_id or d.customer_id, subject_of(d)
        at, plans, steps = pick.now, [p for p in case.plans if p.name == d.flow], {d.step}
    elif e is not None and (e.order or e.customer):
        subject = e.order or e.customer
        label = f"order {e.order}" if e.order else f"customer {e.customer}"
        at = e.at or e.due or case.end
        plans = [p for p in case.plans if e.flow is None or p.name == e.flow]
        steps = None if e.step is None else {e.step}
    else:
        return failure
    return attrs.evolve(failure, trace=tuple(trace_lines(con, suite, plans, subject, at, steps, label)))


def trace_lines(con, suite: Suite, plans, subject: str, at: datetime, steps=None,
                label: str = "") -> list[str]:
    from ..explain import explain

    label = label or subject
    # The ledger holds every decision of the run by now: take back, until the rollback, those made
    # at or after `at`, so that the gates see what they saw then.
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM ledger WHERE key NOT LIKE 'test:%' "
                    "AND (decision <> 'send' OR send_at >= ?)", [at])
        traces = explain(con, list(plans), suite.program.schema, subject, at)
    finally:
        con.execute("ROLLBACK")
    lines = []
    for t in traces:
        if steps is not None and t.step not in steps:
            continue
        lines.append(f"gates of {t.flow} step {t.step + 1} for {label} at {show_time(at, suite.zone)}: "
                     f"{t.outcome}")
        for c in t.checks:
            mark = "✓" if c.ok else "✗" if c.ok is False else "·"
            lines.append(f"  {mark} {c.gate:<16} {c.detail}")
    if not lines:
        lines.append(f"no occurrence of the trigger for {label} by {show_time(at, suite.zone)}")
    return lines

