"""The wheel carries the grammar, the standard library, the channel descriptions, the examples and
the diagnostic catalog inside `linkstar_dsl/`, and nothing at the top level but the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "-q", "-w", str(out), str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_data_folders_ship_inside_the_package(wheel_names):
    for needed in ("linkstar_dsl/grammar/flow.lark", "linkstar_dsl/stdlib/schema.flow",
                   "linkstar_dsl/stdlib/policies/us.flow", "linkstar_dsl/store/migrations/001_initial.sql",
                   "linkstar_dsl/docs/rules/stray-comma.md", "linkstar_dsl/examples/win_back.flow"):
        assert needed in wheel_names
    assert any(name.startswith("linkstar_dsl/channels/") for name in wheel_names)


def test_nothing_but_the_package_at_the_top_level(wheel_names):
    tops = {name.split("/", 1)[0] for name in wheel_names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"linkstar_dsl"}
