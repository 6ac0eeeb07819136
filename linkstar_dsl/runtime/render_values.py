"""Values as a template shows them: money, percentages, durations, dates, and the store's rows.

Money, percentages and durations print in the language of the message being rendered (Babel,
CLDR data): `￥3,980` in Japanese, `$39.80` in US English, `39,80 €` in German.  Dates and times
print in the recipient's time zone.  The language and zone of the message in progress are held
in `scope` while `Renderer.render` runs; outside a render, values print in English and UTC.

`Record` is a row (`customer`, `order`, `cart`, …) as a template sees it: fields by attribute or
key, money columns (`total` with `total_currency`) joined into `Money`, and a name to say which
field is missing (`order.tracking_url`) when a template asks for one that does not exist.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import attrs
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time, format_timedelta, get_datetime_format
from babel.numbers import format_currency, format_decimal, format_percent

DEFAULT_LOCALE = "en"


@attrs.frozen
class Scope:
    """The message being rendered: its Babel locale and the recipient's time zone."""

    locale: str = DEFAULT_LOCALE
    zone: ZoneInfo = ZoneInfo("UTC")
    #: Every value a `{{ … }}` printed, in order (WhatsApp body parameters), or None.
    printed: list | None = None


scope: contextvars.ContextVar[Scope] = contextvars.ContextVar("linkstar_render_scope", default=Scope())


@functools.lru_cache(maxsize=512)
def babel_locale(language: str, region: str | None = None) -> str:
    """The most specific Babel locale for a message language and the recipient's region.

    `babel_locale("ja", "JP")` is `ja_JP`; a pairing CLDR does not know (`en` in Korea) drops
    the region; an unknown language is English.
    """
    language = language.replace("-", "_")
    candidates = [language]
    if region and "_" not in language:
        candidates.insert(0, f"{language}_{region.upper()}")
    for candidate in candidates:
        try:
            return str(Locale.parse(candidate))
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    return DEFAULT_LOCALE


class ValueFormatError(ValueError):
    """A value a filter cannot format (not a number, an unknown currency, …)."""


@attrs.frozen
class Money:
    """An amount in a currency; prints in the locale of the message being rendered."""

    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


@attrs.frozen
class Percent:
    """A percentage as written in a flow (`10%` is `Percent(Decimal("10"))`)."""

    value: Decimal

    def __str__(self) -> str:
        return format_percent(self.value / 100, locale=scope.get().locale, decimal_quantization=False)


#: A flow's duration units and the Babel unit each one is shown in.
_DURATION_UNITS = {"m": ("minute", 60), "h": ("hour", 3600), "d": ("day", 86400), "w": ("week", 604800),
                   "y": ("year", 365 * 86400)}


_NO_SPACE_BEFORE_UNIT = frozenset({"ja", "zh"})
_SPACE_BEFORE_CJK = re.compile(r"(\d)[ \u00a0\u202f]+(?=[\u3000-\u9fff])")


@attrs.frozen
class Duration:
    """A duration as written in a flow (`14d`); prints in its own unit: `14 days`, `14 Tage`."""

    amount: int
    unit: str

    def __str__(self) -> str:
        name, seconds = _DURATION_UNITS[self.unit]
        locale = scope.get().locale
        # A threshold no value reaches keeps the written unit: 14d stays "14 days", not "2 weeks".
        text = format_timedelta(timedelta(seconds=self.amount * seconds), granularity=name, threshold=1e12,
                                locale=locale)
        if locale.split("_")[0] in _NO_SPACE_BEFORE_UNIT:
            text = _SPACE_BEFORE_CJK.sub(r"\1", text)  # CLDR writes "14 日"; running text writes "14日"
        return text


def as_decimal(value) -> Decimal:
    if isinstance(value, bool):
        raise ValueFormatError(f"{value!r} is not an amount")
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueFormatError(f"{value!r} is not an amount") from None


def format_money(amount, currency: str | None = None) -> str:
    """`money` filter: a `Money`, or an amount with its ISO 4217 currency code."""
    if isinstance(amount, Money):
        if currency is not None and currency != amount.currency:
            raise ValueFormatError(f"{amount.currency} money cannot be shown as {currency}")
        amount, currency = amount.amount, amount.currency
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise ValueFormatError(f"`money` needs a three-letter currency code such as JPY or EUR, got {currency!r}")
    return format_currency(as_decimal(amount), currency, locale=scope.get().locale)


