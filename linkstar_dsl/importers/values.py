"""Turning one cell into the value its store column holds, or a reason why it cannot.

Cells arrive as text (CSV), as JSON values (JSON Lines, exports) or typed (Parquet); `coerce`
accepts all three.  Closed sets (order status, country, locale, …) are checked against the
standard schema, case-insensitively; phone numbers must be E.164 once spaces, dashes, dots and
brackets are removed; time zones must be IANA names; currencies three letters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from .dates import DateReader, zone
from .messages import RowError
from .tables import Column

E164 = re.compile(r"\+[1-9]\d{6,14}\Z")
PHONE_PUNCTUATION = re.compile(r"[\s\-.()]")
CURRENCY = re.compile(r"[A-Z]{3}\Z")
TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}
MAX_DECIMAL = Decimal("1e16")
LIST_SEPARATOR = "|"


def is_empty(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def coerce(column: Column, value, dates: DateReader):
    """The value for `column`, or `None` for an empty cell; `RowError` when it does not fit."""
    return cell_reader(column, dates)(value)


def cell_reader(column: Column, dates: DateReader) -> Callable:
    """A function reading one cell of `column` (see `coerce`), prepared once per column."""
    convert = CONVERTERS[column.kind]
    check = _format_check(column)
    if column.kind == "text" and check is None:
        return _read_plain_text

    def read(value):
        if value is None:
            return None
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
        converted = convert(value, dates)
        return converted if check is None else check(converted)

    return read


def _read_plain_text(value) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    return None if value is None else _text(value, None)


def _format_check(column: Column) -> Callable | None:
    """Closed sets and the formats the schema documents (E.164, IANA zones, currencies)."""
    if column.choices is not None:
        return _choice_check(column)
    if column.name in ("phone", "whatsapp"):
        return phone
    if column.name == "timezone":
        return _zone_name
    if column.name.endswith("_currency"):
        return _currency
    return None


def _zone_name(value: str) -> str:
    try:
        zone(value)
    except KeyError:
        raise RowError("unknown-timezone", value=value) from None
    return value


def _currency(value: str) -> str:
    code = value.upper()
    if not CURRENCY.match(code):
        raise RowError("not-a-currency", value=value)
    return code


def phone(value: str) -> str:
    """`value` in E.164 form once punctuation is removed; `RowError` otherwise."""
    compact = PHONE_PUNCTUATION.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not E164.match(compact):
        raise RowError("not-e164", value=value)
    return compact


def _choice_check(column: Column) -> Callable:
    known = {choice.lower(): choice for choice in column.choices}
    is_locale = column.name == "locale"

    def check(value: str) -> str:
        wanted = re.split(r"[-_]", value)[0] if is_locale else value
        found = known.get(wanted.lower())
        if found is None:
            raise RowError("not-a-choice", value=value, choices=", ".join(column.choices),
                           hint=f" (map it with --map-value {column.name}:{value}=VALUE)")
        return found

    return check


def _text(value, dates) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value).strip()


def _integer(value, dates) -> int:
    if isinstance(value, bool):
        raise RowError("not-an-integer", value=value)
    try:
        number = Decimal(value if isinstance(value, int) else str(value).strip())
    except InvalidOperation:
        raise RowError("not-an-integer", value=value) from None
    if not number.is_finite() or number != number.to_integral_value():
        raise RowError("not-an-integer", value=value)
    if abs(number) >= 2 ** 63:
        raise RowError("number-too-large", value=value)
    return int(number)


def _decimal(value, dates) -> Decimal:
    if isinstance(value, bool):
        raise RowError("not-a-number", value=value)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise RowError("not-a-number", value=value) from None
    if not number.is_finite():
        raise RowError("not-a-number", value=value)
    if abs(number) >= MAX_DECIMAL:
        raise RowError("number-too-large", value=value)
    if number != number.quantize(Decimal("0.01")):
        raise RowError("too-many-decimals", value=value, places=2)
    return number.quantize(Decimal("0.01"))


def _boolean(value, dates) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RowError("not-a-boolean", value=value)


def _timestamp(value, dates: DateReader) -> datetime:
    return dates.timestamp(value)


def _date(value, dates: DateReader) -> date:
    return dates.date(value)


def _list(value, dates) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    raise RowError("not-a-list", value=_text(value, dates))


def _json(value, dates):
    if not isinstance(value, str):
        return _plain_numbers(value)
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise RowError("not-json", value=value, reason=exc.msg) from None


def _plain_numbers(value):
    """JSON values with exact decimals (from JSON Lines) as JSON numbers again."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


CONVERTERS = {"text": _text, "int": _integer, "decimal": _decimal, "bool": _boolean,
              "timestamp": _timestamp, "date": _date, "list": _list, "json": _json}


def build_row(table, values: dict, dates: DateReader, sources: dict | None = None) -> dict:
    """`values` coerced for `table`; a missing required value is an error.  `sources` names the
    input field each column came from, for the messages."""
    row = {}
    for name, value in values.items():
        try:
            row[name] = coerce(table.columns[name], value, dates)
        except RowError as error:
            raise error.at((sources or {}).get(name, name)) from None
    require(table, row, sources)
    return row


def require(table, row: dict, sources: dict | None = None) -> None:
    """`RowError` for the first column of `table` that needs a value and has none in `row`."""
    for name in table.required:
        if row.get(name) is None:
            raise RowError("required", (sources or {}).get(name, name))
