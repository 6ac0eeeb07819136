"""Chaos run: the runner against failing providers, killed at random, then every invariant checked.

    python scripts/chaos.py [--minutes 5] [--customers 800] [--seed N] [--workdir DIR]

What happens:

1. A store is generated with CUSTOMERS buyers in four groups, one message due for each: two in
   five in the 20 hours before the start, the others during the run: Japanese buyers on LINE (service),
   US buyers by SMS (service, Twilio: no idempotency key), German buyers by email (marketing,
   SendGrid: no idempotency key; only some have consent, some are suppressed) and buyers reached
   through the signed webhook (service).  Each group's send window is set so that it closes
   (LINE) or opens (SMS) during the run, in the buyers' own time zone.
2. The local provider servers run in this process; a task injects faults into them at random:
   5xx answers, 429 with `Retry-After`, hangs longer than the adapters' timeout, connection
   resets, and the same faults *after* the provider accepted the message (the answer is lost).
3. `linkstar run --every 1s` runs as a subprocess and is SIGKILLed after a random 0.5 to 6
   seconds, again and again; after three runs in ten (`--disturb`) another process revokes
   consents and suppresses buyers, as delivery feedback and imports do, usually while the killed
   runner's last changes are still only in DuckDB's write-ahead log.  For the last part of the
   run the faults stop and the runner runs undisturbed, then is stopped with SIGTERM.
4. The invariants are checked over the ledger and what the servers received:
   no buyer got a message twice; every ledger send is backed by a delivery, and every delivery
   by the ledger (sent, `unknown`, or a retry that remembers its doubtful attempt); no send
   claimed and never finished; every occurrence due before the runner stopped decided (none
   lost); no send outside its window in the buyer's time zone; no marketing send without consent
   at that moment; no send after a suppression.

The figures are printed; the exit code is 1 when an invariant broke.  `run_chaos()` is the same
for tests (tests/test_chaos.py runs it for about half a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from linkstar_dsl.providers import Fault, ProviderServers
from linkstar_dsl.store import open_store, write_ahead_log_left

#: Time zones of the groups, chosen for their distance from UTC.
GROUPS = {
    # channel: (flow, trigger event, country, time zone, purpose)
    "line": ("chaos_line", "delivered", "JP", "Asia/Tokyo", "service"),
    "sms": ("chaos_sms", "shipped", "US", "America/Chicago", "service"),
    "email": ("chaos_offer", "paid", "DE", "Europe/Berlin", "marketing"),
    "webhook": ("chaos_hook", "ordered", "GB", "Europe/London", "service"),
}
SERVER_OF = {"line": "line", "sms": "twilio", "email": "sendgrid", "webhook": "webhook"}
#: How late a delivery may reach the provider after its window closed: the adapters' own retries
#: and timeouts for a message the gates let through in time.
GRACE = timedelta(seconds=90)


# ----------------------------------------------------------------------------------- the plan


@dataclass
class Window:
    start: str
    end: str

    def contains(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        start, end = (int(p[:2]) * 60 + int(p[3:]) for p in (self.start, self.end))
        return start <= minute < end if start < end else (minute >= start or minute < end)


def hhmm(moment: datetime) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}"


def plan_windows(start: datetime, seconds: float) -> dict[str, Window]:
    """Per channel, a window in the group's local time: LINE's closes and SMS's opens mid-run."""
    def local(channel, delta):
        return (start + delta).astimezone(ZoneInfo(GROUPS[channel][3]))

    edge = timedelta(seconds=seconds * 0.3 + 59)  # the first whole minute after 30% of the run
    return {
        "line": Window(hhmm(local("line", -timedelta(hours=3))), hhmm(local("line", edge))),
        "sms": Window(hhmm(local("sms", edge)), hhmm(local("sms", timedelta(hours=6)))),
        "email": Window(hhmm(local("email", -timedelta(hours=2))), hhmm(local("email", timedelta(hours=8)))),
        "webhook": Window("00:00", "23:59"),
    }


