"""A straightforward per-row evaluator of guard expressions, written for the tests.

It reads plain Python dicts (one order, its customer, its review, every event) and follows
SPEC.md's rules directly: missing values make a condition false, money compares only within one
currency and keeps it through arithmetic, a bare event is true when it happened at or before now.
An overflow or a division by zero is missing too (Python's integers never overflow; the values
the tests draw stay far from the SQL limits).  The SQL compiler must agree with it on every input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal

from linkstar_dsl import ast

MISSING = None


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


def money(amount, currency):
    """A money value, or missing when its amount or its currency is."""
    return MISSING if amount is None or currency is None else Money(amount, currency)


class Reference:
    def __init__(self, schema, now, order, customer, review, order_events, customer_events, all_orders,
                 after=None):
        self.schema, self.now = schema, now
        self.records = {"order": order, "customer": customer, "review": review or {}}
        self.order_events = order_events  # [(order_id, event, at)]
        self.customer_events = customer_events  # [(customer_id, event, at)]
        self.all_orders = all_orders
        #: For `unless` and `exit when`: an event counts only if it happened after this time.
        self.after = after

    def truth(self, expr) -> bool:
        return self.value(expr) is True

    def value(self, e):
        kind = type(e).__name__
        return getattr(self, "_" + kind)(e)

    def _IntLit(self, e):
        return e.value

    def _DecimalLit(self, e):
        return e.value

    def _PercentLit(self, e):
        return e.value / Decimal(100)

    def _StringLit(self, e):
        return e.value

    def _BoolLit(self, e):
        return e.value

    def _DurationLit(self, e):
        return timedelta(seconds=e.seconds)

    def _MoneyLit(self, e):
        return Money(e.amount, e.currency)

    def _TimeLit(self, e):
        return time(e.hour, e.minute)

    def _Path(self, e):
        head = e.parts[0].value
        if head in self.records and len(e.parts) == 2:
            record, name = self.records[head], e.parts[1].value
            field = self.schema.field(head, name)
            if field is not None and field.type.name.value == "money":
                return money(record.get(name), record.get(f"{name}_currency"))
            return record.get(name)
        if head in self.schema.events:
            return self._happened(head, None)
        return head  # an enum value

    def _happened(self, event, within):
        subject = self.schema.events[event].subject.value
        if self.after is not None and event == "ordered":
            # After the trigger, `ordered` means the customer placed another order (SPEC.md §3.5).
            mine = {o["id"] for o in self.all_orders if o["customer_id"] == self.records["customer"]["id"]}
            times = [at for oid, ev, at in self.order_events if oid in mine and ev == event]
        elif subject == "order":
            times = [at for oid, ev, at in self.order_events if oid == self.records["order"]["id"] and ev == event]
        else:
            times = [at for cid, ev, at in self.customer_events if cid == self.records["customer"]["id"] and ev == event]
        return any(at <= self.now and (within is None or at > self.now - within)
                   and (self.after is None or at > self.after) for at in times)

    def _Not(self, e):
        return not (self.value(e.operand) is True)

    def _BoolOp(self, e):
        values = [self.value(o) is True for o in e.operands]
        return all(values) if e.op == "and" else any(values)

    def _Compare(self, e):
        left, right = self.value(e.left), self.value(e.right)
        if left is None or right is None:
            return MISSING
        if isinstance(left, Money):
            same = left.currency == right.currency
            if e.op == "!=":
                return left.amount != right.amount or not same
            return _cmp(e.op, left.amount, right.amount) and same
        return _cmp(e.op, left, right)

    def _Member(self, e):
        item = self.value(e.item)
        container = [self.value(i) for i in e.container.items] if isinstance(e.container, ast.ListExpr) \
            else self.value(e.container)
        if item is None or container is None:
            result = MISSING
        else:
            result = item in container
        if e.negated:
            return not (result is True)
        return result

    def _Presence(self, e):
        present = self.value(e.operand) is not None
        return not present if e.missing else present

    def _Within(self, e):
        return self._happened(e.operand.dotted, timedelta(seconds=e.duration.seconds))

    def _Call(self, e):
        arg = e.args[0]
        within = timedelta(seconds=arg.duration.seconds) if isinstance(arg, ast.Within) else None
        event = (arg.operand if isinstance(arg, ast.Within) else arg).dotted
        subject = self.schema.events[event].subject.value
        cid = self.records["customer"]["id"]
        if subject == "order":
            mine = {o["id"] for o in self.all_orders if o["customer_id"] == cid}
            times = [at for oid, ev, at in self.order_events if oid in mine and ev == event]
        else:
            times = [at for c, ev, at in self.customer_events if c == cid and ev == event]
        return sum(1 for at in times if at <= self.now and (within is None or at > self.now - within))

    def _Arith(self, e):
        left, right = self.value(e.left), self.value(e.right)
        if left is None or right is None or (e.op == "/" and right == 0):
            return MISSING
        if isinstance(left, Money) and isinstance(right, Money):
            if left.currency != right.currency:
                return MISSING  # no exchange rates: a sum across currencies is not an amount
            return Money(_arith(e.op, left.amount, right.amount), left.currency)
        if isinstance(left, Money):
            return Money(_arith(e.op, left.amount, right), left.currency)
        if isinstance(right, Money):
            return Money(_arith(e.op, left, right.amount), right.currency)
        return _arith(e.op, left, right)

    def _Negate(self, e):
        v = self.value(e.operand)
        if v is None or e.sign == "+":
            return v
        return Money(-v.amount, v.currency) if isinstance(v, Money) else -v


def _arith(op, a, b):
    if isinstance(a, float) != isinstance(b, float):  # an int division met an amount: as SQL, in floats
        a, b = float(a), float(b)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b}[op]()


def _cmp(op, a, b):
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
