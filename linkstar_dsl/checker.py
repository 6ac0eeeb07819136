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
    if deep is not None:
        diagnostics.append(deep)
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
