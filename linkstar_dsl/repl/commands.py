"""The `:commands`: load flows, choose an order, move the clock, explain, list, help.

Each command is a function of the session and the text after its name, returning a `Reply`.
`COMMANDS` is the registry the help text and the completion are built from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs

from ..gates import iso
from . import answers, show
from .evaluate import EvaluationError, explain
from .show import Reply
from .state import Session


@attrs.frozen
class Command:
    name: str
    usage: str
    summary: str
    run: Callable[[Session, str], Reply]


def _help(session: Session, arg: str) -> Reply:
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [
        "Type an expression to see its type and value, or a flow to see what it would send:",
        "  order.total > 50 USD and not refunded",
        "  on delivered + 48h where not refunded via line, email",
        "A flow goes on over several lines while they are indented; a blank line ends it.",
        "Tab completes keywords, fields (`order.`), events, channels, templates and commands;",
        "Esc Enter starts a new line; Ctrl-D quits.",
        "",
        "Commands:",
    ]
    lines += [f"  {c.usage:<{width}}  {c.summary}" for c in COMMANDS.values()]
    return Reply("\n".join(lines))


def _quit(session: Session, arg: str) -> Reply:
    return Reply(quit=True)


def _load(session: Session, arg: str) -> Reply:
    return load(session, arg.split())


def load(session: Session, paths: list[str]) -> Reply:
    """Load the flows and declarations of .flow files and folders into the session."""
    from ..loader import LoadError
    from ..reporters import text as text_report
    from ..runtime.program import CompileError, compile_paths
    from ..templates import roots_for

    if not paths:
        return Reply("give a .flow file or a folder of them: `:load examples/`", error=True)
    try:
        program = compile_paths(paths)
    except LoadError as exc:
        return Reply(str(exc), error=True)
    except CompileError as exc:
        bad = [r for r in exc.reports if r.errors]
        return Reply(text_report(bad, color=session.color).rstrip("\n") if bad else str(exc), error=True)
    for report in program.reports:
        if report.module is not None:
            session.schema = session.schema.extended(report.module.declarations)
            for root in roots_for(report.source.name):
                if root not in session.template_roots:
                    session.template_roots.append(root)
    for plan in program.plans:
        session.add_flows([plan], str(program.origin(plan.name)))
    first = Path(paths[0])
    session.home = first if first.is_dir() else first.parent
    warnings = sum(r.warnings for r in program.reports)
    names = ", ".join(p.name for p in program.plans) or "no flows"
    files = len(program.reports)
    note = (f"; {warnings} warning{'s' if warnings != 1 else ''} (`linkstar check` shows them)"
            if warnings else "")
    return Reply(f"loaded {files} file{'s' if files != 1 else ''}: {names}{note}\n"
                 "`:simulate` runs them up to the clock; `:explain` explains the chosen order")


def _order(session: Session, arg: str) -> Reply:
    if not arg:
        return Reply(f"{session.subject_label()}; `:order ID` chooses one")
    if arg in ("-", "none"):
        session.order_id = session.customer_id = None
        return Reply("no order chosen")
    row = session.con.execute(
        "SELECT customer_id, status, total, total_currency, country, marketplace, fulfillment "
        "FROM orders WHERE id = ?", [arg]).fetchone()
    if row is None:
        return _not_found(session, "orders", "order", arg)
    session.order_id, session.customer_id = arg, row[0]
    customer, status, total, currency, country, marketplace, fulfillment = row
    return Reply(f"order {arg}: customer {customer}, {status}, {total} {currency}, {country}, "
                 f"{marketplace} ({fulfillment})")


def _customer(session: Session, arg: str) -> Reply:
    if not arg:
        return Reply(f"{session.subject_label()}; `:customer ID` chooses a customer")
    row = session.con.execute("SELECT country, locale, order_count, timezone FROM customers WHERE id = ?",
                              [arg]).fetchone()
    if row is None:
        return _not_found(session, "customers", "customer", arg)
    session.customer_id, session.order_id = arg, None
    country, locale, orders, zone = row
    return Reply(f"customer {arg}: {country}, {locale}, {zone or 'no time zone'}, {orders} orders; "
                 "values use their latest order")


def _not_found(session: Session, table: str, what: str, arg: str) -> Reply:
    examples = session.ids(table, "", 3)
    hint = f"; ids look like {', '.join(examples)} (Tab completes them)" if examples else ""
    return Reply(f"no {what} `{arg}` in the store{hint}", error=True)


_RELATIVE = re.compile(r"^([+-])(\d+)([mhdwy])$")
_UNITS = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800, "y": 31_536_000}
#: A flow is simulated in one-hour ticks: a longer window would keep the prompt waiting.
MAX_WINDOW = timedelta(days=92)


def _time(session: Session, arg: str) -> Reply:
    if not arg:
        return Reply(f"clock {iso(session.clock)}; `:time 2026-10-01T09:00`, `:time +2d` or `:time now` "
                     "moves it")
    try:
        session.clock = parse_time(arg, session.clock)
    except ValueError as exc:
        return Reply(str(exc), error=True)
    return Reply(f"clock {iso(session.clock)}")


def parse_time(text: str, clock: datetime) -> datetime:
    """An ISO date or date-time (UTC unless an offset is given), `now`, or a step such as `+2d`, `-48h`."""
    text = text.strip()
    if text == "now":
        return datetime.now(UTC).replace(microsecond=0)
    step = _RELATIVE.match(text)
    try:
        if step:
            seconds = int(step.group(2)) * _UNITS[step.group(3)]
            return clock + timedelta(seconds=seconds if step.group(1) == "+" else -seconds)
        value = datetime.fromisoformat(text)
    except OverflowError:
        raise ValueError(f"`{text}` is too far from the clock") from None
    except ValueError:
        raise ValueError(f"`{text}` is not a time such as 2026-10-01, 2026-10-01T09:00, +2d or now") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_window(text: str) -> timedelta:
    match = re.match(r"^(\d+)([mhdwy])$", text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"`{text}` is not a duration such as 12h, 7d or 2w")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_WINDOW.total_seconds():
        raise ValueError(f"`{text}` is longer than the {MAX_WINDOW.days}d a window may be "
                         "(`linkstar simulate` replays longer periods)")
    return timedelta(seconds=seconds)


def _window(session: Session, arg: str) -> Reply:
    if arg:
        try:
            session.window = parse_window(arg)
        except ValueError as exc:
            return Reply(str(exc), error=True)
    return Reply(f"flows are simulated over the {show.duration_text(session.window)} before the clock "
                 f"({iso(session.clock)})")


def _rows(session: Session, arg: str) -> Reply:
    if arg:
        # ASCII digits only (`²` is a digit to str.isdigit, not to int), and never thousands of them
        if not (arg.isascii() and arg.isdigit()) or len(arg) > 9 or int(arg) == 0:
            return Reply(f"`{arg}` is not a number of rows such as 20", error=True)
        session.rows = int(arg)
    return Reply(f"a flow's table shows up to {session.rows} rows")


def _explain(session: Session, arg: str) -> Reply:
    if not session.flows:
        return Reply("no flows to explain yet: type a flow or `:load FILE`", error=True)
    subject = arg or session.subject
    if subject is None:
        return Reply("choose an order first (`:order ID`) or name one: `:explain ID`", error=True)
    try:
        return Reply(explain(session, subject).rstrip("\n"))
    except EvaluationError as exc:
        return Reply(str(exc), error=True)


def _flows(session: Session, arg: str) -> Reply:
    if not session.flows:
        return Reply("no flows yet: type one (`on delivered + 48h via line, email`) or `:load FILE`")
    return Reply("\n".join(show.flow_line(f.plan, f.origin) for f in session.flows.values()))


def _simulate(session: Session, arg: str) -> Reply:
    if not session.flows:
        return Reply("no flows to simulate yet: type a flow or `:load FILE`", error=True)
    if arg:
        if arg not in session.flows:
            from ..suggest import did_you_mean

            guess = did_you_mean(arg, list(session.flows))
            return Reply(f"no flow named {arg}" + (f"; did you mean {guess}?" if guess else ""), error=True)
        return answers.flows(session, [session.flows[arg].plan])
    return answers.flows(session, session.plans())


def _type(session: Session, arg: str) -> Reply:
    if not arg:
        return Reply("give an expression: `:type order.total`", error=True)
    return answers.expression(session, arg, evaluate=False)


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("help", ":help", "this help", _help),
    Command("load", ":load FILE...", "load flows and declarations from .flow files or folders", _load),
    Command("order", ":order [ID | -]", "choose the order expressions are evaluated for (- clears)", _order),
    Command("customer", ":customer [ID]", "choose a customer (values use their latest order)", _customer),
    Command("time", ":time [T | +2d | now]", "show or move the clock (ISO time, UTC unless an offset is given)",
            _time),
    Command("window", ":window [DURATION]", "how far before the clock flows are simulated (default 7d)",
            _window),
    Command("rows", ":rows [N]", "rows shown of a flow's decisions", _rows),
    Command("explain", ":explain [ID]", "every gate of every flow for the chosen (or given) order", _explain),
    Command("flows", ":flows", "the flows typed or loaded so far", _flows),
    Command("simulate", ":simulate [FLOW]", "simulate the flows (or one) up to the clock", _simulate),
    Command("type", ":type EXPR", "the type of an expression, without evaluating it", _type),
    Command("quit", ":quit", "leave (also Ctrl-D)", _quit),
)}
ALIASES = {"q": "quit", "exit": "quit", "h": "help", "?": "help", "sim": "simulate"}


def run(session: Session, text: str) -> Reply:
    """Run one `:command` line."""
    name, _, arg = text.strip()[1:].partition(" ")
    name = ALIASES.get(name, name)
    command = COMMANDS.get(name)
    if command is None:
        from ..suggest import did_you_mean

        guess = did_you_mean(name, list(COMMANDS))
        hint = f"; did you mean `:{guess}`?" if guess else ""
        return Reply(f"unknown command `:{name}`{hint} (`:help` lists them)", error=True)
    return command.run(session, arg.strip())
