"""Rows of CSV, Parquet and JSON Lines files, canonical or mapped onto the store's columns.

A file's columns are renamed by `--map SOURCE=COLUMN`; a cell's text is replaced by
`--map-value COLUMN:TEXT=VALUE` before it is read; an empty or missing value takes
`--default COLUMN=VALUE`, else the column's default in the store.  `--map-event EVENT=SOURCE`
turns a timestamp column into an event row (`order_events` for an orders file, `customer_events`
for a customers file) with the id `<order id>:<event>`, so re-imports find it again.

An orders file also brings its customers: a customer not yet in the store is created from the
order (id, country, `source` = the order's marketplace), with the language and, for single-zone
countries, the time zone of that country, and `--default customers.COLUMN=VALUE` for the rest.
Customers already in the store are left as they are.

When events are mapped and an order's status is `canceled`, `refunded` or `returned` without a
timestamp for that event, the event is recorded at the latest time known for the order, marked
`"approximate": true` in its data: a flow's `where not canceled` must see it.
"""

from __future__ import annotations

import attrs

from .dates import DateReader
from .markets import customer_market
from .messages import Problem, RowError
from .readers import RawRow
from .records import FILL, MERGE, PRIMARY, Record
from .tables import Table
from .values import cell_reader, coerce, is_empty, require

NEGATIVE_STATUSES = ("canceled", "refunded", "returned")
EVENT_TABLE = {"orders": ("order_events", "order_id"), "customers": ("customer_events", "customer_id")}


@attrs.frozen
class Mapping:
    """The options that fit a foreign file to the store (all empty for a canonical file)."""

    renames: dict = attrs.field(factory=dict)          # source column -> store column
    value_maps: dict = attrs.field(factory=dict)       # (store column, text) -> text
    defaults: dict = attrs.field(factory=dict)         # store column -> value (already read)
    customer_defaults: dict = attrs.field(factory=dict)
    events: dict = attrs.field(factory=dict)           # event -> source column

    def column_of(self, source: str) -> str:
        return self.renames.get(source, source)


class CanonicalConverter:
    """Makes a `Record` of each row of one file for `table`."""

    def __init__(self, table: Table, tables: dict[str, Table], mapping: Mapping, dates: DateReader) -> None:
        self.table = table
        self.tables = tables
        self.mapping = mapping
        self.dates = dates
        self.ignored: dict[str, None] = {}
        self._layouts: dict[tuple, list] = {}
        self.labels = {column: _label(source, column) for source, column in mapping.renames.items()}

    def convert(self, raw: RawRow) -> Record:
        if raw.problem is not None:
            return Record.rejected(raw.line, raw.problem)
        try:
            return self._record(raw)
        except RowError as error:
            return Record.rejected(raw.line, error.problem)

    # ---------------------------------------------------------------------------- rows

    def _record(self, raw: RawRow) -> Record:
        values = self._primary_values(raw.values)
        record = Record(raw.line)
        record.add(self.table.name, PRIMARY, values)
        if self.mapping.events:
            self._add_events(record, raw.values, values)
        if self.table.name == "orders":
            record.add("customers", FILL, self._placeholder_customer(values))
        return record

    def _primary_values(self, source: dict) -> dict:
        values = {}
        for source_name, name, read in self._layout(tuple(source)):
            try:
                values[name] = read(source[source_name])
            except RowError as error:
                raise error.at(_label(source_name, name)) from None
        for name, value in self.mapping.defaults.items():
            if name not in values:
                values[name] = value
        require(self.table, values, self.labels)
        return values

    def _layout(self, names: tuple) -> list:
        """(source name, store column, cell reader) for the names of a row; unknown names are noted."""
        layout = self._layouts.get(names)
        if layout is None:
            layout = []
            for name in names:
                column = self.table.columns.get(self.mapping.column_of(name))
                if column is not None:
                    layout.append((name, column.name, self._reader(column)))
                elif name not in self.mapping.events.values():
                    self.ignored[name] = None
            self._layouts[names] = layout
        return layout

    def _reader(self, column):
        """Reads a cell of `column`: `--map-value`, then the text, else `--default` or the column default."""
        read = cell_reader(column, self.dates)
        replacements = {text: new for (name, text), new in self.mapping.value_maps.items()
                        if name == column.name}
        if column.name in self.mapping.defaults:
            fallback = self.mapping.defaults[column.name]
        else:
            fallback = column.default if column.has_default else None

        def read_cell(value):
            if replacements and isinstance(value, str):
                value = replacements.get(value.strip(), value)
            converted = read(value)
            return fallback if converted is None else converted

        return read_cell

    # -------------------------------------------------------------------------- events

    def _add_events(self, record: Record, source: dict, values: dict) -> None:
        event_table, owner_column = EVENT_TABLE[self.table.name]
        owner = values["id"]
        times = {}
        for event, source_name in self.mapping.events.items():
            value = self._event_value(source, source_name)
            if is_empty(value):
                continue
            try:
                times[event] = self.dates.timestamp(value)
            except RowError as error:
                raise error.at(source_name) from None
        for event, moment in times.items():
            record.add(event_table, MERGE, {"id": f"{owner}:{event}", owner_column: owner,
                                            "event": event, "occurred_at": moment})
        if self.table.name == "orders":
            self._add_status_event(record, values, times)

    def _event_value(self, source: dict, source_name: str):
        if source_name in source:
            return source[source_name]
        for name, column in self.mapping.renames.items():
            if column == source_name and name in source:
                return source[name]
        return None

    def _add_status_event(self, record: Record, values: dict, times: dict) -> None:
        status = values.get("status")
        if status not in NEGATIVE_STATUSES or status in times:
            return
        known = [*times.values(), *([values["placed_at"]] if values.get("placed_at") else [])]
        if not known:
            return
        latest = max(known)
        record.add("order_events", MERGE, {
            "id": f"{values['id']}:{status}", "order_id": values["id"], "event": status, "occurred_at": latest,
            "data": {"approximate": True, "reason": f"status {status} without a timestamp"}})
        record.warnings.append(Problem("approximate-event", None,
                                       {"event": status, "at": latest.isoformat(), "status": status}))

    # ----------------------------------------------------------------------- customers

    def _placeholder_customer(self, order: dict) -> dict:
        customers = self.tables["customers"]
        country = order.get("country")
        source = order.get("marketplace")
        values = {"id": order["customer_id"], "country": country,
                  "source": source if source in (customers.columns["source"].choices or ()) else "web"}
        for name, value in customer_market(country).items():
            values[name] = value
        values.update(self.mapping.customer_defaults)
        require(customers, values)
        return values


def _label(source: str, column: str) -> str:
    return source if source == column else f"{source} ({column})"


def read_default(table: Table, name: str, text: str, dates: DateReader):
    """A `--default` value read for its column; `RowError` when it does not fit."""
    return coerce(table.columns[name], text, dates)
