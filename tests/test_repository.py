"""The project's own flows hold to its own rules: they check clean and are formatted."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkstar_dsl.formatter import format_source
from linkstar_dsl.loader import load

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "examples").glob("*.flow")) + sorted((ROOT / "stdlib").rglob("*.flow"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_file_is_in_canonical_format(path):
    source = load(path).source
    outcome = format_source(source)
    assert outcome.text == source.text, f"run `linkstar fmt --write {path.relative_to(ROOT)}`"
