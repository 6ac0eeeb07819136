"""Document formatting with `linkstar fmt`'s formatter, as the smallest set of line edits.

Nothing is changed when the formatter refuses: a file with syntax errors, or one whose meaning
formatting would change (both are reported by the diagnostics already).
"""

from __future__ import annotations

import difflib
import re

from lsprotocol import types as lsp

from ..formatter import format_source
from .documents import Document

_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def edits(doc: Document) -> list[lsp.TextEdit]:
    outcome = format_source(doc.source)
    if outcome.text is None or outcome.text == doc.text:
        return []
    old = _LINE.findall(doc.text)
    new = _LINE.findall(outcome.text)
    starts = [0]
    for line in old:
        starts.append(starts[-1] + len(line))
    result = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            result.append(lsp.TextEdit(range=doc.lines.range(starts[i1], starts[i2]),
                                       new_text="".join(new[j1:j2])))
    return result
