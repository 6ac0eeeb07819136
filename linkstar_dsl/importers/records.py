"""What a converter makes of one input row: the rows it adds to the store, or why it cannot.

One input row (a CSV line, a Shopify order object, …) is one `Record`.  Its first row is the
*primary* row, the one `--on-conflict` is about and the one the summary counts; the others are
rows the input implies (the order's customer, its events, the buyer's consents), merged into
the store alongside it:

* `merge`: insert, or fill the stored row with the values given (an empty value never erases);
* `fill`: insert only when the key is not in the store yet (placeholder customers of orders).

A record may also revoke consents (`Revocation`), and carry warnings about what was changed on
the way in.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from .messages import Problem

PRIMARY, MERGE, FILL = "primary", "merge", "fill"


@attrs.frozen
class Row:
    table: str
    mode: str
    values: dict


@attrs.frozen
class Revocation:
    """Marketing consent on `channel` withdrawn at `revoked_at`: open grants before it end there."""

    customer_id: str
    channel: str
    purpose: str
    revoked_at: datetime


@attrs.define
class Record:
    line: int
    rows: list[Row] = attrs.field(factory=list)
    revocations: list[Revocation] = attrs.field(factory=list)
    problem: Problem | None = None
    warnings: list[Problem] = attrs.field(factory=list)

    @classmethod
    def rejected(cls, line: int, problem: Problem) -> Record:
        return cls(line=line, problem=problem)

    def add(self, table: str, mode: str, values: dict) -> None:
        self.rows.append(Row(table, mode, values))


class ExportConverter:
    """Turns one order of a marketplace export into a `Record`; a bad order is a rejected row.

    Subclasses read the order in `_record`, raising `RowError` for what they cannot use.
    """

    def __init__(self, tables, dates) -> None:
        self.tables = tables
        self.dates = dates

    def convert(self, raw) -> Record:
        from .messages import RowError

        if raw.problem is not None:
            return Record.rejected(raw.line, raw.problem)
        try:
            return self._record(raw.values, raw.line)
        except RowError as error:
            return Record.rejected(raw.line, error.problem)

    def _record(self, order: dict, line: int) -> Record:
        raise NotImplementedError
