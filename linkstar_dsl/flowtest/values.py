"""Reading the values of a flow test file: times, relative times, durations and money.

Every value that cannot be read raises `TestFileError` with the file and line it came from, so
`linkstar test` can answer a bad test file with one line instead of a traceback.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

_DURATION = re.compile(r"^(\d+)([mhdwy])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_RELATIVE = re.compile(r"^([a-z_][a-z0-9_]*)\s*(?:([+-])\s*(\S+))?$")
_MONEY = re.compile(r"^(\d+(?:\.\d{1,2})?)\s+([A-Z]{3})$")
TIME_EXAMPLE = "2026-09-01T10:00+09:00, 2026-09-01T10:00 (in the file's time zone) or `delivered + 2d`"


class TestFileError(Exception):
    """A test file that cannot be used: `str()` is `file:line[:column]: message`."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, path: str, line: int | None, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.path, self.line, self.message, self.column = str(path), line, message, column

    def __str__(self) -> str:
        where = self.path
        if self.line:
            where += f":{self.line}" + (f":{self.column}" if self.column else "")
        return f"{where}: {self.message}"


def parse_duration(text: object) -> timedelta | None:
    """`48h`, `2d`, `90m`… as a timedelta; None when `text` is not written that way."""
    match = _DURATION.match(str(text).strip()) if isinstance(text, str) else None
    if not match:
        return None
    return timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])


def absolute_time(value: object, zone: ZoneInfo) -> datetime | None:
    """An instant from an ISO 8601 text or a TOML date/date-time; None when it is neither.

    Without an offset the wall-clock time is read in `zone` (the file's `timezone`).
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0))
    elif isinstance(value, str):
        text = value.strip()
        if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
            return None
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def parse_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def parse_money(value: object, default_currency: str) -> tuple[Decimal, str] | None:
    """`25 USD` → (25, USD); a bare number is in `default_currency`; None when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return None
        return (amount, default_currency) if amount >= 0 else None
    if isinstance(value, str):
        match = _MONEY.match(value.strip())
        if match:
            return Decimal(match.group(1)), match.group(2)
    return None


class Times:
    """Resolves the time fields of one record, some written relative to others.

    `raw` maps a field to (value, line); `scopes` are already resolved times the record may refer
    to (its order's events, its customer's), searched after the record's own fields.
    """

    def __init__(self, path: str, zone: ZoneInfo, raw: dict[str, tuple[object, int]],
                 scopes: tuple[dict[str, datetime], ...] = ()) -> None:
        self.path, self.zone, self.raw, self.scopes = path, zone, raw, scopes
        self.done: dict[str, datetime] = {}

    def resolve(self) -> dict[str, datetime]:
        for name in self.raw:
            self._get(name, ())
        return self.done

    def _get(self, name: str, chain: tuple[str, ...]) -> datetime:
        if name in self.done:
            return self.done[name]
        value, line = self.raw[name]
        moment = absolute_time(value, self.zone)
        if moment is None:
            moment = self._relative(name, value, line, chain)
        self.done[name] = moment
        return moment

    def _relative(self, name: str, value: object, line: int, chain: tuple[str, ...]) -> datetime:
        match = _RELATIVE.match(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise self._not_a_time(name, value, line)
        base_name, sign, amount = match.groups()
        shift = timedelta(0)
        if sign:
            shift = parse_duration(amount)
            if shift is None:
                raise TestFileError(self.path, line,
                                    f"`{name}`: `{amount}` is not a duration such as 2d, 48h or 90m")
            shift = shift if sign == "+" else -shift
        if base_name == name or base_name in chain:
            raise TestFileError(self.path, line, f"`{name}` is defined in terms of itself")
        if base_name in self.raw:
            return self._get(base_name, chain + (name,)) + shift
        for scope in self.scopes:
            if base_name in scope:
                return scope[base_name] + shift
        from ..suggest import did_you_mean

        names = [*self.raw, *(k for scope in self.scopes for k in scope)]
        known = [k for k in names if k != name and "#" not in k]
        if not known:
            raise self._not_a_time(name, value, line)
        guess = did_you_mean(base_name, known)
        hint = f"; did you mean `{guess}`?" if guess else (
            f" (known here: {', '.join(sorted(set(known)))})" if known else "")
        raise TestFileError(self.path, line, f"`{name}`: no time named `{base_name}` to count from{hint}")


    def _not_a_time(self, name: str, value: object, line: int) -> TestFileError:
        return TestFileError(self.path, line,
                             f"`{name}`: {_show(value)} is not a time; write it like {TIME_EXAMPLE}")


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def show_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """An instant as the reader of the test file thinks of it: `2026-09-03 10:00 +09:00`."""
    if moment is None:
        return "-"
    local = moment.astimezone(zone)
    stamp = local.strftime("%Y-%m-%d %H:%M")
    if local.second:
        stamp += local.strftime(":%S")
    offset = local.strftime("%z")
    return f"{stamp} {offset[:3]}:{offset[3:]}" if offset not in ("+0000", "") else f"{stamp} UTC"
