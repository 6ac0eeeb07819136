"""What a template is rendered with: the seller's settings and one message's variables.

`RenderSettings` holds what is the same for every message (sender, shop and link settings);
`render_context` builds the variables of one message from the store's rows: `customer`, `order`,
`cart` (and `review`), the flow's `send` parameters as `params`, the sender's identity, the
signed unsubscribe and preference links, the shop's review, survey and tracking links, and the
advertising notice in the customer's language.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from .. import ast
from ..gates import recipient_zone
from . import links
from .render_values import Duration, Money, Percent, as_decimal

#: What a marketing message may have to call itself, per language (`ad_notice`).
AD_NOTICES = {"en": "Advertisement", "ja": "広告", "de": "Werbung", "fr": "Publicité", "es": "Publicidad",
              "it": "Pubblicità", "ko": "광고", "zh": "廣告", "nl": "Advertentie"}
#: How long a message's unsubscribe link keeps working (CAN-SPAM asks for at least 30 days).
DEFAULT_LINK_LIFETIME = timedelta(days=180)


def _url(instance, attribute, value) -> None:
    if value is not None and not (isinstance(value, str) and value.startswith(("https://", "http://"))):
        raise ValueError(f"{attribute.name} must be an http(s) URL, got {value!r}")


def _positive(instance, attribute, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number of at least 1, got {value!r}")


def _secret(instance, attribute, value) -> None:
    if value is not None and len(value.encode() if isinstance(value, str) else value) < links.MIN_SECRET_BYTES:
        raise ValueError(f"the link secret must be at least {links.MIN_SECRET_BYTES} bytes long")


def _lifetime(value) -> timedelta:
    """A link lifetime: a `timedelta`, or a number of days (as a TOML file gives it)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = timedelta(days=value)
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValueError(f"link_lifetime must be a positive number of days, got {value!r}")
    return value


def _text(instance, attribute, value) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{attribute.name} must be a non-empty text")


@attrs.frozen
class RenderSettings:
    """The seller's side of every message.

    `link_secret` signs unsubscribe and preference links; without one (`None`), the public
    `links.DEMO_SECRET` is used, which is only fit for the demo: `uses_demo_secret` says so.
    """

    sender_name: str = attrs.field(validator=_text)
    sender_address: str = attrs.field(validator=_text)
    shop_url: str = attrs.field(validator=_url)
    link_base_url: str | None = attrs.field(default=None, validator=_url)
    link_secret: str | bytes | None = attrs.field(default=None, validator=_secret, repr=False)
    default_locale: str = "en"
    max_sms_segments: int = attrs.field(default=3, validator=_positive)
    support_url: str | None = attrs.field(default=None, validator=_url)
    link_lifetime: timedelta = attrs.field(default=DEFAULT_LINK_LIFETIME, converter=_lifetime)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **fields) -> RenderSettings:
        """Settings with the link secret from `LINKSTAR_LINK_SECRET` unless `fields` give one."""
        if fields.get("link_secret") is None:
            fields["link_secret"] = links.secret_from_env(os.environ if environ is None else environ)
        return cls(**fields)

    @classmethod
    def demo(cls, **fields) -> RenderSettings:
        """Example values for the demo and tests (reserved example domains)."""
        values = {"sender_name": "Sakura Goods", "sender_address": "1-2-3 Example-cho, Chiyoda-ku, Tokyo 100-0001, Japan",
                  "shop_url": "https://shop.example.com", "support_url": "https://shop.example.com/help"}
        return cls(**{**values, **fields})

    @property
    def secret(self) -> str | bytes:
        return self.link_secret if self.link_secret is not None else links.DEMO_SECRET

    @property
    def uses_demo_secret(self) -> bool:
        return self.link_secret is None

    @property
    def links_base(self) -> str:
        return self.link_base_url or self.shop_url


class ParamError(ValueError):
    """A `send` parameter that cannot be handed to a template."""


def render_context(customer: Mapping, order: Mapping | None, cart: Mapping | None, settings: RenderSettings,
                   message_key: str, channel: str, now: datetime, *, params=None,
                   review: Mapping | None = None) -> dict:
    """The variables of one message.

    `customer`, `order`, `cart` and `review` are rows of the store's tables (None when the
    message has no such row).  `params` is the `send` clause's parameters: a mapping of values, or
    the planned `(name, expression)` pairs, whose literals and field paths are evaluated here.
    """
    if not isinstance(customer, Mapping) or not customer.get("id"):
        raise ParamError("a message needs the customer's row, with its id")
    customer_id = str(customer["id"])
    expires = now + settings.link_lifetime
    order_id = str(order["id"]) if order and order.get("id") is not None else None
    shop = settings.shop_url.rstrip("/")
    language = str(customer.get("locale") or settings.default_locale).replace("_", "-").split("-")[0]
    rows = {"customer": customer, "order": order, "cart": cart, "review": review}
    values = template_params(params, rows)
    unsubscribe_url, preferences_url = links.message_links(settings.links_base, settings.secret, message_key,
                                                           customer_id, channel, expires)
    order_path = f"{shop}/orders/{quote(order_id, safe='')}" if order_id else None
    return {
        "customer": dict(customer),
        "order": dict(order) if order is not None else None,
        "cart": dict(cart) if cart is not None else None,
        "review": dict(review) if review is not None else None,
        "params": values,
        "sender_name": settings.sender_name,
        "sender_address": settings.sender_address,
        "support_url": settings.support_url,
        "shop_url": settings.shop_url,
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "review_url": f"{order_path}/review" if order_path else None,
        "survey_url": f"{order_path}/survey" if order_path else None,
        "tracking_url": (order or {}).get("tracking_url"),
        "ad_notice": AD_NOTICES.get(language, AD_NOTICES["en"]),
        "timezone": _zone_name(customer),
        "now": now,
    }


