"""The REPL session: the store it reads, the clock, the chosen order or customer, the flows.

A session owns one DuckDB connection: either a scratch connection over a store file (the store
attached read-only, as `simulate` does) or an in-memory store filled with a small demo data set.
Flow evaluations write their decisions inside a transaction that is rolled back, so one experiment
never changes the next and the store is never written.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import duckdb

from ..compiler.plan import FlowPlan
from ..schema import Schema, standard_schema

#: The demo store made when no `--db` is given: small enough to start at once.
DEMO_ORDERS = 300
DEMO_SEED = 42
DEFAULT_WINDOW = timedelta(days=7)
DEFAULT_ROWS = 20


class SessionError(Exception):
    """A store that cannot be opened; the message is one line for the user."""


@attrs.frozen
class LoadedFlow:
    plan: FlowPlan
    #: where it came from: a file name, or "typed"
    origin: str


@attrs.define
class Session:
    con: duckdb.DuckDBPyConnection
    #: what the store is, for the banner: "demo store (300 orders)" or the file name
    store_label: str
    clock: datetime
    schema: Schema = attrs.field(factory=standard_schema)
    flows: dict[str, LoadedFlow] = attrs.field(factory=dict)
    order_id: str | None = None
    customer_id: str | None = None
    #: how far back from the clock a typed flow is simulated
    window: timedelta = DEFAULT_WINDOW
    #: rows shown of a flow's decisions
    rows: int = DEFAULT_ROWS
    #: folders holding templates next to loaded flow files (the standard ones always count)
    template_roots: list[Path] = attrs.field(factory=list)
    #: the folder typed flows count as written in, for finding their templates: the current
    #: folder, then the folder of the last `:load`
    home: Path = Path(".")
    color: bool = False

    # ------------------------------------------------------------------ opening

    @classmethod
    def demo(cls, orders: int = DEMO_ORDERS, seed: int = DEMO_SEED) -> Session:
        """An in-memory store with the deterministic demo data set."""
        from ..demo_data import generate
        from ..store import migrate

        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        migrate(con)
        counts = generate(con, orders=orders, seed=seed)
        label = f"demo store ({counts['orders']:,} orders, {counts['customers']:,} customers, seed {seed})"
        return cls(con, label, default_clock(con))

    @classmethod
    def open(cls, path: str) -> Session:
        """A scratch connection over the store at `path` (read-only; decisions stay in memory)."""
        from ..simulate import scratch

        if not Path(path).is_file():
            raise SessionError(f"{path}: no such database (create one with `linkstar generate --db {path}` "
                               "or `linkstar import`, or leave out --db for a demo store)")
        try:
            con = scratch(path)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SessionError(f"{path}: cannot be read as a linkstar store ({first})") from None
        orders = con.execute("SELECT count(*) FROM orders").fetchone()[0]
        return cls(con, f"{path} ({orders:,} orders)", default_clock(con))

    # ------------------------------------------------------------------ what is chosen

    @property
    def subject(self) -> str | None:
        """The id `:explain` and values are about: the chosen order, else the chosen customer."""
        return self.order_id or self.customer_id

    def subject_label(self) -> str:
        if self.order_id:
            return f"order {self.order_id}"
        if self.customer_id:
            return f"customer {self.customer_id}"
        return "no order chosen"

    def plans(self) -> list[FlowPlan]:
        return [f.plan for f in self.flows.values()]

    def add_flows(self, plans, origin: str) -> None:
        """Add flows; a flow with the name of one already there replaces it."""
        for plan in plans:
            self.flows.pop(plan.name, None)
            self.flows[plan.name] = LoadedFlow(plan, origin)

    # ------------------------------------------------------------------ vocabulary

    def typed_file(self) -> str:
        """The file name typed flows are checked under: a file in `home`, so its templates are found."""
        return str(self.home / "<repl>.flow")

    def template_names(self) -> list[str]:
        from ..templates import TemplateStore, roots_for, stdlib_root

        return TemplateStore([*roots_for(self.typed_file()), *self.template_roots, stdlib_root()]).names

    def ids(self, table: str, prefix: str, limit: int = 40) -> list[str]:
        """Ids of orders or customers starting with `prefix` (for completion)."""
        if table not in ("orders", "customers"):
            raise ValueError(table)
        try:
            rows = self.con.execute(f"SELECT id FROM {table} WHERE starts_with(id, ?) ORDER BY id LIMIT ?",
                                    [prefix, limit]).fetchall()
        except duckdb.Error:
            return []
        return [r[0] for r in rows]


def default_clock(con: duckdb.DuckDBPyConnection) -> datetime:
    """The hour after the store's latest event, so the recent past of the data is 'now'.

    A store with no events starts at the real time.
    """
    latest = con.execute("SELECT max(t) FROM (SELECT max(occurred_at) AS t FROM order_events "
                         "UNION ALL SELECT max(occurred_at) FROM customer_events)").fetchone()[0]
    if latest is None:
        return datetime.now(UTC).replace(microsecond=0)
    latest = latest.astimezone(UTC)
    hours = math.ceil(latest.timestamp() / 3600)
    return datetime.fromtimestamp(hours * 3600, UTC)
