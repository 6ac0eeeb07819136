"""Name resolution: every event, field, enum value, channel, purpose and market must exist.

A misspelt name parses fine and would silently never match, so each one is resolved against the
schema (`schema.py`) and an unknown one gets a diagnostic with the nearest known name.  A record
may be declared that no running flow can read (the runtime fetches the order, its customer, its
review and the cart of a cart event for each message): reading one of its fields is refused.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import ast
from ..compiler.sql import ALIASES as READ_RECORDS
from ..diagnostics import Diagnostic, Fix, make
from ..schema import CHANNELS, FUNCTIONS, MARKETS, METRICS, PURPOSES, Schema
from ..suggest import did_you_mean


def _unknown(code: str, name: ast.Name, candidates, what: str, **args) -> Diagnostic:
    guess = did_you_mean(name.value, candidates)
    if guess is not None:
        return make(code, name.span, name=name.value, label=f"did you mean `{guess}`?",
                    help=(f"did you mean `{guess}`?",), fix=Fix(name.span, guess, f"replace with `{guess}`"),
                    **args)
    shown = ", ".join(f"`{c}`" for c in list(candidates)[:12])
    return make(code, name.span, name=name.value, label=f"not a known {what}",
                help=(f"known {what}s: {shown}{', …' if len(list(candidates)) > 12 else ''}",), **args)


def events(module: ast.Module, env) -> Iterator[Diagnostic]:
    schema: Schema = env.schema
    known = list(schema.events)
    for flow in module.flows:
        event = flow.trigger.event
        if event.value not in schema.events:
            yield _unknown("unknown-event", event, known, "event")
    for policy in module.policies:
        for rule in policy.rules:
            if isinstance(rule, ast.ReviewWindowRule) and rule.event.value not in schema.events:
                yield _unknown("unknown-event", rule.event, known, "event")


def vocabulary(module: ast.Module, env) -> Iterator[Diagnostic]:
    for node in ast.nodes(module, ast.Via, ast.Scope, ast.Purpose, ast.ForbidRule, ast.Market):
        if isinstance(node, ast.Via) or isinstance(node, ast.Scope):
            for channel in node.channels:
                if channel.value not in CHANNELS:
                    yield _unknown("unknown-channel", channel, CHANNELS, "channel")
        if isinstance(node, ast.Purpose) or isinstance(node, ast.ForbidRule):
            name = node.name if isinstance(node, ast.Purpose) else node.purpose
            if name.value not in PURPOSES:
                yield _unknown("unknown-purpose", name, PURPOSES, "purpose")
        if isinstance(node, ast.Scope) and node.purpose is not None and node.purpose.value not in (*PURPOSES, "any"):
            yield _unknown("unknown-purpose", node.purpose, (*PURPOSES, "any"), "purpose")
        if isinstance(node, ast.Market):
            for market in node.names:
                if market.value not in MARKETS:
                    yield _unknown("unknown-market", market, MARKETS, "market")


def _metric_paths(module: ast.Module) -> set[int]:
    """Ids of the paths inside `pause flow when …` rules: they name metrics, not order data."""
    return {id(n) for p in module.policies for r in p.rules if isinstance(r, ast.PauseRule)
            for n in r.when.walk() if isinstance(n, ast.Path)}


def metrics(module: ast.Module, env) -> Iterator[Diagnostic]:
    for policy in module.policies:
        for rule in policy.rules:
            if isinstance(rule, ast.PauseRule):
                for node in rule.when.walk():
                    if isinstance(node, ast.Path) and node.dotted not in METRICS:
                        yield _unknown("unknown-metric", node.parts[0], METRICS, "metric")


def expressions(module: ast.Module, env) -> Iterator[Diagnostic]:
    schema: Schema = env.schema
    entity_names = list(schema.entities)
    bare = list(schema.events) + schema.enum_values + entity_names
    skip = _metric_paths(module)
    for node in ast.nodes(module, ast.Call, ast.Path):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Call) and node.func.value not in FUNCTIONS:
            yield _unknown("unknown-function", node.func, FUNCTIONS, "function")
        if not isinstance(node, ast.Path):
            continue
        head = node.parts[0]
        if head.value in schema.entities:
            if len(node.parts) == 1:
                yield make("incomplete-path", node.span, name=head.value,
                           help=(f"name one of its fields, for example `{head.value}."
                                 f"{schema.entities[head.value].fields[0].name.value}`",)
                           if schema.entities[head.value].fields else ())
                continue
            field = node.parts[1]
            fields = [f.name.value for f in schema.entities[head.value].fields]
            if field.value not in fields:
                yield _unknown("unknown-field", field, fields, f"field of `{head.value}`", entity=head.value)
            elif len(node.parts) > 2:
                yield make("not-a-record", node.parts[2].span, name=f"{head.value}.{field.value}",
                           help=("only one level of fields exists: `entity.field`",))
            elif head.value not in READ_RECORDS:
                yield _not_read(head, field)
        elif len(node.parts) > 1:
            yield _unknown("unknown-entity", head, entity_names, "record")
        elif head.value not in schema.events and not schema.enum_of_value(head.value):
            yield _unknown("unknown-name", head, bare, "name")


def _not_read(head: ast.Name, field: ast.Name) -> Diagnostic:
    records = ", ".join(f"`{r}`" for r in READ_RECORDS)
    return make("record-not-read", head.span, name=head.value, records=records,
                help=(("for each message the runtime fetches the order, its customer, its review and the cart "
                       f"of a cart event: declare `{field.value}` on one of them, for example in `entity order`"),))


PASSES = (events, vocabulary, expressions, metrics)
