"""The answer to an expression (its type and value) and to flows (what they would send, when).

Flows and declarations typed at the prompt are checked as a file would be (`linkstar check`),
against the session's schema; declarations extend it for what is typed next, flows join the
session's flows and are simulated up to the clock at once.
"""

from __future__ import annotations

from datetime import timedelta

from ..gates import iso
from ..source import SourceFile
from . import show
from .evaluate import EvaluationError, counts_over_orders, simulate, value_for_subject
from .inputs import SOURCE_NAME, check_expression, moved
from .show import Reply
from .state import Session


def expression(session: Session, text: str, evaluate: bool = True) -> Reply:
    checked = check_expression(text, session.schema)
    parts = []
    if checked.diagnostics:
        parts.append(show.diagnostics(checked.diagnostics, session.color))
    if not checked.ok:
        return Reply("\n\n".join(parts), error=True)
    t = checked.type
    lines = [f"type   {show.type_text(t, session.schema)}"]
    error = False
    if evaluate:
        try:
            lines.append(_value_line(session, checked.expr, t))
        except EvaluationError as exc:
            lines.append(f"value  (not evaluated: {exc})")
            error = True
    parts.append("\n".join(lines))
    return Reply("\n\n".join(parts), error=error)


def _value_line(session: Session, expr, t) -> str:
    if session.subject is not None:
        value = value_for_subject(session, expr)
        shown = show.value_text(value.value, t, value.currency)
        return f"value  {shown}   ({session.subject_label()} at {iso(session.clock)})"
    if t is not None and t.is_condition:
        return "value  " + show.counts_text(counts_over_orders(session, expr), session.clock) + \
            "; `:order ID` shows one order"
    return "value  choose an order with `:order ID` (or a customer with `:customer ID`) to see it"


def items(session: Session, text: str) -> Reply:
    """Flows, declarations and policies typed at the prompt."""
    from ..checker import Env, check_source
    from ..compiler.plan import plan_flow
    from ..imports import resolve

    # Checked as a file in the session's folder (so its templates are found), shown as `<repl>`.
    written = SourceFile(session.typed_file(), text)
    report = check_source(written, schema=session.schema)
    user = SourceFile(SOURCE_NAME, text)
    shown = [moved(d, written, user, 0) for d in report.diagnostics]
    parts = [show.diagnostics(shown, session.color)] if shown else []
    if report.errors or report.module is None:
        return Reply("\n\n".join(parts), error=True)
    module = report.module
    if module.declarations:
        session.schema = session.schema.extended(module.declarations)
        names = ", ".join(f"{type(d).__name__.replace('Decl', '').lower()} {d.name.value}"
                          for d in module.declarations)
        parts.append(f"declared {names}")
    if module.policies and not module.flows:
        parts.append("policies apply to the flows in the same input or file; `:load` a file that holds both")
    if not module.flows:
        return Reply("\n\n".join(parts))
    env = Env.for_module(module, session.schema, imported=resolve(module).modules)
    plans = [plan_flow(flow, env) for flow in module.flows]
    session.add_flows(plans, "typed")
    reply = flows(session, plans)
    return Reply("\n\n".join([*parts, reply.text]), error=reply.error)


def flows(session: Session, plans) -> Reply:
    """Simulate the flows over the window before the clock; a summary line and a table."""
    try:
        run = simulate(session, plans)
    except EvaluationError as exc:
        return Reply(f"not simulated: {exc}", error=True)
    names = ", ".join(p.name for p in plans) if len(plans) <= 3 else f"{len(plans)} flows"
    step = "" if run.tick == timedelta(hours=1) else f", step {show.duration_text(run.tick)}"
    head = (f"{names}: {iso(run.start)} to {iso(run.end)} "
            f"(window {show.duration_text(session.window)}{step}): {show.decision_summary(run.decisions)}")
    if not run.decisions:
        return Reply(head + "\nnothing came due in the window; `:time` moves the clock, `:window` widens it")
    return Reply(head + "\n" + show.decision_table(run.decisions, session.rows))
