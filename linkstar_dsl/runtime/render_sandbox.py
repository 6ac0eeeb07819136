"""Jinja2's immutable sandbox, bounded in time and memory.

The sandbox already refuses Python internals (`__class__`, `__globals__`, `mro`, …) and ranges of
more than 100,000 numbers.  It does not stop a template that builds a gigabyte before printing
it (`"x" * 10**9`, `"a"|center(10**9)`, `"{:>999999999}".format(x)`, doubling a string in a
loop) or that loops for hours without printing (`{% for i in range(99999) %}{% for j in
range(99999) %}…`).  `BoundedSandbox` adds, for every render:

* values: a string or list made by `*`, `+`, `~`, `%`, `join`, `replace`, padding and
  format widths is at most `MAX_VALUE` characters (or items), checked before it is built;
  an integer made by `*` or `**` at most `MAX_INT_BITS` bits; a width or count given to a filter
  or a string method at most `MAX_ARGUMENT`;
* work: at most `MAX_LOOP_STEPS` loop iterations in all, and `MAX_SECONDS` of wall time, checked
  at every loop step, operator, call and filter.

A template that goes over is stopped with a `SecurityError`, which the renderer reports as a
render error of that template (a permanent failure of the channel: nothing is sent).  `lipsum`
is removed from the globals: it makes any amount of text from one call.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Iterable, Sized
from datetime import date, timedelta
from decimal import Decimal

from jinja2 import nodes, pass_context
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from .render_values import Duration, Money, Percent, Record

#: The longest string or list a template may build in one step (the output limit, 256 KiB).
MAX_VALUE = 256 * 1024
#: The largest width, count or length a template may pass to a filter or a string method.
MAX_ARGUMENT = 10_000
#: The largest integer a template may compute, in bits (about 1,200 decimal digits).
MAX_INT_BITS = 4096
#: Loop iterations one render may make, in all its loops together.
MAX_LOOP_STEPS = 100_000
#: Wall time one render may take.
MAX_SECONDS = 2.0

_LOOP, _CONCAT = "_linkstar_loop", "_linkstar_concat"
#: A `%` conversion or `{…:…}` format field with a width or precision of six digits or more.
_PRINTF_WIDE = re.compile(r"%[-#0 +]*(?:\(\w*\))?[-#0 +]*(?:\d{6,}|\d*\.\d{6,})")
_FORMAT_WIDE = re.compile(r"\{[^{}]*:[^{}]*\d{6,}[^{}]*\}")
_PADDING = {"ljust", "rjust", "center", "zfill"}
#: What Record's own attributes are: those keep the sandbox's checks.
_RECORD_MEMBERS = frozenset(dir(Record))
#: Field values that are plain data.
_DATA = (str, int, float, Decimal, date, timedelta, type(None), Money, Percent, Duration, Record)
_ABSENT = object()


class Budget:
    """What one render may still spend: loop steps and time."""

    def __init__(self, seconds: float = MAX_SECONDS, steps: int = MAX_LOOP_STEPS) -> None:
        self.deadline = time.monotonic() + seconds
        self.steps = steps

    def tick(self, steps: int = 0) -> None:
        self.steps -= steps
        if self.steps < 0:
            raise SecurityError(f"the template loops more than {MAX_LOOP_STEPS:,} times")
        if time.monotonic() > self.deadline:
            raise SecurityError(f"the template takes longer than {MAX_SECONDS:g} seconds to render")


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("linkstar_render_budget", default=None)


def start_budget() -> contextvars.Token:
    """Give the render about to run a fresh budget; pass the token to `end_budget` after it."""
    return _budget.set(Budget())


def end_budget(token: contextvars.Token) -> None:
    _budget.reset(token)


def _spend(steps: int = 0) -> None:
    budget = _budget.get()
    if budget is not None:  # templates are also compiled (and constants folded) outside a render
        budget.tick(steps)


# ------------------------------------------------------------------------------ size checks


def _length(value) -> int:
    return len(value) if isinstance(value, Sized) else 0


def _refuse_long(size: int, what: str) -> None:
    if size > MAX_VALUE:
        raise SecurityError(f"{what} would make a value of {size:,} characters; at most {MAX_VALUE:,} are allowed")


def _refuse_big_arguments(name: str, args: Iterable, kwargs: dict) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ARGUMENT:
            raise SecurityError(f"`{name}` was given {value:,}; at most {MAX_ARGUMENT:,} is allowed")


def _refuse_wide_format(text) -> None:
    if isinstance(text, str) and (_PRINTF_WIDE.search(text) or _FORMAT_WIDE.search(text)):
        raise SecurityError(f"a format width or precision over {MAX_ARGUMENT:,} is not allowed")


def _refuse_big_replace(text, old, new, count=-1) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = (text.count(old) if old else len(text) + 1)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _refuse_long(len(text) + hits * len(new), "`replace`")


def _refuse_big_join(separator, items) -> None:
    if isinstance(items, (list, tuple, str)):
        _refuse_long(len(separator) * max(0, len(items) - 1) + sum(_length(i) for i in items), "`join`")


def _repeat(left, right, what: str) -> None:
    """`sequence * count` or `count * sequence` within `MAX_VALUE`."""
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
            _refuse_long(len(sequence) * max(count, 0), what)


# ------------------------------------------------------------------------------ the sandbox


class _Guarded(NodeTransformer):
    """Route every loop's iterable and every `~` through the budgeted filters."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP, [], [], None, None, lineno=node.iter.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        node = self.generic_visit(node)
        return nodes.Filter(nodes.List(list(node.nodes), lineno=node.lineno), _CONCAT, [], [], None, None,
                            lineno=node.lineno)