def flows_text(windows: dict[str, Window]) -> str:
    parts = []
    for channel, (flow, event, country, _, purpose) in GROUPS.items():
        template = "chaos_offer" if purpose == "marketing" else "chaos_note"
        lines = [f"flow {flow}", f"  purpose {purpose}"]
        if purpose == "marketing":
            lines.append(f"  market {country}")
        lines += [f"  on {event}", "  where order.marketplace != amazon", f"  via {channel}",
                  f'  send "{template}"', f"  between {windows[channel].start} and {windows[channel].end} local",
                  "  expire after 2d"]
        if purpose == "marketing":
            lines.append("  cooldown 30d per customer")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


TEMPLATES = {
    "en/chaos_note.line.j2": "Order {{ order.id }}: thank you, {{ customer.name }}.",
    "en/chaos_note.sms.j2": "Order {{ order.id }} is on its way.",
    "en/chaos_note.webhook.j2": '{"order": {{ order.id|tojson }}, "customer": {{ customer.id|tojson }}}',
    "en/chaos_offer.email.j2": (
        "{% block subject %}A thank-you offer for order {{ order.id }}{% endblock %}\n"
        "{% block text %}Hello {{ customer.name }}, 10% off your next order.\n\n"
        "{{ sender_name }}, {{ sender_address }}\nUnsubscribe: {{ unsubscribe_url }}{% endblock %}\n"),
}


# ----------------------------------------------------------------------------------- the store


@dataclass
class Population:
    addresses: dict[tuple[str, str], str] = field(default_factory=dict)   # (channel, address) → customer
    channel_of: dict[str, str] = field(default_factory=dict)               # customer → channel
    due: dict[str, datetime] = field(default_factory=dict)                 # customer → due time


def make_store(path: Path, rng: random.Random, start: datetime, seconds: float, customers: int) -> Population:
    """Buyers, one order and one due event each; consents and suppressions for the email group."""
    population = Population()
    con = open_store(path)
    channels = list(GROUPS)
    # two in five were due before the start (the runner catches up with them), the rest fall due
    # during the first three quarters of the run
    before, during = timedelta(hours=20), timedelta(seconds=seconds * 0.75)
    for n in range(customers):
        channel = channels[n % len(channels)]
        _, event, country, zone, _ = GROUPS[channel]
        cid, oid = f"c{n:05d}", f"o{n:05d}"
        address = {"line": "U" + f"{n:032x}", "sms": f"+1312555{n:04d}", "email": f"buyer{n}@example.com",
                   "webhook": cid}[channel]
        con.execute("INSERT INTO customers (id, source, name, email, phone, line_user_id, locale, timezone, country) "
                    "VALUES (?, 'shopify', ?, ?, ?, ?, 'en', ?, ?)",
                    [cid, f"Buyer {n}", address if channel == "email" else None,
                     address if channel == "sms" else None, address if channel == "line" else None, zone, country])
        due = start - before * rng.random() if rng.random() < 0.4 else start + during * rng.random()
        con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, "
                    "placed_at) VALUES (?, ?, 'shopify', 'paid', ?, 40, 'EUR', ?)", [oid, cid, country, due])
        con.execute("INSERT INTO order_events VALUES (?, ?, ?, ?, NULL)", [f"e{n:05d}", oid, event, due])
        population.addresses[(channel, address)] = cid
        population.channel_of[cid] = channel
        population.due[cid] = due
        if channel == "email":
            _consent_and_suppression(con, rng, cid, start)
    con.close()
    return population


