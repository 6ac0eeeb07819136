"""Loading a `*.test.toml` file into a `Suite`: every key checked, flows compiled, periods derived.

Everything that can be wrong with a test file is found here, before any test runs, and reported
as `TestFileError` (`file:line: message`).  A flow that does not compile is not a bad test file:
the suite comes back with `compile_error` set, and its tests count as errors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..gates import REASONS
from ..schema import CHANNELS
from ..suggest import did_you_mean
from .locate import Locator, read_document
from .model import Case, Expectation, Suite
from .records import TABLES, Builder, Record
from .values import TestFileError, Times, parse_duration

SUFFIX = ".test.toml"
FILE_KEYS = ("file", "flow", "timezone", "step", *TABLES, "test")
TEST_KEYS = ("name", "flow", "from", "to", "step", "strict", *TABLES, "expect")
OUTCOMES = ("send", "defer", "skip", "nothing")
EXPECT_KEYS = (*OUTCOMES, "flow", "step", "order", "customer", "channel", "at", "due", "template", "detail")
#: How long the clock runs past the last due time when the test does not say (`to`).
AFTER_LAST_DUE = timedelta(days=2)
MAX_TICKS = 20_000

#: Compiled flows by their files' paths and modification stamps: files tested by several test
#: files are compiled once per run, and again when they change.
_compiled: dict[tuple, object] = {}


def load_suite(path: Path) -> Suite:
    data, loc = read_document(path)
    return _Loader(path, data, loc).suite()


class _Loader:
    def __init__(self, path: Path, data: dict, loc: Locator) -> None:
        self.path, self.data, self.loc, self.name = path, data, loc, str(path)

    def fail(self, message: str, *where) -> TestFileError:
        return TestFileError(self.name, self.loc.line(*where) or 1, message)

    def _keys(self, table: dict, known: tuple[str, ...], what: str, *where) -> None:
        for key in table:
            if key == "expect" and "expect" not in known:
                raise self.fail("an expectation belongs to a test: write `[[test.expect]]` after its "
                                "`[[test]]`", *where, key)
            if key not in known:
                guess = did_you_mean(key, known)
                hint = f"; did you mean `{guess}`?" if guess else f" (known: {', '.join(known)})"
                raise self.fail(f"unknown key `{key}` {what}{hint}", *where, key)

    def suite(self) -> Suite:
        self._keys(self.data, FILE_KEYS, "at the top of a test file")
        self.zone = self._zone()
        self.step = self._step(self.data.get("step"), "step") if "step" in self.data else timedelta(hours=1)
        files = self._flow_files()
        program = self._compile(files)
        tests = self.data.get("test")
        if not isinstance(tests, list) or not tests or not all(isinstance(t, dict) for t in tests):
            raise self.fail("no tests here: add a `[[test]]` with its data and at least one "
                            "`[[test.expect]]`", "test")
        if isinstance(program, str):
            unrun = tuple((str(t.get("name", f"test {i + 1}")), self.loc.line("test", i) or 1)
                          for i, t in enumerate(tests))
            return Suite(self.path, self.zone, None, files, (), compile_error=program, unrun=unrun)
        self.program = program
        self.plans = {p.name: p for p in program.plans}
        if not self.plans:
            raise self.fail("the flow files hold no flow to test: " + ", ".join(str(f) for f in files),
                            "file")
        selected = self._flow_names(self.data, list(self.plans), ())
        cases = tuple(self._case(i, test, selected) for i, test in enumerate(tests))
        return Suite(self.path, self.zone, program, files, cases)

    # ------------------------------------------------------------------ file settings

    def _zone(self) -> ZoneInfo:
        value = self.data.get("timezone", "UTC")
        try:
            return ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(f"`timezone`: \"{value}\" is not an IANA time zone such as Asia/Tokyo or UTC",
                            "timezone") from None

    def _step(self, value, *where) -> timedelta:
        step = parse_duration(value)
        if step is None or step < timedelta(minutes=1):
            raise self.fail(f"`step`: {value!r} is not a clock step such as \"15m\", \"1h\" or \"1d\"",
                            *where)
        return step

    def _flow_files(self) -> tuple[Path, ...]:
        here = self.path.parent
        if "file" not in self.data:
            stem = self.path.name[:-len(SUFFIX)] if self.path.name.endswith(SUFFIX) else self.path.stem
            for candidate in (here / f"{stem}.flow", here.parent / f"{stem}.flow"):
                if candidate.is_file():
                    return (candidate,)
            raise self.fail(f"which flows does this file test? name them with `file = \"../{stem}.flow\"` "
                            f"(there is no {stem}.flow next to it or in the folder above)")
        value = self.data["file"]
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise self.fail("`file` must be a flow file's path, or a list of them, such as "
                            "\"../survey.flow\"", "file")
        files = []
        for i, name in enumerate(names):
            candidate = here / name
            if not candidate.exists():
                raise self.fail(f"`file`: there is no {name} (paths are relative to this test file)",
                                "file", i)
            files.append(candidate)
        return tuple(files)

    def _compile(self, files: tuple[Path, ...]):
        """The Program, or the check report's text when the flows have errors."""
        from ..runtime.program import CompileError, compile_paths

        key = tuple(_stamp(f) for f in files)
        if key not in _compiled:
            try:
                _compiled[key] = compile_paths(files)
            except CompileError as exc:
                if not any(r.errors for r in exc.reports):
                    raise self.fail(f"the flows cannot be loaded: {exc}", "file") from None
                _compiled[key] = str(exc)
        return _compiled[key]

    def _flow_names(self, table: dict, allowed: list[str], where: tuple) -> list[str]:
        if "flow" not in table:
            return allowed
        value = table["flow"]
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise self.fail("`flow` must be a flow's name, or a list of them", *where, "flow")
        for name in names:
            if name not in allowed:
                guess = did_you_mean(name, allowed)
                hint = f"; did you mean {guess}?" if guess else f" (flows here: {', '.join(allowed)})"
                raise self.fail(f"`flow`: no flow named {name}{hint}", *where, "flow")
        return list(dict.fromkeys(names))

    # ------------------------------------------------------------------ one test

    def _records(self, table: dict, where: tuple) -> dict[str, list[Record]]:
        found: dict[str, list[Record]] = {}
        for kind in TABLES:
            if kind not in table:
                continue
            items = table[kind]
            if isinstance(items, dict):
                dotted = ".".join([*(str(w) for w in where if isinstance(w, str)), kind])
                raise self.fail(f"write `[[{dotted}]]`, with two brackets: a test may hold several of them",
                                *where, kind)
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise self.fail(f"`{kind}` must be a table such as `[[{kind}]]`", *where, kind)
            for i, item in enumerate(items):
                def line(key=None, _at=(*where, kind, i)):
                    return self.loc.line(*_at, *((key,) if key is not None else ())) or 1
                found.setdefault(kind, []).append(Record(kind, item, line))
        return found

    def _case(self, index: int, test: dict, selected: list[str]) -> Case:
        where = ("test", index)
        self._keys(test, TEST_KEYS, "in a `[[test]]`", *where)
        name = test.get("name", f"test {index + 1}")
        if not isinstance(name, str) or not name.strip():
            raise self.fail("`name` must be text that says what the test shows", *where, "name")
        names = self._flow_names(test, selected, where)
        plans = tuple(self.plans[n] for n in names)
        strict = test.get("strict", True)
        if not isinstance(strict, bool):
            raise self.fail("`strict` must be true or false", *where, "strict")
        step = self._step(test["step"], *where, "step") if "step" in test else self.step
        records = self._records(self.data, ())
        for kind, items in self._records(test, where).items():
            records.setdefault(kind, []).extend(items)
        builder = Builder(self.name, self.zone, self.program.schema, self.plans)
        fixtures = builder.build(records)
        expects = test.get("expect")
        if isinstance(expects, dict):
            raise self.fail("write `[[test.expect]]`, with two brackets: a test may expect several things",
                            *where, "expect")
        if not isinstance(expects, list) or not expects or not all(isinstance(e, dict) for e in expects):
            raise self.fail("this test expects nothing: add at least one `[[test.expect]]`", *where)
        expectations = tuple(self._expectation(e, (*where, "expect", i), plans, builder)
                             for i, e in enumerate(expects))
        start, end = self._period(test, where, plans, fixtures, step)
        return Case(name.strip(), self.loc.line(*where) or 1, plans, fixtures, start, end, step, strict,
                    expectations)

    def _period(self, test: dict, where: tuple, plans: tuple, fixtures,
                step: timedelta) -> tuple[datetime, datetime]:
        given = Times(self.name, self.zone, {k: (test[k], self.loc.line(*where, k) or 1)
                                             for k in ("from", "to") if k in test}).resolve()
        dues = [moment + timedelta(seconds=s.offset) for p in plans for s in p.steps
                for event, _, moment in fixtures.occurrences if event == p.event]
        if not dues and ("from" not in given or "to" not in given):
            events = sorted({p.event for p in plans})
            raise self.fail("cannot tell when to run this test: nothing in it triggers "
                            + (f"`{events[0]}`" if len(events) == 1 else "any of " + ", ".join(events))
                            + "; give the period with `from` and `to`", *where)
        start = given.get("from") or _align(min(dues) - step, step)
        end = given.get("to") or _align(max(max(dues), start) + AFTER_LAST_DUE, step, up=True)
        if end <= start:
            raise self.fail("`to` must come after `from`", *where, "to" if "to" in test else "from")
        if (end - start) / step > MAX_TICKS:
            raise self.fail(f"the period is more than {MAX_TICKS:,} clock steps: shorten it or set a larger "
                            "`step`", *where)
        return start, end

    def _expectation(self, table: dict, where: tuple, plans: tuple, builder: Builder) -> Expectation:
        self._keys(table, EXPECT_KEYS, "in an `[[expect]]`", *where)
        given = [k for k in OUTCOMES if k in table]
        if len(given) != 1:
            raise self.fail("an expectation says exactly one of `send = \"email\"`, `defer = \"window\"`, "
                            "`skip = \"guard\"` or `nothing = true`"
                            + (f" (this one says {' and '.join(given)})" if given else ""), *where)
        decision = given[0]
        value = table[decision]
        fields: dict = {}
        if decision == "send":
            if value is not True:
                fields["channel"] = self._choice(value, CHANNELS, "a channel", where, "send")
        elif decision == "nothing":
            if value is not True:
                raise self.fail("write `nothing = true`", *where, "nothing")
        else:
            reasons = tuple(r for r in REASONS if r != "sent")
            fields["reason"] = self._choice(value, reasons, "a reason", where, decision)
        names = {p.name: p for p in plans}
        flow = table.get("flow")
        if flow is not None:
            fields["flow"] = self._choice(flow, tuple(names), "a flow of this test", where, "flow")
        if "step" in table:
            steps = len(names[flow].steps) if flow is not None else max(len(p.steps) for p in plans)
            step = table["step"]
            if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= steps:
                raise self.fail(f"`step` must be a step number from 1 to {steps}", *where, "step")
            fields["step"] = step - 1
        for key, ids, what in (("order", builder.orders, "order"),
                               ("customer", builder.customers, "customer")):
            if key in table:
                value = table[key]
                if str(value) not in ids:
                    guess = did_you_mean(str(value), ids)
                    hint = f"; did you mean {guess}?" if guess else ""
                    raise self.fail(f"`{key}`: no {what} \"{value}\" in this test{hint}", *where, key)
                fields[key] = str(value)
        if "channel" in table:
            if decision == "send":
                raise self.fail("write the channel of a send as `send = \"email\"`", *where, "channel")
            fields["channel"] = self._choice(table["channel"], CHANNELS, "a channel", where, "channel")
        for key in ("template", "detail"):
            if key in table:
                if not isinstance(table[key], str):
                    raise self.fail(f"`{key}` must be text in quotes", *where, key)
                fields[key] = table[key]
        if "at" in table and decision in ("skip", "nothing"):
            raise self.fail(f"a {decision} has no send time: use `due = ...` for the time it was due",
                            *where, "at")
        scopes = []
        if "order" in fields:
            scopes.append(builder.times[("order", fields["order"])])
        if "customer" in fields:
            scopes.append(builder.times[("customer", fields["customer"])])
        raw = {k: (table[k], self.loc.line(*where, k) or 1) for k in ("at", "due") if k in table}
        fields.update(Times(self.name, self.zone, raw, tuple(scopes)).resolve())
        return Expectation(line=self.loc.line(*where) or 1, decision=decision, **fields)

    def _choice(self, value, known: tuple[str, ...], what: str, where: tuple, key: str) -> str:
        if isinstance(value, str) and value in known:
            return value
        guess = did_you_mean(str(value), known) if isinstance(value, str) else None
        hint = f"; did you mean {guess}?" if guess else f" ({', '.join(known)})"
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        raise self.fail(f"`{key}`: {shown} is not {what}{hint}", *where, key)


def _stamp(path: Path) -> tuple:
    found = sorted(path.rglob("*.flow")) if path.is_dir() else [path]
    return (str(path.resolve()), *((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in found))


def _align(moment: datetime, step: timedelta, up: bool = False) -> datetime:
    """`moment` rounded down (or up) to a whole number of steps since the epoch, in UTC."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    steps, rest = divmod(moment - epoch, step)
    if up and rest:
        steps += 1
    return epoch + steps * step


def collect(paths: list[str]) -> list[Path]:
    """The test files among `paths`: files as given, folders searched for `*.test.toml`."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.rglob(f"*{SUFFIX}")
                            if not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file() and path.suffix == ".flow":
            raise TestFileError(name, None, f"this is a flow; its tests are in a `*{SUFFIX}` file (give that file, "
                                            "or a folder to search)")
        elif path.is_file():
            found.append(path)
        else:
            raise TestFileError(name, None, "no such file or folder")
    return list(dict.fromkeys(found))
