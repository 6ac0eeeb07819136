"""Rates and confidence intervals for `linkstar report`, with the standard library only.

A holdout's lift is the difference of two proportions: the conversion rate of the messages sent
minus that of the holdout members.  Its interval is Newcombe's hybrid score interval (his method
10, 1998), built from the Wilson score interval of each proportion; unlike the textbook
normal-approximation interval it stays inside [-1, 1] and behaves at rates near 0, which is where
conversion rates live.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import attrs

CONFIDENCE = 0.95


def rate(count: int, total: int) -> float | None:
    """count / total, or None when there is nothing to divide by."""
    return count / total if total else None


def z_value(confidence: float = CONFIDENCE) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion (trials > 0)."""
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    z = z_value(confidence)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


@attrs.frozen
class Lift:
    """The difference of two conversion rates, with its confidence interval."""

    treated_rate: float
    control_rate: float
    difference: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """False when the interval contains 0: no evidence the messages changed anything."""
        return self.low > 0 or self.high < 0


def lift(treated: int, treated_n: int, control: int, control_n: int, confidence: float = CONFIDENCE) -> Lift | None:
    """The lift of treated over control (Newcombe's hybrid score interval), or None without data."""
    if treated_n <= 0 or control_n <= 0:
        return None
    p1, p2 = treated / treated_n, control / control_n
    l1, u1 = wilson(treated, treated_n, confidence)
    l2, u2 = wilson(control, control_n, confidence)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Lift(p1, p2, difference, low, high)
