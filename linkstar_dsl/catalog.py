"""The diagnostic catalog: one Markdown page per code, shipped in `diagnostic_pages/`."""

from __future__ import annotations

from .resources import data_dir


def page(code: str) -> str:
    try:
        path = data_dir("diagnostic_pages") / f"{code}.md"
    except FileNotFoundError:
        path = None
    if path is not None and path.is_file():
        return path.read_text(encoding="utf-8")
    from .codes import CODES

    return f"# {code}\n\n{CODES[code].title}.\n"