def _consent_and_suppression(con, rng: random.Random, cid: str, start: datetime) -> None:
    roll = rng.random()
    if roll < 0.7:  # most have consent; some of it was revoked already
        revoked = start - timedelta(hours=1) if roll < 0.1 else None
        con.execute("INSERT INTO consents (customer_id, channel, purpose, level, granted_at, revoked_at, source, "
                    "double_opt_in_at, evidence) VALUES (?, 'email', 'marketing', 'double_opt_in', ?, ?, "
                    "'checkout_checkbox', ?, ?)",
                    [cid, start - timedelta(days=30), revoked, start - timedelta(days=30),
                     json.dumps({"form": "checkout-v3", "ip": "192.0.2.1"})])
    if rng.random() < 0.1:
        con.execute("INSERT INTO suppressions (customer_id, channel, reason, occurred_at, source) "
                    "VALUES (?, ?, 'unsubscribed', ?, 'chaos')", [cid, rng.choice(["email", None]),
                                                                   start - timedelta(hours=2)])


def disturb_store(path: Path, rng: random.Random, population: Population, now: datetime) -> Counter:
    """Between two runs: revoke a few consents and suppress a few buyers, as feedback would.

    After a kill the runner's last changes are usually still in the write-ahead log: this process
    opens the store first then, and `open_store` must leave it whole for the next runner.
    """
    done: Counter = Counter()
    if write_ahead_log_left(path):
        done["disturbances of a store a kill left unclosed"] += 1
    con = open_store(path)
    try:
        email = [c for c, ch in population.channel_of.items() if ch == "email"]
        for cid in rng.sample(email, min(3, len(email))):
            con.execute("UPDATE consents SET revoked_at = ? WHERE customer_id = ? AND revoked_at IS NULL", [now, cid])
            done["consents revoked"] += 1
        for cid in rng.sample(list(population.channel_of), 3):
            channel = rng.choice([population.channel_of[cid], None])
            con.execute("INSERT INTO suppressions (customer_id, channel, reason, occurred_at, source) "
                        "VALUES (?, ?, 'complaint', ?, 'chaos')", [cid, channel, now])
            done["buyers suppressed"] += 1
    finally:
        con.close()
    return done


# ------------------------------------------------------------------------------ the servers


def write_config(path: Path, servers: ProviderServers) -> None:
    options = servers.provider_options()
    limits = ("limits = { per_second = 400, burst = 50, retries = 3, backoff = 0.05, max_backoff = 0.5, "
              "max_wait = 2, breaker_failures = 20, breaker_cooldown = 2 }")
    text = ['[channels]', 'routes = { email = "sendgrid" }']
    for name in ("line", "twilio", "sendgrid", "webhook"):
        text.append(f"[channels.providers.{name}]")
        for key, value in options[name].items():
            text.append(f"{key} = {json.dumps(value)}")
        text += ["timeout = 1.5", limits]
    text += ["[render]", 'sender_name = "Chaos Goods"', 'sender_address = "1 Example Street, Berlin"',
             'shop_url = "https://shop.example.com"']
    path.write_text("\n".join(text) + "\n", encoding="utf-8")


FAULT_KINDS = ["status", "status", "throttle", "hang", "reset", "lost-status", "lost-reset", "lost-hang"]


def random_fault(rng: random.Random) -> tuple[str, Fault]:
    kind = rng.choice(FAULT_KINDS)
    lost = kind.startswith("lost-")
    base = kind.removeprefix("lost-")
    if base == "status":
        fault = Fault(kind="status", status=rng.choice([500, 502, 503]), times=rng.randint(1, 3), deliver=lost)
    elif base == "throttle":
        fault = Fault(kind="throttle", retry_after=1, times=rng.randint(1, 3))
    elif base == "hang":
        fault = Fault(kind="hang", delay=rng.uniform(2.0, 4.0), times=1, deliver=lost)
    else:
        fault = Fault(kind="reset", times=rng.randint(1, 2), deliver=lost)
    return kind, fault


async def inject_faults(servers: ProviderServers, rng: random.Random, stop: asyncio.Event, counts: Counter) -> None:
    targets = [servers.line, servers.twilio, servers.sendgrid, servers.webhook]
    while not stop.is_set():
        server = rng.choice(targets)
        if len(server.faults) < 4:
            kind, fault = random_fault(rng)
            server.inject(fault)
            counts[kind] += 1
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(0.05, 0.3))
        except TimeoutError:
            pass


