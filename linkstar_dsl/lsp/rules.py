"""Links to and summaries of the diagnostic catalog (`docs/rules/<code>.md`, shipped in the wheel)."""

from __future__ import annotations

from functools import cache

from ..codes import CODES
from ..resources import data_dir
from .documents import uri_of


@cache
def page_uri(code: str) -> str | None:
    """The `file:` URI of the code's catalog page, or None when the catalog is not installed."""
    try:
        path = data_dir("docs/rules") / f"{code}.md"
    except FileNotFoundError:
        return None
    return uri_of(path) if path.is_file() else None


@cache
def summary(code: str) -> str:
    """Markdown: the code, its severity and title, what it means, and a link to the whole page."""
    from ..catalog import page

    entry = CODES[code]
    try:
        text = page(code)
    except OSError:
        text = ""
    meaning = _section(text, "What it means")
    parts = [f"**{code}** ({entry.severity}): {entry.title}."]
    if meaning:
        parts.append(meaning)
    uri = page_uri(code)
    if uri:
        parts.append(f"[Catalog page]({uri}) · `linkstar explain-code {code}`")
    return "\n\n".join(parts)


def _section(page: str, heading: str) -> str:
    """The first paragraph under a `## heading` of a catalog page."""
    lines = page.splitlines()
    try:
        start = lines.index(f"## {heading}") + 1
    except ValueError:
        return ""
    paragraph: list[str] = []
    for line in lines[start:]:
        if line.startswith("#") or (not line.strip() and paragraph):
            break
        if line.strip():
            paragraph.append(line.strip())
    return " ".join(paragraph)
