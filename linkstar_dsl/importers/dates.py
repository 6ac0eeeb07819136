"""Reading the dates and times of order exports.

Without `--date-format` a value may be written

* ISO 8601, with or without an offset: `2024-03-05T14:30:00+09:00`, `2024-03-05 14:30`,
  `2024-03-05T05:30:00Z`, `20240305`;
* year first with other separators: `2024/3/5 14:30`, `2024.3.5`;
* day and month first: `5.3.2024 14:30` (a dot means day first), or `3/5/2024 2:30` and
  `3-5-2024`, which are read only when one of the two numbers is above 12 (`3/25/2024` is
  March 25, `25/3/2024` is March 25); otherwise the value is ambiguous and rejected with a hint;
* epoch seconds: `1709649000` (9 to 11 digits, optionally with a fraction).

`--date-format` (Python `strptime` codes, for example `%m/%d/%Y %H:%M`; may be repeated, tried in
order) replaces all of this for the file's values.  A time without an offset is a wall-clock time
in `--timezone` (default UTC); one that does not exist there (a daylight-saving gap) is read with
the offset in force before the change, and one that happens twice takes the first occurrence.
Timestamps come out as UTC instants.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .messages import RowError

_TIME = r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?"
YEAR_FIRST = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _TIME + r"\Z")
YEAR_LAST = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})" + _TIME + r"\Z")
EPOCH = re.compile(r"\d{9,11}(?:\.\d+)?\Z")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def zone(name: str) -> tzinfo:
    """The IANA zone `name`; `KeyError` when there is none."""
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long for a file
        raise KeyError(name) from exc


class DateReader:
    """Turns the text (or the typed value) of one cell into an instant or a calendar date."""

    def __init__(self, formats: tuple[str, ...] = (), time_zone: tzinfo = UTC) -> None:
        self.formats = tuple(formats)
        self.zone = time_zone

    def timestamp(self, value) -> datetime:
        """An aware datetime in UTC."""
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            moment = _from_epoch(str(value))
        else:
            moment = self._parse(str(value).strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return moment.astimezone(UTC)

    def date(self, value) -> date:
        """A calendar date (a time part, if any, is dropped)."""
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        return self._parse(str(value).strip()).date()

    def _parse(self, text: str) -> datetime:
        if self.formats:
            return self._parse_explicit(text)
        return parse_flexible(text)

    def _parse_explicit(self, text: str) -> datetime:
        for fmt in self.formats:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
        raise RowError("date-format-mismatch", value=text, formats=" or ".join(f'"{f}"' for f in self.formats))


def parse_flexible(text: str) -> datetime:
    """A naive or aware datetime from any of the forms in the module docstring."""
    if EPOCH.match(text):
        return _from_epoch(text)
    if text[:4].isdigit() and len(text) >= 8:
        try:
            return datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            pass
    match = YEAR_FIRST.match(text)
    if match:
        year, _, month, day, *clock = match.groups()
        return _build(text, int(year), int(month), int(day), clock)
    match = YEAR_LAST.match(text)
    if match:
        first, separator, second, year, *clock = match.groups()
        month, day = _month_and_day(text, int(first), int(second), separator, int(year))
        return _build(text, int(year), month, day, clock)
    raise RowError("not-a-date", value=text)


def _month_and_day(text: str, first: int, second: int, separator: str, year: int) -> tuple[int, int]:
    if separator == ".":
        return second, first
    if first == second or (first > 12 and second <= 12):
        return second, first
    if second > 12 and first <= 12:
        return first, second
    if first > 12 and second > 12:
        raise RowError("not-a-date", value=text)
    raise RowError("ambiguous-date", value=text, month_first=f"{MONTHS[first - 1]} {second}",
                   day_first=f"{MONTHS[second - 1]} {first}",
                   example=_example_format(text, separator))


def _example_format(text: str, separator: str) -> str:
    clock = " %H:%M:%S" if text.count(":") == 2 else " %H:%M" if ":" in text else ""
    return f"%m{separator}%d{separator}%Y{clock}"


def _build(text: str, year: int, month: int, day: int, clock: list) -> datetime:
    hour, minute, second, fraction = clock
    try:
        return datetime(year, month, day, int(hour or 0), int(minute or 0), int(second or 0),
                        int((fraction or "0").ljust(6, "0")))
    except ValueError:
        raise RowError("not-a-date", value=text) from None


def _from_epoch(text: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(Decimal(text)), tz=UTC)
    except (InvalidOperation, ValueError, OverflowError, OSError):
        raise RowError("not-a-date", value=text) from None
