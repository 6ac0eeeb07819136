"""The diagnostic catalog: one Markdown page per code, kept in `docs/rules/` (shipped in the wheel)."""

from __future__ import annotations

from .resources import data_dir


def page(code: str) -> str:
    try:
        path = data_dir("docs/rules") / f"{code}.md"
    except FileNotFoundError:
        path = None
    if path is not None and path.is_file():
        return path.read_text(encoding="utf-8")
    from .codes import CODES

    return f"# {code}\n\n{CODES[code].title}.\n"
