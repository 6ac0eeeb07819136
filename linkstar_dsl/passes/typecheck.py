"""Type checking: every expression gets a type, and every mismatch an error that shows both types.

Types come from literals and from the schema (`order.total` is money, a bare event name is an
event, usable as a condition).  A bare enum value (`FBA`) takes its enum from the other side of
the comparison or membership it appears in; a quoted text compared with an enum must be one of
its values.  Names the resolver already rejected have the unknown type and stay silent here.

An amount of money carries its currency beside it, so a list of amounts exists only as the list
after `in` (`order.total in [5 USD, 10 USD]`): elsewhere, and as a declared field, it is refused.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import ast
from ..diagnostics import Diagnostic, make
from ..schema import Schema
from ..types import (BOOL, DURATION, EVENT, INT, LITERAL_TYPES, NUMERIC, ORDERED, STRING,
                     TIMESTAMP, UNKNOWN, Type, comparable, from_ref)


class _Typer:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.diagnostics: list[Diagnostic] = []
        #: The list literals written right after `in`: the only place a list of amounts may be.
        self.after_in: set[int] = set()

    def report(self, code: str, node: ast.Node, **args) -> None:
        self.diagnostics.append(make(code, node.span, **args))

    # ----------------------------------------------------------------- expressions

    def type_of(self, expr, expected: Type | None = None) -> Type:
        method = getattr(self, "_" + type(expr).__name__, None)
        if method is None:
            return LITERAL_TYPES.get(type(expr), UNKNOWN)
        return method(expr, expected)

    def _Path(self, node: ast.Path, expected: Type | None) -> Type:
        head = node.parts[0].value
        schema = self.schema
        if head in schema.entities and len(node.parts) == 2:
            field = schema.field(head, node.parts[1].value)
            if field is None:
                return UNKNOWN
            return from_ref(field.type, schema.enums) or UNKNOWN
        if len(node.parts) != 1:
            return UNKNOWN
        if head in schema.events:
            return EVENT
        owners = schema.enum_of_value(head)
        if expected is not None and expected.kind == "enum":
            if any(e.name.value == expected.name for e in owners):
                return expected
            # A value of another enum: let the comparison report both types.
        if len(owners) == 1:
            return Type("enum", name=owners[0].name.value)
        return UNKNOWN

    def _Call(self, node: ast.Call, expected) -> Type:
        if node.func.value == "count":
            if len(node.args) != 1:
                self.report("wrong-arguments", node, name="count", expected="one event, such as `count(ordered within 365d)`")
                return INT
            arg = node.args[0]
            inner = arg.operand if isinstance(arg, ast.Within) else arg
            t = self.type_of(inner)
            if t.kind not in ("event", "unknown"):
                self.report("not-an-event", inner, found=str(t))
            return INT
        return UNKNOWN

    def _ListExpr(self, node: ast.ListExpr, expected) -> Type:
        element_expected = expected.element if expected is not None and expected.kind == "list" else None
        element: Type | None = None
        for item in node.items:
            t = self.type_of(item, element_expected or element)
            if t.is_unknown:
                continue
            if element is None:
                element = t
            elif not comparable(element, t):
                self.report("type-mismatch", item, left=str(element), right=str(t), what="list items")
        found = Type("list", element=element or UNKNOWN)
        if found.element.kind == "money" and id(node) not in self.after_in:
            self.report("money-list", node, what="this list",
                        help=(("test one amount at a time, or ask whether an amount is one of them: "
                               "`order.total in [5 USD, 10 USD]`"),))
        return found

    def _BoolOp(self, node: ast.BoolOp, expected) -> Type:
        for operand in node.operands:
            self.condition(operand, f"`{node.op}`")
        return BOOL

    def _Not(self, node: ast.Not, expected) -> Type:
        self.condition(node.operand, "`not`")
        return BOOL

    def _Compare(self, node: ast.Compare, expected) -> Type:
        left = self.type_of(node.left)
        right = self.type_of(node.right, left if left.kind == "enum" else None)
        if left.is_unknown and right.kind == "enum":
            left = self.type_of(node.left, right)
        if self._text_against_enum(node.left, left, node.right, right):
            return BOOL
        if not comparable(left, right):
            if {left.kind, right.kind} == {"money"} | ({left.kind, right.kind} & NUMERIC) and \
                    {left.kind, right.kind} & NUMERIC:
                number = node.left if left.kind in NUMERIC else node.right
                self.report("money-without-currency", number, number=number.span.text,
                            help=(f"write the currency after the amount, for example `{number.span.text} JPY`",))
            else:
                self.report("type-mismatch", node, left=str(left), right=str(right), what="`" + node.op + "`")
            return BOOL
        if node.op not in ("==", "!=") and not left.is_unknown and left.kind not in ORDERED:
            self.report("not-ordered", node, op=node.op, type=str(left))
        return BOOL

    def _text_against_enum(self, left_node, left: Type, right_node, right: Type) -> bool:
        """`customer.country == "JP"`: a text compared with an enum must be one of its values."""
        for enum_t, text_node, text_t in ((left, right_node, right), (right, left_node, left)):
            if enum_t.kind == "enum" and text_t == STRING and isinstance(text_node, ast.StringLit):
                values = [v.value for v in self.schema.enums[enum_t.name].values]
                if text_node.value not in values:
                    self.report("not-a-member", text_node, value=text_node.value, enum=enum_t.name,
                                help=(f"values of {enum_t.name}: {', '.join(values)}",))
                return True
        return False

    def _Member(self, node: ast.Member, expected) -> Type:
        self.after_in.add(id(node.container))
        container = self.type_of(node.container)
        if container.kind == "list" and container.element is not None and not container.element.is_unknown:
            item = self.type_of(node.item, container.element)
            if not comparable(item, container.element) and not self._text_against_enum(
                    node.item, item, node.container, container.element):
                self.report("type-mismatch", node, left=str(item), right=str(container), what="`in`")
            return BOOL
        item = self.type_of(node.item)
        if container.kind == "list":
            if isinstance(node.container, ast.ListExpr):
                self._ListExpr(node.container, Type("list", element=item))
            return BOOL
        if not container.is_unknown:
            self.report("not-a-list", node.container, found=str(container))
        return BOOL

    def _Presence(self, node: ast.Presence, expected) -> Type:
        t = self.type_of(node.operand)
        if not t.is_unknown and not t.optional and t.kind != "event":
            self.report("never-missing", node, name=node.operand.span.text,
                        state="missing" if node.missing else "present")
        return BOOL

    def _Within(self, node: ast.Within, expected) -> Type:
        t = self.type_of(node.operand)
        if t.kind not in ("event", "unknown"):
            self.report("not-an-event", node.operand, found=str(t))
        return BOOL

    def _Arith(self, node: ast.Arith, expected) -> Type:
        left, right = self.type_of(node.left), self.type_of(node.right)
        if left.is_unknown or right.is_unknown:
            return UNKNOWN
        result = _arith(node.op, left.kind, right.kind)
        if result is None:
            self.report("bad-operands", node, op=node.op, left=str(left), right=str(right))
            return UNKNOWN
        return result

    def _Negate(self, node: ast.Negate, expected) -> Type:
        t = self.type_of(node.operand)
        if not t.is_unknown and t.kind not in NUMERIC | {"money", "duration", "percent"}:
            self.report("bad-operands", node, op=node.sign, left="", right=str(t))
            return UNKNOWN
        return t

    def param(self, expr) -> None:
        """A `send` parameter: a literal, a field, or arithmetic on numbers and money (7.11)."""
        found = self.type_of(expr)
        if found.is_unknown:
            return
        offending = _not_a_value(expr)
        if offending is None and isinstance(expr, (ast.Arith, ast.Negate)) \
                and found.kind not in NUMERIC | {"money", "percent"}:
            offending = expr
        if offending is not None:
            self.report("param-not-value", offending, found=_param_kind(offending, found),
                        help=(("a parameter is a literal, a field such as `order.total`, or arithmetic on "
                               "numbers and money; conditions and dates are worked out in the template "
                               "from `order`, `customer`, `cart` and `review`"),))

    def condition(self, expr, where: str) -> None:
        t = self.type_of(expr)
        if not t.is_condition:
            self.report("not-a-condition", expr, found=str(t), where=where)


_PARAM_LEAVES = (ast.StringLit, ast.IntLit, ast.DecimalLit, ast.BoolLit, ast.MoneyLit, ast.PercentLit,
                 ast.DurationLit)


def _not_a_value(expr):
    """The first part of a `send` parameter that the runtime cannot work out for a template."""
    if isinstance(expr, _PARAM_LEAVES) or (isinstance(expr, ast.Path) and len(expr.parts) == 2):
        return None
    if isinstance(expr, ast.Negate):
        return _not_a_value(expr.operand)
    if isinstance(expr, ast.Arith):
        return _not_a_value(expr.left) or _not_a_value(expr.right)
    return expr


def _param_kind(node, whole: Type) -> str:
    if isinstance(node, (ast.Arith, ast.Negate)):
        return f"arithmetic giving {whole}"
    if isinstance(node, ast.Call):
        return f"`{node.func.value}(…)`, worked out only in conditions,"
    if isinstance(node, ast.ListExpr):
        return "a list"
    if isinstance(node, ast.Path):
        return f"the bare name `{node.parts[0].value}`"
    if isinstance(node, ast.TimeLit):
        return "a time of day"
    return "a condition"


def holds_money(t: Type | None) -> bool:
    """Whether a list type holds amounts of money, at any depth."""
    return t is not None and t.kind == "list" and (t.element.kind == "money" or holds_money(t.element))


def _arith(op: str, a: str, b: str) -> Type | None:
    if a in NUMERIC and b in NUMERIC:
        return INT if a == b == "int" and op != "/" else Type("decimal")
    if op in "+-":
        if a == b and a in ("duration", "money", "percent"):
            return Type(a)
        if a in ("timestamp", "date") and b == "duration":
            return TIMESTAMP
        if op == "-" and a == b == "timestamp":
            return DURATION
        return None
    if op == "*" and {a, b} & {"duration", "money"} and {a, b} & NUMERIC:
        return Type(({a, b} & {"duration", "money"}).pop())
    if op == "/" and a in ("duration", "money") and b in NUMERIC:
        return Type(a)
    return None


def expressions(module: ast.Module, env) -> Iterator[Diagnostic]:
    schema: Schema = env.schema
    typer = _Typer(schema)
    for node in ast.nodes(module, ast.Where, ast.Exit, ast.Trigger, ast.Param):
        if isinstance(node, ast.Where):
            typer.condition(node.expr, "`where`")
        elif isinstance(node, ast.Exit):
            typer.condition(node.when, "`exit when`")
        elif isinstance(node, ast.Trigger) and node.unless is not None:
            typer.condition(node.unless, "`unless`")
        elif isinstance(node, ast.Param):
            typer.param(node.value)
    yield from typer.diagnostics


def schema_types(module: ast.Module, env) -> Iterator[Diagnostic]:
    schema: Schema = env.schema
    """Every field's declared type must exist; every event's subject must be a record."""
    for decl in module.declarations:
        if isinstance(decl, ast.Entity):
            for field in decl.fields:
                declared = from_ref(field.type, schema.enums)
                if declared is None:
                    yield make("unknown-type", field.type.span, name=field.type.span.text)
                elif holds_money(declared):
                    yield make("money-list", field.type.span, what="this field",
                               help=(("give each amount a field of its own (`money` keeps its currency beside "
                                      "it), or keep the amounts as numbers: `list[decimal]`"),))
        elif isinstance(decl, ast.EventDecl) and decl.subject.value not in schema.entities:
            yield make("unknown-entity", decl.subject.span, name=decl.subject.value)


PASSES = (expressions, schema_types)