def _zone_name(customer: Mapping) -> str:
    """The recipient's time zone (7.3); the customer's own, when it names one, settles it at once."""
    name = customer.get("timezone")
    if isinstance(name, str) and name:
        known = _zone_key(name)
        if known is not None:
            return known
    return recipient_zone(dict(customer)).key


@functools.lru_cache(maxsize=1024)
def _zone_key(name: str) -> str | None:
    try:
        return ZoneInfo(name).key
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def template_params(params, rows: Mapping[str, Mapping | None]) -> dict:
    """A `send` clause's parameters as template values.

    Accepts a mapping of values (kept as they are) or `(name, expression)` pairs from the plan:
    strings, numbers, money, percentages, durations, field paths (`order.tracking_url`) and
    arithmetic on numbers and money (`order.total * 0.1`) are evaluated; a money field becomes
    `Money` with its currency column.
    """
    if params is None:
        return {}
    items: Iterable = params.items() if isinstance(params, Mapping) else params
    out = {}
    for name, value in items:
        out[str(name)] = _param_value(name, value, rows) if isinstance(value, ast.Node) else value
    return out


def _param_value(name: str, expr: ast.Node, rows: Mapping[str, Mapping | None]):
    if isinstance(expr, (ast.StringLit, ast.IntLit, ast.DecimalLit, ast.BoolLit)):
        return expr.value
    if isinstance(expr, ast.MoneyLit):
        return Money(as_decimal(expr.amount), expr.currency)
    if isinstance(expr, ast.PercentLit):
        return Percent(as_decimal(expr.value))
    if isinstance(expr, ast.DurationLit):
        return Duration(expr.amount, expr.unit)
    if isinstance(expr, ast.Path) and len(expr.parts) == 2 and expr.parts[0].value in rows:
        table, field = expr.parts[0].value, expr.parts[1].value
        row = rows[table]
        if row is None:
            return None
        value = row.get(field)
        currency = row.get(f"{field}_currency")
        if isinstance(currency, str) and isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            return Money(as_decimal(value), currency)
        return value
    if isinstance(expr, ast.Negate):
        value = _param_value(name, expr.operand, rows)
        if value is None or expr.sign == "+":
            return value
        return _arith(name, "-", 0, value)
    if isinstance(expr, ast.Arith):
        left, right = _param_value(name, expr.left, rows), _param_value(name, expr.right, rows)
        if left is None or right is None:
            return None  # a missing field makes the result missing, as in a condition
        return _arith(name, expr.op, left, right)
    raise ParamError(f"parameter `{name}`: only literals, fields such as `order.tracking_url` and arithmetic "
                     f"on numbers and money can be passed to a template")


def _arith(name: str, op: str, left, right):
    """`left op right` over numbers and `Money` (the checker allows no other operands here)."""
    if isinstance(left, Money) or isinstance(right, Money):
        return _money_arith(name, op, left, right)
    if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool) and op != "/":
        return {"+": left + right, "-": left - right, "*": left * right}[op]
    return _number_arith(name, op, as_decimal(left), as_decimal(right))


def _number_arith(name: str, op: str, left: Decimal, right: Decimal) -> Decimal:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        raise ParamError(f"parameter `{name}` divides by zero")
    return left / right


def _money_arith(name: str, op: str, left, right) -> Money:
    if op in "+-":
        if not (isinstance(left, Money) and isinstance(right, Money)):
            left = left if isinstance(left, Money) else Money(as_decimal(left), right.currency)
            right = right if isinstance(right, Money) else Money(as_decimal(right), left.currency)
        if left.currency != right.currency:
            raise ParamError(f"parameter `{name}` adds amounts in {left.currency} and {right.currency}")
        return Money(_number_arith(name, op, left.amount, right.amount), left.currency)
    if isinstance(left, Money) and isinstance(right, Money):
        raise ParamError(f"parameter `{name}` multiplies or divides two amounts of money")
    if isinstance(left, Money):
        return Money(_number_arith(name, op, left.amount, as_decimal(right)), left.currency)
    if op == "/":
        raise ParamError(f"parameter `{name}` divides a number by an amount of money")
    return Money(_number_arith(name, op, as_decimal(left), right.amount), right.currency)