@pass_context
def _loop(context, iterable):
    for item in iterable:
        _spend(1)
        yield item


@pass_context
def _concat(context, parts):
    parts = list(parts)
    _refuse_long(sum(_length(p) if isinstance(p, str) else len(str(p)) for p in parts), "`~`")
    return markup_join(parts) if context.eval_ctx.autoescape else str_join(parts)


def _checked_filter(name: str, filter_):
    """A builtin filter that refuses arguments which would make it build a huge value."""
    lead = 1 if getattr(filter_, "jinja_pass_arg", None) is not None else 0  # context, eval_ctx or environment

    def run(*args, **kwargs):
        _spend()
        value, rest = (args[lead], args[lead + 1:]) if len(args) > lead else (None, ())
        if name == "format":
            _refuse_wide_format(value)
        elif name == "replace":
            _refuse_big_replace(str(value), *rest[:3])
        elif name == "join":
            items = value if isinstance(value, (list, tuple, str)) else list(value or ())
            _refuse_big_join(str(rest[0] if rest else kwargs.get("d", "")), items)
            args = (*args[:lead], items, *rest)
        else:
            _refuse_big_arguments(name, rest, kwargs)
        return filter_(*args, **kwargs)

    if lead:
        run.jinja_pass_arg = filter_.jinja_pass_arg
    return run


#: Builtin filters whose arguments can make them build a huge value.
CHECKED_FILTERS = ("center", "indent", "wordwrap", "truncate", "batch", "slice", "format", "replace", "join",
                   "round")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the bounds of this module."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        for name in CHECKED_FILTERS:
            if name in self.filters:
                self.filters[name] = _checked_filter(name, self.filters[name])
        self.filters[_LOOP] = _loop
        self.filters[_CONCAT] = _concat

    def _parse(self, source, name, filename):
        return _Guarded().visit(super()._parse(source, name, filename))

    def call_binop(self, context, operator, left, right):
        _spend()
        if operator == "*":
            _repeat(left, right, "`*`")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError(f"`*` would make a number of more than {MAX_INT_BITS} bits")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and \
                    max(left.bit_length(), 1) * right > MAX_INT_BITS and abs(left) > 1:
                raise SecurityError(f"`**` would make a number of more than {MAX_INT_BITS} bits")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                _refuse_long(len(left) + len(right), "`+`")
        elif operator == "%":
            _refuse_wide_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        _spend()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name in _PADDING:
                _refuse_big_arguments(name, args, kwargs)
            elif name == "expandtabs":
                size = args[0] if args else kwargs.get("tabsize", 8)
                if isinstance(size, int):
                    _refuse_long(len(owner) + owner.count("\t") * max(size, 0), "`expandtabs`")
            elif name == "replace":
                _refuse_big_replace(owner, *args[:3])
            elif name == "join" and args:
                _refuse_big_join(owner, list(args[0]) if not isinstance(args[0], (list, tuple, str)) else args[0])
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj, attribute):
        # A field of a store row (`order.id`) is data the sandbox's checks have nothing to find
        # in; they run for every other attribute, and for a field holding anything else.
        if type(obj) is Record and attribute not in _RECORD_MEMBERS:
            value = obj.get(attribute, _ABSENT)
            if isinstance(value, _DATA):
                return value
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value):
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _refuse_wide_format(value.__self__)
        return wrapped
