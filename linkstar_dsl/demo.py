"""`linkstar demo`: the whole product on generated data, in one command, on a fresh machine.

1. checks the bundled example flows;
2. generates a deterministic demo data set into a DuckDB store;
3. starts the local provider servers (LINE, WhatsApp, Twilio, SendGrid, SMTP, Amazon, webhook)
   and runs the real runner (`linkstar run`) over the last week of the data, tick by tick: every
   gate, rendering, the channel adapters and the ledger, exactly as in production;
4. prints per flow what was sent, deferred and held back and why, the sends per channel, and what
   each provider server received;
5. explains one decision gate by gate (`explain`).

Nothing leaves the machine: the provider servers listen on loopback only.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

from .checker import check_source
from .loader import load
from .render import render
from .resources import data_dir

WEEK = timedelta(days=7)


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_demo(*, color: bool = False, orders: int = 5_000, seed: int = 42, db: str | None = None,
             step_hours: int = 3) -> int:
    started = time.perf_counter()
    examples = data_dir("examples")
    _say("LinkStar flows demo\n")

    # 1. check
    t0 = time.perf_counter()
    reports = [check_source(*_loaded(path)) for path in sorted(examples.glob("*.flow"))]
    errors = sum(r.errors for r in reports)
    warnings = sum(r.warnings for r in reports)
    flows = sum(len(r.module.flows) for r in reports if r.module)
    _say(f"1. Checked {len(reports)} example files ({flows} flows): {errors} errors, {warnings} warnings "
         f"in {(time.perf_counter() - t0) * 1000:.0f} ms")
    if errors:
        for diag in (d for r in reports for d in r.diagnostics if d.severity.value == "error"):
            _say(render(diag, color=color))
        return 1

    # 2. data
    from .demo_data import DEFAULT_DAYS, DEFAULT_START, generate
    from .store import open_store

    folder = None
    if db is None:
        folder = tempfile.TemporaryDirectory(prefix="linkstar-demo-")
        db = str(Path(folder.name) / "demo.duckdb")
    elif Path(db).exists():
        _say(f"   {db} exists: using the data already in it")
    t0 = time.perf_counter()
    con = open_store(db)
    counts = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    if counts == 0:
        counts = generate(con, orders=orders, seed=seed)
        _say(f"2. Generated demo data (seed {seed}) in {time.perf_counter() - t0:.1f} s: "
             + ", ".join(f"{n:,} {table.replace('_', ' ')}" for table, n in counts.items() if n and table != "ledger"))
    con.close()

    # 3. run the week through the runner and the local provider servers
    import asyncio

    end = DEFAULT_START + timedelta(days=DEFAULT_DAYS)
    start = end - WEEK
    t0 = time.perf_counter()
    from .progress import progress_bar

    with progress_bar("running the week", int(WEEK / timedelta(hours=step_hours)), "ticks") as advance:
        decisions, completions, received = asyncio.run(
            _run_week(examples, db, start, end, timedelta(hours=step_hours), advance))
    sent = [c for c in completions if c.status == "sent"]
    _say(f"3. Ran {start:%Y-%m-%d} to {end:%Y-%m-%d} through the runner (clock step {step_hours}h, every gate, "
         f"templates rendered, sent over HTTP and SMTP to local provider servers) in "
         f"{time.perf_counter() - t0:.1f} s: {len(decisions):,} decisions, {len(sent):,} messages sent\n")
    _say(_per_flow(decisions))
    per_day = Counter(d.send_at.strftime("%m-%d") for d in decisions if d.decision == "send" and d.send_at)
    _say("   sends per day (UTC): " + ", ".join(f"{day} {n:,}" for day, n in sorted(per_day.items())))
    sends = Counter(c.channel for c in sent)
    _say("   sends by channel: " + ", ".join(f"{c} {n:,}" for c, n in sends.most_common()))
    held = Counter(f"{d.decision} ({d.reason})" for d in decisions if d.decision != "send")
    _say("   held back by gate: " + ", ".join(f"{r} {n:,}" for r, n in held.most_common()))
    failed = Counter(c.reason for c in completions if c.status not in ("sent",))
    if failed:
        _say("   after sending: " + ", ".join(f"{r} {n:,}" for r, n in failed.most_common()))
    _say("\n   What each local provider server received (recipients masked):")
    _say("   " + received.rstrip().replace("\n", "\n   "))

    # 4. explain one decision
    from .explain import explain, render as render_trace

    example = _interesting(decisions)
    if example is not None:
        at = example.due_at if example.due_at > start else start
        subject = example.order_id or example.customer_id
        from .simulate import scratch
        from .simulate_cli import load_plans

        plans, schema = load_plans((str(examples),))
        traces = explain(scratch(db), plans, schema, subject, at, example.flow)
        _say(f"\n4. Why {'order ' + example.order_id if example.order_id else 'customer ' + example.customer_id} "
             f"did not get {example.flow} (linkstar explain):\n")
        _say("   " + render_trace(traces[:1], f"order {subject}", at).replace("\n", "\n   ").rstrip())
    _say(f"\nDone in {time.perf_counter() - started:.1f} s.")
    if folder is None:
        _say(f"Try: linkstar simulate examples/ --db {db} --from {start:%Y-%m-%d} --to {end:%Y-%m-%d}")
    else:
        folder.cleanup()
        _say("Keep the data with `linkstar demo --db demo.duckdb`, then try `linkstar simulate` and "
             "`linkstar explain` on it.")
    return 0


async def _run_week(examples, db: str, start, end, step, advance=lambda: None):
    """Tick the runner from `start` to `end` against the local provider servers."""
    from .providers.servers import ProviderServers
    from .runtime.engine import Engine, EngineSettings
    from .runtime.program import compile_paths
    from .runtime.render_context import RenderSettings

    program = compile_paths([examples])
    decisions, completions = [], []
    async with ProviderServers() as servers:
        settings = EngineSettings(runner="demo", lookback=step, auto_pause=None)
        # The local servers are not rate-limited like real accounts (Amazon allows 1 request/s, SMTP relays ~20).
        fast = {name: {"limits": {"per_second": 500, "burst": 50}} for name in ("amazon", "twilio", "whatsapp", "smtp", "sendgrid")}
        async with Engine(program, db, channels=servers.config(**fast), environ=servers.environ(),
                          render_settings=RenderSettings.demo(), settings=settings) as engine:
            now = start + step
            while now <= end:
                report = await engine.tick(now)
                decisions += report.decisions
                completions += report.completions
                advance()
                now += step
        return decisions, completions, servers.report()


def _loaded(path):
    loaded = load(path)
    return loaded.source, (), loaded.diagnostics


def _per_flow(decisions) -> str:
    table: dict[str, Counter] = defaultdict(Counter)
    for d in decisions:
        table[d.flow][d.decision] += 1
        if d.decision != "send":
            table[d.flow][f"{d.decision}:{d.reason}"] += 1
    width = max((len(f) for f in table), default=4)
    lines = [f"   {'flow':<{width}}  {'send':>6}  {'defer':>6}  {'skip':>6}  held back by"]
    for flow in sorted(table):
        c = table[flow]
        why = ", ".join(f"{k.split(':', 1)[1]} {v:,}" + (" (later)" if k.startswith("defer:") else "")
                        for k, v in sorted(c.items(), key=lambda kv: -kv[1]) if ":" in k)
        lines.append(f"   {flow:<{width}}  {c['send']:>6,}  {c['defer']:>6,}  {c['skip']:>6,}  {why}")
    return "\n".join(lines)


def _interesting(decisions):
    """A skipped decision worth explaining: a buyer with no usable channel, else a failed guard."""
    for reason in ("no-channel", "guard", "cooldown"):
        for d in decisions:
            if d.decision == "skip" and d.reason == reason and d.order_id:
                return d
    return None
