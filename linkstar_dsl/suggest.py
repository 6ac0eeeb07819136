""""Did you mean …?": the nearest known name to a misspelt one.

Distance is the optimal-string-alignment edit distance (insertions, deletions, substitutions and
swaps of neighbours, so `vai` is one edit from `via`), on case-folded words with underscores
ignored.  A word may be at most a third of its length away (at least one edit), so short words
only match short slips and nothing far-fetched is ever suggested.
"""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance between `a` and `b`."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _fold(word: str) -> str:
    return word.lower().replace("_", "")


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate within the allowed distance, or None when nothing is close enough."""
    key = _fold(word)
    limit = max(1, len(key) // 3)
    best, best_distance = None, limit + 1
    for candidate in dict.fromkeys(candidates):
        folded = _fold(candidate)
        if abs(len(folded) - len(key)) > limit:
            continue
        distance = edit_distance(key, folded)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best