def format_number(value) -> str:
    """`number` filter: a number with the locale's grouping and decimal signs."""
    return format_decimal(as_decimal(value), locale=scope.get().locale)


def _local(value) -> datetime | date:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(scope.get().zone)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return _local(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise ValueFormatError(f"{value!r} is not a date or a time")


def format_day(value, format: str = "medium") -> str:
    """`date` filter: the day, in the recipient's time zone for a point in time."""
    local = _local(value)
    day = local.date() if isinstance(local, datetime) else local
    return format_date(day, format=format, locale=scope.get().locale)


def format_moment(value, format: str = "medium") -> str:
    """`datetime` filter: date and time of day (hours and minutes) in the recipient's time zone.

    `format` is `short`, `medium`, `long` or `full` for the date part, or a CLDR pattern.
    """
    local = _local(value)
    if not isinstance(local, datetime):
        raise ValueFormatError(f"{value!r} is a day without a time; use the `date` filter")
    locale = scope.get().locale
    if format in ("short", "medium", "long", "full"):
        # The locale's own way of joining a date and a time; seconds and zone names left out.
        return get_datetime_format(format, locale=locale).replace("'", "").format(
            format_time(local, "short", locale=locale), format_date(local.date(), format, locale=locale))
    return format_datetime(local, format=format, tzinfo=scope.get().zone, locale=locale)


def json_default(value):
    """How `tojson` writes the values above: as they print."""
    if isinstance(value, (Money, Percent, Duration)):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Record):
        return dict(value)
    if isinstance(value, (list, tuple, frozenset, set)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


class Record(Mapping):
    """A row as a template sees it.  Read-only; `label` names it in error messages.

    An absent record (`Record.absent("order")`) is false in `{% if order %}` and says that the
    message has no such row when a field of it is asked for.  A field is turned into what
    templates see when it is read: an amount with a `<name>_currency` column as `Money`, a
    nested mapping as a `Record` named after its path, a list as a tuple.  A template reads a
    few fields of rows that have dozens, so nothing is converted up front.
    """

    __slots__ = ("_label", "_fields", "_present")

    def __init__(self, label: str, fields: Mapping, present: bool = True) -> None:
        self._label = label
        self._fields = dict(fields)
        self._present = present

    @classmethod
    def absent(cls, label: str) -> Record:
        return cls(label, {}, present=False)

    @property
    def record_label(self) -> str:
        return self._label

    @property
    def record_present(self) -> bool:
        return self._present

    def __getitem__(self, name):
        return self._shown(name, self._fields[name])

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            value = self._fields[name]
        except KeyError:
            raise AttributeError(name) from None
        return self._shown(name, value)

    def _shown(self, name, value):
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            currency = self._fields.get(f"{name}{_CURRENCY_SUFFIX}")
            return Money(as_decimal(value), currency) if isinstance(currency, str) else value
        if isinstance(value, _AS_STORED) or isinstance(value, Record):
            return value
        return template_value(f"{self._label}.{name}", value)

    def __iter__(self) -> Iterator:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __bool__(self) -> bool:
        return self._present

    def __repr__(self) -> str:
        return f"Record({self._label!r}, {self._fields!r})" if self._present else f"Record.absent({self._label!r})"


_CURRENCY_SUFFIX = "_currency"
#: Values a template sees exactly as stored: nothing to wrap, so no need to look further.
_AS_STORED = (str, int, float, Decimal, date, timedelta, type(None))


#: The exact types of most values, looked up before the `isinstance` checks (a mapping's goes through `abc`).
PLAIN_TYPES = frozenset((str, int, float, bool, Decimal, date, datetime, timedelta, type(None)))


def template_value(label: str, value):
    """A context value as templates see it: mappings become `Record`s, recursively by name."""
    kind = type(value)
    if kind in PLAIN_TYPES:
        return value
    if kind is dict:
        return Record(label, value)
    if isinstance(value, _AS_STORED) or isinstance(value, Record):
        return value
    if isinstance(value, Mapping):
        return Record(label, value)
    if isinstance(value, list):
        return tuple(template_value(label, v) for v in value)
    return value
