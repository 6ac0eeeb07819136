"""The data model flows are checked against, built from `entity`, `enum` and `event` declarations.

The standard model lives in `stdlib/schema.flow`; a file being checked may declare more (its own
entities, fields, enums and events), which extend the standard ones.  Channels and purposes are
fixed vocabularies of the engine; markets are the ones the standard policies know.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import attrs

from . import ast
from .parser import parse_source
from .resources import data_dir
from .source import SourceFile

PURPOSES = ("transactional", "service", "review", "marketing")
CHANNELS = ("line", "email", "sms", "whatsapp", "amazon", "webhook")
MARKETS = ("JP", "US", "EU", "DE", "FR", "IT", "ES", "NL", "CA", "GB")
FUNCTIONS = ("count",)
#: Rates a `pause flow when …` rule may watch, measured per flow over the rule's period.
METRICS = ("unsubscribe_rate", "complaint_rate", "bounce_rate", "failure_rate", "reply_rate")
BUILTIN_TYPES = ("bool", "int", "decimal", "money", "string", "timestamp", "date", "duration",
                 "time", "percent", "list")


@attrs.frozen
class Schema:
    entities: dict[str, ast.Entity]
    enums: dict[str, ast.EnumDecl]
    events: dict[str, ast.EventDecl]

    def field(self, entity: str, name: str) -> ast.Field | None:
        decl = self.entities.get(entity)
        if decl is None:
            return None
        return next((f for f in decl.fields if f.name.value == name), None)

    def enum_of_value(self, value: str) -> list[ast.EnumDecl]:
        return [e for e in self.enums.values() if any(v.value == value for v in e.values)]

    @property
    def enum_values(self) -> list[str]:
        return list(dict.fromkeys(v.value for e in self.enums.values() for v in e.values))

    def extended(self, declarations: Iterable[ast.Node]) -> Schema:
        """This schema plus the declarations of one more file (a later field of the same name wins)."""
        entities, enums, events = dict(self.entities), dict(self.enums), dict(self.events)
        for decl in declarations:
            if isinstance(decl, ast.Entity):
                base = entities.get(decl.name.value)
                if base is not None:
                    own = {f.name.value for f in decl.fields}
                    fields = tuple(f for f in base.fields if f.name.value not in own) + decl.fields
                    decl = attrs.evolve(decl, fields=fields)
                entities[decl.name.value] = decl
            elif isinstance(decl, ast.EnumDecl):
                enums[decl.name.value] = decl
            elif isinstance(decl, ast.EventDecl):
                events[decl.name.value] = decl
        return Schema(entities, enums, events)


EMPTY = Schema({}, {}, {})


@cache
def standard_schema() -> Schema:
    """The schema declared in `stdlib/schema.flow`."""
    path = data_dir("stdlib") / "schema.flow"
    source = SourceFile("stdlib/schema.flow", path.read_text(encoding="utf-8"))
    result = parse_source(source)
    if not result.ok or result.module is None:
        raise RuntimeError("the standard schema does not parse: " + result.diagnostics[0].message)
    return EMPTY.extended(result.module.declarations + _builtin_enums(source))


def _builtin_enums(source: SourceFile) -> tuple[ast.EnumDecl, ...]:
    """Channels and purposes as enums, so `order.country == line` is a type error naming both.

    Their names are keywords of the language, so they cannot be declared in a `.flow` file.
    """
    from .source import Span

    span = Span(source, 0, 0)

    def enum(name: str, values: tuple[str, ...]) -> ast.EnumDecl:
        return ast.EnumDecl(span=span, name=ast.Name(span=span, value=name), doc=None,
                            values=tuple(ast.Name(span=span, value=v) for v in values))

    return (enum("channel", CHANNELS), enum("purpose", PURPOSES))
