"""`linkstar check` as a library: parse a file, run every pass, collect the diagnostics.

The passes are data: `PASSES` is the tuple of pass functions, run in order on a module that
parsed without errors (a file with syntax errors reports only those, so a half-read flow never
produces false alarms).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from . import ast
from .diagnostics import Diagnostic, Severity, make
from .parser import parse_source
from .passes import compliance, names, structure, template_checks, typecheck
from .policies import PolicySet, standard_policies
from .schema import Schema, standard_schema
from .source import SourceFile, Span

#: Passes over the module alone, then passes that also need the environment (schema, policies):
#: name resolution first; types, compliance and templates only on a module whose names resolve,
#: so one misspelt name yields one diagnostic rather than a cascade.
PASSES = (*structure.PASSES,)
NAME_PASSES = names.PASSES
SCHEMA_PASSES = (*typecheck.PASSES, *compliance.PASSES, *template_checks.PASSES)


@attrs.frozen
class Env:
    """What the passes check a module against: the schema and the policies in force."""

    schema: Schema
    policies: PolicySet

    @classmethod
    def for_module(cls, module: ast.Module, schema: Schema | None = None,
                   policies: PolicySet | None = None, imported: tuple[ast.Module, ...] = ()) -> Env:
        schema = schema or standard_schema()
        policies = policies or standard_policies()
        for other in (*imported, module):
            schema = schema.extended(other.declarations)
            policies = policies.with_user(other)
        return cls(schema, policies)


#: Deeper expressions are refused (see SPEC.md, "Limits"): no real flow nests this far, and the
#: passes that walk expressions recursively must never hit Python's recursion limit.
MAX_NESTING = 64


def nesting_problem(module: ast.Module) -> Diagnostic | None:
    """A diagnostic on the most deeply nested node when it is deeper than `MAX_NESTING`, or None."""
    depth, node = ast.deepest(module)
    if depth <= MAX_NESTING:
        return None
    return make("too-deep", node.span, limit=MAX_NESTING,
                help=("split the condition into several `where` clauses, or name parts of it "
                      "in a house policy",))


#: Further limits (SPEC.md, "Limits"): each bounds the work one file can cause, in the checker and
#: in every tick of the runtime, far above what a real file needs.
MAX_ITEMS = 1_000
MAX_STEPS = 50
MAX_EXPRESSION_SIZE = 2_000
MAX_DURATION_DAYS = 100 * 365


def limit_problems(module: ast.Module) -> list[Diagnostic]:
    """Items, steps, expressions and durations beyond the limits; the passes skip such a file."""
    found: list[Diagnostic] = []
    if len(module.items) > MAX_ITEMS:
        found.append(make("too-large", module.items[MAX_ITEMS].span, what="file", count=f"{len(module.items):,}",
                          parts="items", limit=f"{MAX_ITEMS:,}", help=("split it into several files",)))
    for flow in module.flows:
        if len(flow.steps) > MAX_STEPS:
            found.append(make("too-large", flow.steps[MAX_STEPS].span, what="flow", count=len(flow.steps),
                              parts="steps", limit=MAX_STEPS, help=("split the sequence into several flows",)))
    for root in _expressions(module):
        size = _size(root)
        if size > MAX_EXPRESSION_SIZE:
            found.append(make("too-large", root.span, what="condition", count=f"{size:,}", parts="parts",
                              limit=f"{MAX_EXPRESSION_SIZE:,}",
                              help=("a long list of values belongs in the data: tag the customers or "
                                    "orders, and test the tag",)))
    for duration in ast.nodes(module, ast.DurationLit):
        if duration.seconds > MAX_DURATION_DAYS * 86_400:
            found.append(make("duration-too-long", duration.span, text=duration.span.text,
                              limit="100 years (`100y`)",
                              help=("no send, cooldown or window needs to reach further",)))
    return found


def _expressions(module: ast.Module) -> list[ast.Node]:
    """The top expressions of a module: conditions, `unless`, `exit when`, parameters, pause rules."""
    roots = [n.expr for n in ast.nodes(module, ast.Where)]
    roots += [n.when for n in ast.nodes(module, ast.Exit, ast.PauseRule)]
    roots += [n.unless for n in ast.nodes(module, ast.Trigger) if n.unless is not None]
    roots += [n.value for n in ast.nodes(module, ast.Param)]
    return roots


def _size(root: ast.Node) -> int:
    """Operators, literals, paths and calls in an expression (the names inside a path not counted)."""
    count, stack = 0, [root]
    while stack:
        node = stack.pop()
        count += not isinstance(node, ast.Name)
        stack.extend(node.children())
    return count


@attrs.frozen
class FileReport:
    source: SourceFile
    module: ast.Module | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)


def check_source(source: SourceFile, passes: Iterable = PASSES, prior: Iterable[Diagnostic] = (),
                 schema: Schema | None = None) -> FileReport:
    prior = tuple(prior)
    if any(d.severity is Severity.ERROR for d in prior):
        return FileReport(source, None, prior)
    parsed = parse_source(source)
    diagnostics = list(prior) + list(parsed.diagnostics)
    module = parsed.module
    deep = nesting_problem(module) if parsed.ok and module is not None else None
    over = limit_problems(module) if parsed.ok and module is not None and deep is None else []
    if deep is not None or over:
        diagnostics.extend([deep] if deep is not None else over)
    elif parsed.ok and module is not None:
        if not module.items:
            diagnostics.append(make("empty-file", Span(source, 0, 0),
                                    help=("add a flow, for example `on delivered + 48h via line, email`",)))
        for check in passes:
            diagnostics.extend(check(module))
        from .imports import resolve

        imported = resolve(module)
        diagnostics.extend(imported.diagnostics)
        env = Env.for_module(module, schema, imported=imported.modules)
        resolution = [d for check in NAME_PASSES for d in check(module, env)]
        diagnostics.extend(resolution)
        if not any(d.severity is Severity.ERROR for d in resolution):
            for check in SCHEMA_PASSES:
                diagnostics.extend(check(module, env))
    if module is not None and parsed.ok:
        from .suppressions import apply

        diagnostics = apply(module, diagnostics)
    diagnostics.sort(key=Diagnostic.sort_key)
    return FileReport(source, module, tuple(diagnostics))


def check_text(text: str, name: str = "<input>") -> FileReport:
    return check_source(SourceFile(name, text))
