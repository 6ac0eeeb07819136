"""The static types of the flow language, and how schema type names map onto them.

A type is a small value: a kind (`int`, `money`, `enum`, `list`, `event`, …), the enum's name for
enums and the element type for lists, and whether the value may be missing.  `UNKNOWN` is the type
of an expression that already failed to check; it is compatible with everything, so one mistake
yields one diagnostic, not a cascade.
"""

from __future__ import annotations

import attrs

from . import ast

NUMERIC = frozenset({"int", "decimal"})
ORDERED = frozenset({"int", "decimal", "money", "timestamp", "date", "duration", "time", "percent", "string"})
SCALARS = ("bool", "int", "decimal", "money", "string", "timestamp", "date", "duration", "time", "percent")


@attrs.frozen
class Type:
    kind: str
    name: str | None = None  # the enum's name
    element: Type | None = None  # a list's element type
    optional: bool = attrs.field(default=False, eq=False)

    def __str__(self) -> str:
        if self.kind == "enum":
            return f"{self.name} (a set of values)"
        if self.kind == "list":
            return f"list[{_short(self.element)}]"
        if self.kind == "event":
            return "event"
        return self.kind

    @property
    def is_unknown(self) -> bool:
        return self.kind == "unknown"

    @property
    def is_condition(self) -> bool:
        return self.kind in ("bool", "event", "unknown")


def _short(t: Type | None) -> str:
    if t is None:
        return "?"
    return t.name if t.kind == "enum" else str(t)


UNKNOWN = Type("unknown")
BOOL = Type("bool")
INT = Type("int")
DECIMAL = Type("decimal")
MONEY = Type("money")
STRING = Type("string")
TIMESTAMP = Type("timestamp")
DURATION = Type("duration")
TIME = Type("time")
PERCENT = Type("percent")
EVENT = Type("event")

LITERAL_TYPES = {
    ast.IntLit: INT, ast.DecimalLit: DECIMAL, ast.MoneyLit: MONEY, ast.DurationLit: DURATION,
    ast.PercentLit: PERCENT, ast.TimeLit: TIME, ast.StringLit: STRING, ast.BoolLit: BOOL,
}


def from_ref(ref: ast.TypeRef, enums) -> Type | None:
    """The type a schema field declares, or None when the name is not a type."""
    name = ref.name.value
    if name == "list":
        element = from_ref(ref.argument, enums) if ref.argument is not None else None
        if element is None:
            return None
        return Type("list", element=element, optional=ref.optional)
    if name in SCALARS:
        return Type(name, optional=ref.optional)
    if name in enums:
        return Type("enum", name=name, optional=ref.optional)
    return None


def comparable(a: Type, b: Type) -> bool:
    if a.is_unknown or b.is_unknown:
        return True
    if a.kind in NUMERIC and b.kind in NUMERIC:
        return True
    if a.kind == "event" or b.kind == "event":
        return {a.kind, b.kind} <= {"event", "bool"}
    return a == b
