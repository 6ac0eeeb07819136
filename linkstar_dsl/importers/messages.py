"""Every message `linkstar import` shows, as a template keyed by a stable code.

Row problems (a value that is not a date, a missing required value, …) and usage problems (a
`--map` naming no column, a file of unknown shape, …) are reported by code with named arguments;
the words live only here, so they can be offered in other languages later, and the JSON report
carries the code for scripts.
"""

from __future__ import annotations

import attrs

ROW_MESSAGES = {
    # values
    "not-a-date": '"{value}" is not a date',
    "ambiguous-date": ('"{value}" could be {month_first} or {day_first}; '
                       'settle it with --date-format (for example "{example}")'),
    "date-format-mismatch": '"{value}" does not match --date-format {formats}',
    "not-an-integer": '"{value}" is not a whole number',
    "not-a-number": '"{value}" is not a number',
    "too-many-decimals": '"{value}" has more than {places} decimal places',
    "number-too-large": '"{value}" is too large',
    "not-a-boolean": '"{value}" is not true or false',
    "not-a-list": '"{value}" is not a list of text values',
    "not-json": '"{value}" is not valid JSON ({reason})',
    "not-a-choice": '"{value}" is not one of {choices}{hint}',
    "not-e164": '"{value}" is not a phone number in E.164 form (for example +81312345678)',
    "unknown-timezone": '"{value}" is not an IANA time zone (for example Asia/Tokyo)',
    "not-a-currency": '"{value}" is not an ISO 4217 currency code (for example JPY)',
    "required": "a value is required",
    # rows and records
    "bad-encoding": "this row is not valid UTF-8 text",
    "bad-json-line": "this line is not valid JSON ({reason})",
    "not-an-object": "this line holds {kind}, not a JSON object",
    "field-count": "this row has {count} fields, the header has {expected}",
    "missing-field": "this order has no {name}",
    "no-country": "no country in {where}",
    "unknown-value": '"{value}" is not a known {what}',
    "unexpected-shape": "this row does not have the expected shape ({reason})",
    "no-currency": "no OrderTotal and no currency known for country {country}",
    # the store
    "duplicate-in-file": 'repeats {key} of line {line}',
    "conflict": "{key} is already in the store with other values (use --on-conflict update or skip)",
}

WARNING_MESSAGES = {
    "ignored-columns": "columns not imported: {columns}",
    "phone-left-empty": '{field} "{value}" is not in E.164 form; left empty',
    "approximate-event": "{event} event placed at {at}, the latest time known for the order (status {status})",
}

USAGE_MESSAGES = {
    "no-files": "no files to import in {paths}",
    "unknown-table": ("cannot tell which table {file} is for; name the file after a table ({tables}) "
                      "or pass --table"),
    "unknown-format": "cannot tell the format of {file}; pass --format ({formats})",
    "unreadable": "{file}: cannot be read ({reason})",
    "bad-document": "{file}: line {line}: not valid JSON ({reason})",
    "document-shape": "{file}: {format} data needs {shape}",
    "bad-option": "{option} {value}: expected {expected}",
    "unknown-column": "{option} {value}: the {table} table has no column {column} (it has {columns})",
    "bad-default": "--default {value}: {reason}",
    "missing-column": ("{file}: no column for {table}.{column}; map one with --map SOURCE={column} "
                       "or give --default {column}=VALUE"),
    "unknown-event": "--map-event {value}: {event} is not a {subject} event ({hint})",
    "unknown-source-column": "{option} {value}: no column {column} in {files}",
    "events-need-table": "--map-event needs --table orders or customers (the file is for {table})",
    "mapping-not-for-format": "{option} applies to csv, parquet and jsonl files, not to {format} exports",
    "unknown-timezone": "--timezone {value}: not an IANA time zone (for example Asia/Tokyo)",
    "bad-date-format": "--date-format {value}: {reason}",
    "parquet-unreadable": "{file}: cannot be read as Parquet ({reason})",
    "store": "{reason}",
    "dry-run-old-schema": ("{db} holds an older schema (version {have}); run the import once without "
                           "--dry-run to bring it up to date"),
}


@attrs.frozen
class Problem:
    """Why one row was rejected (or, as a warning, what was changed on the way in)."""

    code: str
    field: str | None = None
    params: dict = attrs.field(factory=dict, eq=False)

    @property
    def message(self) -> str:
        template = ROW_MESSAGES.get(self.code) or WARNING_MESSAGES[self.code]
        text = template.format(**self.params)
        return f"{self.field}: {text}" if self.field else text

    def located(self, file: str, line: int) -> str:
        """`orders.csv:17: placed_at: "31/31/2024" is not a date`."""
        return f"{file}:{line}: {self.message}"


class RowError(Exception):
    """Raised while converting a row; carries the problem that rejects it."""

    def __init__(self, code: str, field: str | None = None, **params) -> None:
        super().__init__(code)
        self.problem = Problem(code, field, params)

    def at(self, field: str) -> RowError:
        """The same problem attributed to `field`, when it was raised without one."""
        if self.problem.field is None:
            self.problem = attrs.evolve(self.problem, field=field)
        return self


class UsageProblem(Exception):
    """A problem with the command line or a file's shape: nothing is imported, exit code 2."""

    def __init__(self, code: str, **params) -> None:
        self.code = code
        self.params = params
        super().__init__(USAGE_MESSAGES[code].format(**params))
