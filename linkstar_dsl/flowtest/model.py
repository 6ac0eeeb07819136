"""What a flow test file holds once read: suites of cases, their data and their expectations."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs


@attrs.frozen
class Expectation:
    """One decision the test expects (or, with `decision == "nothing"`, the absence of any)."""

    line: int
    decision: str  # send | defer | skip | nothing
    flow: str | None = None
    step: int | None = None  # 0-based, like the runtime's
    order: str | None = None
    customer: str | None = None
    reason: str | None = None
    channel: str | None = None
    at: datetime | None = None  # a send's time, or the time a deferral waits for
    due: datetime | None = None
    template: str | None = None
    detail: str | None = None

    def subject(self) -> str:
        parts = []
        if self.order is not None:
            parts.append(f"order {self.order}")
        if self.customer is not None:
            parts.append(f"customer {self.customer}")
        if self.flow is not None:
            parts.append(f"flow {self.flow}")
        if self.step is not None:
            parts.append(f"step {self.step + 1}")
        return ", ".join(parts) or "any message"


@attrs.frozen
class Fixtures:
    """Rows for the store, table by table, plus what the period and defaults are derived from."""

    rows: dict[str, list[dict]]
    #: (event, subject id, time) of every event written, including the derived `last_order`
    occurrences: tuple[tuple[str, str, datetime], ...]
    #: customer id → True when the test wrote its order figures itself
    figures_given: dict[str, bool]


@attrs.frozen
class Case:
    name: str
    line: int
    plans: tuple  # the FlowPlans this case runs
    fixtures: Fixtures
    start: datetime
    end: datetime
    step: timedelta
    strict: bool
    expectations: tuple[Expectation, ...]


@attrs.frozen
class Suite:
    """One test file."""

    path: Path
    zone: ZoneInfo
    program: object | None  # the compiled Program, None when the flows did not compile
    flow_files: tuple[Path, ...]
    cases: tuple[Case, ...]
    #: the text `linkstar check` would print, when the flows under test have errors
    compile_error: str | None = None
    #: names and lines of the cases when the flows did not compile (they cannot be run)
    unrun: tuple[tuple[str, int], ...] = ()

    @property
    def label(self) -> str:
        return str(self.path)
