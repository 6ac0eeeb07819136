"""The import options, read and checked against the store and the files before anything is written.

`--map`, `--map-value`, `--default` and `--map-event` name store columns and events; each is
checked here (a column that no table being imported has, an event the schema does not know, a
`--default` that does not fit its column, a `--map` source no file has), and so is every CSV or
Parquet header: a file that gives no value for a required column is refused up front, with the
option that would fix it.
"""

from __future__ import annotations

import difflib
import time

import attrs

from .canonical import Mapping, read_default
from .dates import DateReader, zone
from .messages import RowError, UsageProblem
from .readers import csv_header, parquet_columns
from .sources import Source
from .tables import Table, events_of

SUBJECT_OF_TABLE = {"orders": "order", "customers": "customer"}
CUSTOMER_PREFIX = "customers."


@attrs.frozen
class ImportOptions:
    """Everything the command line says about how to read the files."""

    table: str | None = None
    format: str = "auto"
    renames: tuple[tuple[str, str], ...] = ()               # (source column, store column)
    value_maps: tuple[tuple[str, str, str], ...] = ()       # (store column, text, replacement)
    defaults: tuple[tuple[str, str], ...] = ()              # (column or customers.column, text)
    events: tuple[tuple[str, str], ...] = ()                # (event, source column)
    date_formats: tuple[str, ...] = ()
    timezone: str = "UTC"
    dry_run: bool = False
    on_conflict: str = "update"

    @property
    def maps_columns(self) -> bool:
        return bool(self.renames or self.value_maps or self.defaults or self.events)


@attrs.frozen
class Plan:
    tables: dict[str, Table]
    dates: DateReader
    mappings: dict[str, Mapping]

    def mapping_for(self, table: str) -> Mapping:
        return self.mappings.get(table, Mapping())


# ----------------------------------------------------------------------- parsing option text


def parse_pair(option: str, text: str, expected: str) -> tuple[str, str]:
    """`a=b` → (a, b); both sides required."""
    left, equals, right = text.partition("=")
    if not equals or not left.strip() or (not right.strip() and option != "--default"):
        raise UsageProblem("bad-option", option=option, value=text, expected=expected)
    return left.strip(), right.strip()


def parse_value_map(text: str) -> tuple[str, str, str]:
    """`status:invoiced=paid` → ("status", "invoiced", "paid")."""
    column, colon, rest = text.partition(":")
    if not colon or not column.strip():
        raise UsageProblem("bad-option", option="--map-value", value=text, expected="COLUMN:TEXT=VALUE")
    found, replacement = parse_pair("--map-value", rest, "COLUMN:TEXT=VALUE")
    return column.strip(), found, replacement


# ------------------------------------------------------------------------------- planning


def plan_files(sources: list[Source], tables: dict[str, Table], options: ImportOptions) -> Plan:
    dates = _date_reader(options)
    canonical = [s for s in sources if not s.is_export]
    if options.maps_columns and not canonical:
        option = next(name for name, given in (("--map", options.renames), ("--map-value", options.value_maps),
                                               ("--default", options.defaults), ("--map-event", options.events))
                      if given)
        raise UsageProblem("mapping-not-for-format", option=option, format=sources[0].format)
    involved = [tables[name] for name in dict.fromkeys(s.table for s in canonical)]
    _check_columns(options, involved, tables)
    _check_events(options, involved)
    mappings = {table.name: _mapping(table, tables, options, dates) for table in involved}
    headers = {s.label: _header(s) for s in canonical if s.format in ("csv", "parquet")}
    _check_sources_of_renames(options, headers)
    for source in canonical:
        if source.label in headers:
            _check_header(source, headers[source.label], tables[source.table], mappings[source.table])
    return Plan(tables, dates, mappings)


def _date_reader(options: ImportOptions) -> DateReader:
    try:
        time_zone = zone(options.timezone)
    except KeyError:
        raise UsageProblem("unknown-timezone", value=options.timezone) from None
    for fmt in options.date_formats:
        if "%" not in fmt:
            raise UsageProblem("bad-date-format", value=fmt, reason="it has no % codes (for example %d.%m.%Y)")
        try:
            time.strftime(fmt)
        except ValueError as exc:
            raise UsageProblem("bad-date-format", value=fmt, reason=str(exc)) from None
    return DateReader(options.date_formats, time_zone)