# ------------------------------------------------------------------------------- the runner


async def start_runner(work: Path, environ: dict) -> asyncio.subprocess.Process:
    log = open(work / "runner.log", "ab")  # noqa: SIM115 - handed to the child, closed by the caller's exit
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linkstar_dsl", "run", "chaos.flow", "--db", "chaos.duckdb", "--config",
        "linkstar.toml", "--every", "1s", "--runner", "chaos", cwd=work, env=environ, stdout=log, stderr=log)


def stop_process(process, sig: int) -> bool:
    """Send `sig`; False when the process had already ended by itself."""
    try:
        process.send_signal(sig)
    except ProcessLookupError:
        return False
    return True


def keep_copy(work: Path, name: str) -> None:
    """The store (and its write-ahead log) as it is now, to look at after a failed start."""
    for suffix in ("", ".wal"):
        source = work / f"chaos.duckdb{suffix}"
        if source.exists():
            shutil.copyfile(source, work / f"{name}{suffix}")


def note_failure(work: Path, process, figures: Counter, failures: list[str]) -> None:
    """A runner that ended by itself with an error: count it, keep its last line and the store it met."""
    if process.returncode in (0, -signal.SIGKILL, -signal.SIGTERM):
        return
    figures["runner exits with an error"] += 1
    lines = (work / "runner.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
    last = next((line for line in reversed(lines) if line.startswith("linkstar:")), lines[-1] if lines else "")
    failures.append(last[:300])
    if len(failures) == 1 and (work / "before-start.duckdb").exists():
        for suffix in ("", ".wal"):
            kept = work / f"before-start.duckdb{suffix}"
            if kept.exists():
                shutil.copyfile(kept, work / f"first-failed-start.duckdb{suffix}")


async def kill_loop(work: Path, environ: dict, rng: random.Random, until: float, population: Population,
                    figures: Counter, failures: list[str], disturb: float, disturbance: random.Random) -> None:
    """Start, SIGKILL, and sometimes write to the store from another process, until `until`.

    `disturbance` decides which kills are followed by such writes and what they are: a random
    generator of their own, so that a seed always disturbs after the same kills.
    """
    while time.monotonic() < until:
        keep_copy(work, "before-start.duckdb")
        process = await start_runner(work, environ)
        figures["runner starts"] += 1
        lifetime = min(rng.uniform(0.5, 6.0), max(0.1, until - time.monotonic()))
        try:
            await asyncio.wait_for(process.wait(), lifetime)
        except TimeoutError:
            if stop_process(process, signal.SIGKILL):
                figures["SIGKILLs"] += 1
        await process.wait()
        note_failure(work, process, figures, failures)
        if disturbance.random() < disturb:
            figures.update(disturb_store(work / "chaos.duckdb", disturbance, population, datetime.now(UTC)))


async def settle(work: Path, environ: dict, seconds: float, figures: Counter, failures: list[str]) -> None:
    """The runner undisturbed, then stopped politely: it finishes what it claimed."""
    keep_copy(work, "before-start.duckdb")
    process = await start_runner(work, environ)
    figures["runner starts"] += 1
    try:
        await asyncio.wait_for(process.wait(), seconds)
    except TimeoutError:
        stop_process(process, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
            figures["runner did not stop on SIGTERM"] += 1
    note_failure(work, process, figures, failures)


# ------------------------------------------------------------------------------- invariants


@dataclass
class Delivery:
    channel: str
    customer: str | None
    at: datetime


@dataclass
class Report:
    figures: Counter
    faults: Counter
    ledger: Counter
    violations: dict[str, list[str]]
    seconds: float
    customers: int

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def text(self) -> str:
        lines = [f"chaos run: {self.seconds:.0f} s, {self.customers} buyers with one message due each"]
        lines.append("runner: " + ", ".join(f"{k} {v}" for k, v in sorted(self.figures.items())))
        lines.append("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) +
                     f" ({sum(self.faults.values())} in all)")
        lines.append("ledger: " + ", ".join(f"{k} {v}" for k, v in sorted(self.ledger.items())))
        for name, found in self.violations.items():
            state = "ok" if not found else f"BROKEN ({len(found)}): " + "; ".join(found[:5])
            lines.append(f"  {name:<44} {state}")
        lines.append("all invariants hold" if self.ok else "SOME INVARIANTS BROKE")
        return "\n".join(lines)


def collect_deliveries(servers: ProviderServers, population: Population, wall_of) -> list[Delivery]:
    found = []
    for channel, server_name in SERVER_OF.items():
        for d in getattr(servers, server_name).deliveries:
            found.append(Delivery(channel, population.addresses.get((channel, d.recipient)), wall_of(d.at)))
    return found


def check_invariants(db: Path, deliveries: list[Delivery], population: Population,
                     windows: dict[str, Window], end: datetime | None = None) -> tuple[Counter, dict[str, list[str]]]:
    """The ledger's counts, and per invariant what breaks it; `end` is when the runner last stopped."""
    con = open_store(db, read_only=True)
    try:
        ledger = con.execute("SELECT customer_id, channel, decision, reason, status, coalesce(attempts, 0), "
                             "json_extract(detail, '$.doubtful') IS NOT NULL FROM ledger").fetchall()
        last_tick = con.execute("SELECT max(last_tick) FROM runner_state").fetchone()[0]
        consents = con.execute("SELECT customer_id, granted_at, revoked_at FROM consents "
                               "WHERE channel = 'email' AND purpose = 'marketing'").fetchall()
        suppressions = con.execute("SELECT customer_id, channel, occurred_at FROM suppressions").fetchall()
    finally:
        con.close()
    counts = Counter(f"{decision}:{reason}:{status}" for _, _, decision, reason, status, _, _ in ledger)
    by_customer = {row[0]: row for row in ledger}
    delivered = Counter(d.customer for d in deliveries)
    # A delivery whose answer was lost is known to the ledger as a deferral that remembers the doubtful
    # attempt: it is sent again under the same key when its time comes, and confirmed then (or, when
    # a gate stops the retry, completed `unknown`).
    awaiting = [c for c in delivered if c in by_customer and by_customer[c][2] == "defer" and by_customer[c][6]]
    counts["delivered, awaiting confirmation"] = len(awaiting)
    violations: dict[str, list[str]] = {
        "no buyer got a message twice": [f"{c} {n} times ({population.channel_of.get(c)})"
                                         for c, n in delivered.items() if n > 1],
        "every delivery reached a known buyer": [f"{d.channel} at {d.at:%H:%M:%S}" for d in deliveries
                                                 if d.customer is None],
        "every ledger send is backed by a delivery": [
            c for c, row in by_customer.items() if row[4] == "sent" and not delivered[c]],
        "every delivery is in the ledger (sent, unknown or tried)": [
            c for c in delivered if c is not None and c not in awaiting
            and by_customer.get(c, (None,) * 7)[4] not in ("sent", "unknown")],
        "no send left claimed and unfinished": [row[0] for row in ledger if row[4] == "claimed"],
        # a tick every second: anything due a few seconds before the runner stopped was looked at
        "every occurrence due before the runner stopped is decided": [
            c for c, due in population.due.items() if c not in by_customer
            and due <= (end - timedelta(seconds=5) if end else last_tick or due - timedelta(seconds=1))],
    }
    zones = {channel: ZoneInfo(spec[3]) for channel, spec in GROUPS.items()}
    violations["no send outside its window (buyer's local time)"] = [
        f"{d.customer} at {d.at.astimezone(zones[d.channel]):%H:%M:%S} outside {windows[d.channel].start}-"
        f"{windows[d.channel].end}" for d in deliveries if d.customer is not None
        and not windows[d.channel].contains(d.at.astimezone(zones[d.channel]))
        and not windows[d.channel].contains((d.at - GRACE).astimezone(zones[d.channel]))]
    granted: dict[str, list] = {}
    for cid, start, end in consents:
        granted.setdefault(cid, []).append((start, end))
    violations["no marketing send without consent"] = [
        f"{d.customer} at {d.at:%H:%M:%S}" for d in deliveries if d.channel == "email" and d.customer is not None
        and not any(s <= d.at and (e is None or e > d.at - GRACE) for s, e in granted.get(d.customer, []))]
    suppressed_at = {}
    for cid, channel, at in suppressions:
        if channel in (None, population.channel_of.get(cid)):
            suppressed_at[cid] = min(at, suppressed_at.get(cid, at))
    violations["no send after a suppression"] = [
        f"{d.customer} at {d.at:%H:%M:%S} (suppressed {suppressed_at[d.customer]:%H:%M:%S})" for d in deliveries
        if d.customer in suppressed_at and d.at - GRACE > suppressed_at[d.customer]]
    return counts, violations


# ------------------------------------------------------------------------------------ the run


async def run_chaos(minutes: float = 5.0, customers: int = 800, seed: int | None = None,
                    workdir: Path | None = None, settle_seconds: float | None = None, disturb: float = 0.3,
                    echo=print) -> Report:
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="linkstar-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    seconds = minutes * 60
    settle_seconds = settle_seconds if settle_seconds is not None else min(30.0, max(8.0, seconds * 0.15))
    start_wall, start_mono = datetime.now(UTC), time.monotonic()
    windows = plan_windows(start_wall, seconds)
    (work / "chaos.flow").write_text(flows_text(windows), encoding="utf-8")
    for name, text in TEMPLATES.items():
        (work / "templates" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "templates" / name).write_text(text, encoding="utf-8")
    population = make_store(work / "chaos.duckdb", rng, start_wall, seconds, customers)
    echo(f"chaos: seed {seed}, {customers} buyers, {minutes:g} min, in {work}")
    figures, faults = Counter(), Counter()
    async with ProviderServers() as servers:
        write_config(work / "linkstar.toml", servers)
        environ = {**os.environ, **servers.environ(), "NO_COLOR": "1"}
        stop = asyncio.Event()
        injector = asyncio.create_task(inject_faults(servers, rng, stop, faults))
        failures: list[str] = []
        await kill_loop(work, environ, rng, start_mono + seconds - settle_seconds, population, figures, failures,
                        disturb, random.Random(seed + 1))
        stop.set()
        await injector
        for server in (servers.line, servers.twilio, servers.sendgrid, servers.webhook):
            server.faults.clear()
        await settle(work, environ, settle_seconds, figures, failures)
        stopped = time.monotonic()
        figures["requests"] = sum(len(getattr(servers, s).received) for s in SERVER_OF.values())

        def wall_of(at: float) -> datetime:
            return start_wall + timedelta(seconds=at - start_mono)

        deliveries = collect_deliveries(servers, population, wall_of)
    figures["deliveries"] = len(deliveries)
    ledger, violations = check_invariants(work / "chaos.duckdb", deliveries, population, windows,
                                          wall_of(stopped))
    violations["the runner always starts and stops cleanly"] = sorted(set(failures))
    report = Report(figures, faults, ledger, violations, time.monotonic() - start_mono, customers)
    echo(report.text())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the run (default 5)")
    parser.add_argument("--customers", type=int, default=800, help="buyers, one message due each (default 800)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the store, flows and log here")
    parser.add_argument("--disturb", type=float, default=0.3,
                        help="chance, after each kill, of revoking consents and suppressing buyers (default 0.3)")
    args = parser.parse_args(argv)
    # the disturber's recoveries of a killed runner's log are counted in the figures instead
    logging.getLogger("linkstar.store").setLevel(logging.ERROR)
    report = asyncio.run(run_chaos(args.minutes, args.customers, args.seed, args.workdir, disturb=args.disturb))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
