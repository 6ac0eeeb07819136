"""The abstract syntax tree of .flow files.

One frozen attrs class per construct, each with a `span` that locates it in its source.  Spans
take no part in equality (see `source.Span`), so `parse(fmt(x)) == parse(x)` compares meaning.
Nodes only declare their shape; behaviour lives in the stages that walk them.  Nothing outside
`parser.py` ever sees a Lark tree.
"""

from __future__ import annotations

from decimal import Decimal
from collections import defaultdict
from typing import Iterator, Union

import attrs

from .source import Span

node = attrs.frozen(kw_only=True)

UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    """The names of the fields of a node class that can hold nodes (everything but the span)."""
    names = _CHILD_FIELDS.get(cls)
    if names is None:
        names = tuple(f.name for f in attrs.fields(cls) if f.name != "span")
        _CHILD_FIELDS[cls] = names
    return names


@node
class Node:
    span: Span = attrs.field(repr=False)

    def children(self) -> list[Node]:
        """Direct child nodes, in source order."""
        out: list[Node] = []
        for name in _child_fields(type(self)):
            value = getattr(self, name)
            if isinstance(value, Node):
                out.append(value)
            elif isinstance(value, tuple):
                out.extend(item for item in value if isinstance(item, Node))
        return out

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, depth first, in source order."""
        stack = [self]
        while stack:
            current = stack.pop()
            yield current
            kids = current.children()
            if kids:
                kids.reverse()
                stack.extend(kids)


@node
class Name(Node):
    """An identifier as written: an event, field part, channel, market, purpose or unit."""

    value: str


# ------------------------------------------------------------------------- literals


@node
class IntLit(Node):
    value: int


@node
class DecimalLit(Node):
    value: Decimal


@node
class MoneyLit(Node):
    """`5000 JPY`: an amount with its ISO 4217 currency."""

    amount: Decimal
    currency: str


@node
class DurationLit(Node):
    """`48h`: an amount and a unit among m, h, d, w, y (y = 365 days)."""

    amount: int
    unit: str

    @property
    def seconds(self) -> int:
        return self.amount * UNIT_SECONDS[self.unit]


@node
class PercentLit(Node):
    value: Decimal


@node
class TimeLit(Node):
    """`18:30`: a time of day."""

    hour: int
    minute: int


@node
class StringLit(Node):
    value: str


@node
class BoolLit(Node):
    value: bool


# ---------------------------------------------------------------------- expressions


@node
class Path(Node):
    """A bare name (`refunded`, `FBA`) or a dotted field path (`order.total`)."""

    parts: tuple[Name, ...]

    @property
    def dotted(self) -> str:
        return ".".join(part.value for part in self.parts)


@node
class Call(Node):
    """`count(ordered within 365d)`."""

    func: Name
    args: tuple[Expr, ...]


@node
class ListExpr(Node):
    """`[JP, KR]`."""

    items: tuple[Expr, ...]


@node
class BoolOp(Node):
    """`a and b and c` / `a or b`: an operator with two or more operands."""

    op: str
    operands: tuple[Expr, ...]


@node
class Not(Node):
    operand: Expr


@node
class Compare(Node):
    """`a == b`, `a < b`, …"""

    op: str
    left: Expr
    right: Expr


@node
class Member(Node):
    """`a in b` / `a not in b`."""

    item: Expr
    container: Expr
    negated: bool = False


@node
class Presence(Node):
    """`x is missing` (missing=True) / `x is present` (missing=False)."""

    operand: Expr
    missing: bool


@node
class Within(Node):
    """`refunded within 30d`: the event happened in the last 30 days."""

    operand: Expr
    duration: DurationLit


@node
class Arith(Node):
    """`a + b`, `a - b`, `a * b`, `a / b`."""

    op: str
    left: Expr
    right: Expr


@node
class Negate(Node):
    """`-a` (and `+a`, kept as written)."""

    sign: str
    operand: Expr


Literal = Union[IntLit, DecimalLit, MoneyLit, DurationLit, PercentLit, TimeLit, StringLit, BoolLit]
Expr = Union[Literal, Path, Call, ListExpr, BoolOp, Not, Compare, Member, Presence, Within, Arith, Negate]

# -------------------------------------------------------------------------- clauses


@node
class Offset(Node):
    """`+ 48h` / `- 1d`."""

    sign: str
    duration: DurationLit

    @property
    def seconds(self) -> int:
        return self.duration.seconds if self.sign == "+" else -self.duration.seconds


@node
class AtTime(Node):
    """`at 10:00 local`."""

    time: TimeLit
    local: bool


@node
class Trigger(Node):
    """`on delivered + 48h at 10:00 local unless paid`."""

    event: Name
    offset: Offset | None = None
    at: AtTime | None = None
    unless: Expr | None = None


@node
class Purpose(Node):
    name: Name


@node
class Market(Node):
    names: tuple[Name, ...]


@node
class Where(Node):
    expr: Expr


@node
class Via(Node):
    channels: tuple[Name, ...]


@node
class Param(Node):
    name: Name
    value: Expr


@node
class Send(Node):
    """`send "survey" (coupon = "COMEBACK10")`."""

    template: StringLit
    params: tuple[Param, ...] = ()


@node
class Arm(Node):
    """One arm of a split: `50% send "review_plain"`."""

    percent: PercentLit
    send: Send


@node
class Split(Node):
    arms: tuple[Arm, ...]


@node
class Window(Node):
    """`between 10:00 and 18:00 local`."""

    start: TimeLit
    end: TimeLit
    local: bool


@node
class Cooldown(Node):
    """`cooldown 30d per customer across flows`."""

    duration: DurationLit
    per: Name | None = None
    across: Name | None = None


@node
class Cap(Node):
    """`cap 4 per 30d per customer across flows`."""

    count: IntLit
    window: DurationLit
    per: Name | None = None
    across: Name | None = None


@node
class Expire(Node):
    after: DurationLit


@node
class Exit(Node):
    when: Expr


@node
class Holdout(Node):
    percent: PercentLit


@node
class Once(Node):
    per: Name


@node
class Step(Node):
    """`step + 1h via email send "cart_reminder"`: `via`, `send` and `split` after it belong to it."""

    offset: Offset | None
    clauses: tuple[Clause, ...] = ()


Clause = Union[
    Trigger, Purpose, Market, Where, Via, Send, Split, Window, Cooldown, Cap, Expire, Exit,
    Holdout, Once, Step,
]

#: Clauses that attach to the step before them when a flow has steps.
STEP_CLAUSES = (Via, Send, Split)


@node
class Flow(Node):
    """A flow: an optional `flow NAME "title"` header and its clauses in source order."""

    name: Name | None
    title: StringLit | None
    clauses: tuple[Clause, ...]

    @property
    def trigger(self) -> Trigger:
        return next(c for c in self.clauses if isinstance(c, Trigger))

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(c for c in self.clauses if isinstance(c, Step))

    def find(self, kind: type) -> tuple:
        """Flow-level clauses of one kind, in source order."""
        return tuple(c for c in self.clauses if isinstance(c, kind))

    @property
    def display_name(self) -> str:
        if self.name is not None:
            return self.name.value
        return f"on_{self.trigger.event.value}_line_{self.span.start_line}"


# ------------------------------------------------------------------------- policies


@node
class Scope(Node):
    """Who a policy rule is about: a purpose, channels, or both (`marketing via sms`)."""

    purpose: Name | None
    channels: tuple[Name, ...] = ()


@node
class Requirement(Node):
    """`consent` / `consent(written)`."""

    name: Name
    args: tuple[Name, ...] = ()


@node
class RequiresRule(Node):
    scope: Scope
    requirements: tuple[Requirement, ...]
    cite: StringLit | None = None


@node
class WindowRule(Node):
    """`marketing via sms between 08:00 and 20:00 local in states FL, OK`: with states, the window
    binds only recipients whose shipping state is one of them."""

    scope: Scope
    start: TimeLit
    end: TimeLit
    local: bool
    cite: StringLit | None = None
    states: tuple[Name, ...] = ()


@node
class ReviewWindowRule(Node):
    """`review window 5d..30d after delivered`."""

    scope: Scope
    earliest: DurationLit
    latest: DurationLit
    event: Name
    cite: StringLit | None = None


@node
class OnceRule(Node):
    scope: Scope
    per: Name
    cite: StringLit | None = None


@node
class TemplateRule(Node):
    """`review template forbids incentives, external_links`."""

    scope: Scope
    forbidden: tuple[Name, ...]
    cite: StringLit | None = None


@node
class ForbidRule(Node):
    """`forbid purpose marketing` / `forbid purpose marketing in market US`."""

    purpose: Name
    market: Name | None = None
    cite: StringLit | None = None


@node
class KeepRule(Node):
    """`keep consent 3y`."""

    what: Name
    duration: DurationLit
    cite: StringLit | None = None


@node
class CapRule(Node):
    scope: Scope
    count: IntLit
    window: DurationLit
    per: Name | None = None
    across: Name | None = None
    cite: StringLit | None = None


@node
class PauseRule(Node):
    """`pause flow when unsubscribe_rate > 0.5% over 7d`."""

    when: Expr
    over: DurationLit
    cite: StringLit | None = None


Rule = Union[
    RequiresRule, WindowRule, ReviewWindowRule, OnceRule, TemplateRule, ForbidRule, KeepRule,
    CapRule, PauseRule,
]


@node
class Policy(Node):
    """`policy market US`, `policy channel amazon`, `policy house`."""

    kind: str  # "market" | "channel" | "platform" | "named"
    subject: Name
    title: StringLit | None
    rules: tuple[Rule, ...]


# ------------------------------------------------------------------ schema declarations


@node
class TypeRef(Node):
    """`money`, `string?`, `list[string]`: a type named in a field declaration."""

    name: Name
    argument: TypeRef | None = None
    optional: bool = False


@node
class Field(Node):
    """`total: money "What the buyer paid"`."""

    name: Name
    type: TypeRef
    doc: StringLit | None = None


@node
class Entity(Node):
    """`entity order` and its fields: a record flows can read (`order.total`)."""

    name: Name
    doc: StringLit | None
    fields: tuple[Field, ...]


@node
class EnumDecl(Node):
    """`enum fulfillment: FBA, FBM, merchant`."""

    name: Name
    doc: StringLit | None
    values: tuple[Name, ...]


@node
class EventDecl(Node):
    """`event delivered on order "The carrier confirmed delivery"`."""

    name: Name
    subject: Name
    doc: StringLit | None = None


@node
class Import(Node):
    path: StringLit


Item = Union[Import, Flow, Policy, Entity, EnumDecl, EventDecl]


@attrs.frozen
class Comment:
    """A `#` comment; `own_line` is true when nothing but blanks precede it on its line."""

    span: Span = attrs.field(eq=False)
    text: str
    own_line: bool


@node
class Module(Node):
    """One parsed file: its items in source order and its comments."""

    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = attrs.field(default=(), eq=False)

    @property
    def flows(self) -> tuple[Flow, ...]:
        return tuple(i for i in self.items if isinstance(i, Flow))

    @property
    def policies(self) -> tuple[Policy, ...]:
        return tuple(i for i in self.items if isinstance(i, Policy))

    @property
    def declarations(self) -> tuple[Entity | EnumDecl | EventDecl, ...]:
        return tuple(i for i in self.items if isinstance(i, (Entity, EnumDecl, EventDecl)))


_INDEX: dict[int, tuple[Node, dict, tuple[int, Node]]] = {}


def _indexed(root: Node) -> tuple[dict, tuple[int, Node]]:
    """Nodes below `root` by class, and the deepest node with its depth: one walk per root."""
    entry = _INDEX.get(id(root))
    if entry is None or entry[0] is not root:
        index: dict[type, list[Node]] = defaultdict(list)
        deepest = (0, root)
        stack = [(root, 0)]
        while stack:
            current, depth = stack.pop()
            index[type(current)].append(current)
            if depth > deepest[0]:
                deepest = (depth, current)
            kids = current.children()
            if kids:
                kids.reverse()
                stack.extend((kid, depth + 1) for kid in kids)
        if len(_INDEX) > 32:
            _INDEX.clear()
        entry = _INDEX[id(root)] = (root, index, deepest)
    return entry[1], entry[2]


def deepest(root: Node) -> tuple[int, Node]:
    """(depth, node) of the most deeply nested node below `root`."""
    return _indexed(root)[1]


def nodes(root: Node, *kinds: type) -> list:
    """Every node of the given classes below `root`, in source order.

    The tree is walked once per root and indexed by class, so the checker's passes, which each
    look for a few kinds of node, do not each walk the whole tree again.
    """
    index = _indexed(root)[0]
    if len(kinds) == 1:
        return list(index.get(kinds[0], ()))
    found = [n for kind in kinds for n in index.get(kind, ())]
    found.sort(key=lambda n: n.span.start)
    return found
