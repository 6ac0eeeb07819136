"""What an import did, per file: for people (stderr lines) and for scripts (`--format-report json`).

Every row read is accounted for: `read == imported + updated + skipped + rejected`.  `skipped`
rows were already in the store, unchanged, or kept as stored under `--on-conflict skip`.  Each
rejected row is listed with its line and reason; warnings say what was changed on the way in.
"""

from __future__ import annotations

import json

import attrs

from .messages import Problem

SHOWN_PER_FILE = 50


@attrs.define
class FileOutcome:
    label: str
    format: str
    table: str
    dry_run: bool = False
    read: int = 0
    imported: int = 0
    updated: int = 0
    skipped: int = 0
    problems: list[tuple[int, Problem]] = attrs.field(factory=list)
    warnings: list[tuple[int, Problem]] = attrs.field(factory=list)
    tables: dict = attrs.field(factory=dict)
    ignored_columns: list[str] = attrs.field(factory=list)
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return len(self.problems)

    def absorb(self, effects) -> None:
        """Take the figures of the merge (the rows read were counted while staging)."""
        self.imported, self.updated, self.skipped = effects.imported, effects.updated, effects.skipped
        self.problems = sorted([*self.problems, *effects.rejected], key=lambda item: item[0])
        self.tables = {name: dict(counts) for name, counts in effects.tables.items()}

    # ---------------------------------------------------------------------------- text

    def problem_lines(self) -> list[str]:
        lines = [problem.located(self.label, line) for line, problem in self.problems[:SHOWN_PER_FILE]]
        if self.rejected > SHOWN_PER_FILE:
            lines.append(f"{self.label}: … and {self.rejected - SHOWN_PER_FILE} more rejected rows "
                         "(--format-report json lists them all)")
        return lines

    def warning_lines(self) -> list[str]:
        """One line per kind of warning: the first occurrence, and how many more there are."""
        lines = []
        by_code: dict[str, list] = {}
        for line, warning in self.warnings:
            by_code.setdefault(warning.code, []).append((line, warning))
        for found in by_code.values():
            line, warning = found[0]
            more = f" (and {len(found) - 1} more rows like it)" if len(found) > 1 else ""
            lines.append(f"{self.label}:{line}: warning: {warning.message}{more}")
        if self.ignored_columns:
            lines.append(f"{self.label}: warning: " + Problem(
                "ignored-columns", None, {"columns": ", ".join(self.ignored_columns)}).message)
        return lines

    def summary_line(self) -> str:
        skipped = f", {self.skipped} skipped (already in the store)" if self.skipped else ""
        effects = "; ".join(f"{name} {_effect(counts)}" for name, counts in self.tables.items())
        would = "would be " if self.dry_run else ""
        return (f"{self.label}: {self.read} rows read ({self.format} → {self.table}): "
                f"{would}{self.imported} imported, {self.updated} updated{skipped}, {self.rejected} rejected"
                f"{' [' + effects + ']' if effects else ''} in {self.seconds:.1f} s")

    # ---------------------------------------------------------------------------- JSON

    def as_dict(self) -> dict:
        return {
            "file": self.label, "format": self.format, "table": self.table, "read": self.read,
            "imported": self.imported, "updated": self.updated, "skipped": self.skipped,
            "rejected": self.rejected, "tables": self.tables, "ignored_columns": self.ignored_columns,
            "problems": [_problem_dict(line, p) for line, p in self.problems],
            "warnings": [_problem_dict(line, p) for line, p in self.warnings],
            "seconds": round(self.seconds, 3),
        }


def _effect(counts: dict) -> str:
    signs = {"inserted": "+", "updated": "~", "revoked": "revoked "}
    return " ".join(f"{signs.get(what, what + ' ')}{number}" for what, number in counts.items())


def _problem_dict(line: int, problem: Problem) -> dict:
    return {"line": line, "code": problem.code, "field": problem.field, "message": problem.message}


def totals(outcomes: list[FileOutcome]) -> dict:
    return {key: sum(getattr(o, key) for o in outcomes)
            for key in ("read", "imported", "updated", "skipped", "rejected")}


def json_report(outcomes: list[FileOutcome], db: str, dry_run: bool) -> str:
    return json.dumps({"db": db, "dry_run": dry_run, "files": [o.as_dict() for o in outcomes],
                       "totals": totals(outcomes)}, ensure_ascii=False, indent=2) + "\n"


def total_line(outcomes: list[FileOutcome], dry_run: bool) -> str:
    figures = totals(outcomes)
    suffix = " (dry run: nothing written)" if dry_run else ""
    return (f"{len(outcomes)} files: {figures['read']} rows read, {figures['imported']} imported, "
            f"{figures['updated']} updated, {figures['skipped']} skipped, "
            f"{figures['rejected']} rejected{suffix}")
