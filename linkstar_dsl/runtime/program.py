"""Compiling flow files into a `Program`: the checked, planned flows the runtime executes.

`compile_paths` reads `.flow` files (or folders of them), checks each one, and plans every flow;
`compile_text` does the same for source held in memory.  A flow with errors is never planned:
`CompileError` carries the reports, and `str()` of it is the same text `linkstar check` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from ..compiler.plan import FlowPlan


class CompileError(Exception):
    """The flows did not compile; `reports` holds every file's diagnostics."""

    def __init__(self, message: str, reports: Sequence = ()) -> None:
        super().__init__(message)
        self.reports = tuple(reports)


@attrs.frozen
class Program:
    """Planned flows, the schema they were checked against, and where each came from."""

    plans: tuple[FlowPlan, ...]
    schema: object
    #: flow name → the file it was written in (None for source compiled from text)
    origins: dict = attrs.field(factory=dict)
    #: every file's report, warnings included
    reports: tuple = ()

    def plan(self, name: str) -> FlowPlan:
        for plan in self.plans:
            if plan.name == name:
                return plan
        raise KeyError(name)

    def origin(self, name: str) -> Path | None:
        return self.origins.get(name)


def compile_paths(paths: Iterable[str | Path]) -> Program:
    from ..checker import check_source
    from ..loader import LoadError, collect, load

    try:
        files = collect([str(p) for p in paths])
    except LoadError as exc:
        raise CompileError(str(exc)) from None
    reports, origins = [], []
    for path in files:
        loaded = load(path)
        reports.append(check_source(loaded.source, prior=loaded.diagnostics))
        origins.append(Path(path))
    return _program(reports, origins)


def compile_text(text: str, name: str = "<flow>") -> Program:
    from ..checker import check_source
    from ..source import SourceFile

    return _program([check_source(SourceFile(name, text))], [None])


def _program(reports: list, origins: list) -> Program:
    from ..checker import Env
    from ..compiler.plan import plan_flow
    from ..imports import resolve
    from ..reporters import text

    bad = [r for r in reports if r.errors]
    if bad:
        raise CompileError(text(bad).rstrip("\n"), reports)
    plans, schema, seen, where = [], None, {}, {}
    for report, origin in zip(reports, origins):
        env = Env.for_module(report.module, imported=resolve(report.module).modules)
        schema = env.schema
        for flow in report.module.flows:
            plan = plan_flow(flow, env)
            if plan.name in seen:
                raise CompileError(f"two flows are named {plan.name} ({seen[plan.name]} and {report.source.name})",
                                   reports)
            seen[plan.name] = report.source.name
            where[plan.name] = origin
            plans.append(plan)
    if schema is None:
        from ..schema import standard_schema

        schema = standard_schema()
    return Program(tuple(plans), schema, where, tuple(reports))