def _check_columns(options: ImportOptions, involved: list[Table], tables: dict[str, Table]) -> None:
    checks = [("--map", f"{s}={d}", d) for s, d in options.renames]
    checks += [("--map-value", f"{c}:{f}={t}", c) for c, f, t in options.value_maps]
    for name, text in options.defaults:
        if name.startswith(CUSTOMER_PREFIX):
            _require_column("--default", f"{name}={text}", name[len(CUSTOMER_PREFIX):], [tables["customers"]])
        else:
            checks.append(("--default", f"{name}={text}", name))
    for option, text, column in checks:
        _require_column(option, text, column, involved)


def _require_column(option: str, text: str, column: str, candidates: list[Table]) -> None:
    if candidates and not any(column in table.columns for table in candidates):
        table = candidates[0]
        raise UsageProblem("unknown-column", option=option, value=text, table=table.name, column=column,
                           columns=", ".join(table.columns))


def _check_events(options: ImportOptions, involved: list[Table]) -> None:
    if not options.events:
        return
    subjects = [SUBJECT_OF_TABLE[t.name] for t in involved if t.name in SUBJECT_OF_TABLE]
    if not subjects:
        raise UsageProblem("events-need-table", table=involved[0].name if involved else "orders")
    for event, source in options.events:
        known = [e for subject in subjects for e in events_of(subject)]
        if event not in known:
            close = difflib.get_close_matches(event, known, n=1)
            hint = f"did you mean {close[0]}?" if close else "known: " + ", ".join(known)
            raise UsageProblem("unknown-event", value=f"{event}={source}", event=event,
                               subject=" or ".join(subjects), hint=hint)


def _mapping(table: Table, tables: dict[str, Table], options: ImportOptions, dates: DateReader) -> Mapping:
    subject = SUBJECT_OF_TABLE.get(table.name)
    return Mapping(
        renames={s: d for s, d in options.renames if d in table.columns},
        value_maps={(c, f): t for c, f, t in options.value_maps if c in table.columns},
        defaults=_defaults(table, options, dates, prefix=""),
        customer_defaults=_defaults(tables["customers"], options, dates, prefix=CUSTOMER_PREFIX),
        events={e: s for e, s in options.events if subject and e in events_of(subject)})


def _defaults(table: Table, options: ImportOptions, dates: DateReader, prefix: str) -> dict:
    values = {}
    for name, text in options.defaults:
        if (prefix and not name.startswith(prefix)) or (not prefix and name.startswith(CUSTOMER_PREFIX)):
            continue
        column = name[len(prefix):]
        if column not in table.columns:
            continue
        try:
            values[column] = read_default(table, column, text, dates)
        except RowError as error:
            raise UsageProblem("bad-default", value=f"{name}={text}", reason=error.problem.message) from None
    return values


def _header(source: Source) -> list[str]:
    try:
        if source.format == "csv":
            return [name.strip() for name in csv_header(source.path)]
        return parquet_columns(source.path)
    except OSError as exc:
        raise UsageProblem("unreadable", file=source.label, reason=exc.strerror or str(exc)) from None


def _check_sources_of_renames(options: ImportOptions, headers: dict[str, list[str]]) -> None:
    if not headers:
        return
    seen = {name for header in headers.values() for name in header}
    for source, column in options.renames:
        if source not in seen:
            raise UsageProblem("unknown-source-column", option="--map", value=f"{source}={column}",
                               column=source, files=", ".join(headers))


def _check_header(source: Source, header: list[str], table: Table, mapping: Mapping) -> None:
    given = {mapping.column_of(name) for name in header} | set(mapping.defaults)
    for column in table.columns.values():
        if column.required and column.name not in given:
            raise UsageProblem("missing-column", file=source.label, table=table.name, column=column.name)
    for event, column in mapping.events.items():
        if column not in header and column not in given:
            raise UsageProblem("unknown-source-column", option="--map-event", value=f"{event}={column}",
                               column=column, files=source.label)
