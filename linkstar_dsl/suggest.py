""""Did you mean …?": the nearest known name to a misspelt one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest candidate, compared case-folded, or None when nothing is close enough."""
    pool = list(dict.fromkeys(candidates))
    folded = {c.lower().replace("_", ""): c for c in pool}
    key = word.lower().replace("_", "")
    if key in folded:
        return folded[key]
    match = difflib.get_close_matches(key, list(folded), n=1, cutoff=cutoff)
    return folded[match[0]] if match else None
