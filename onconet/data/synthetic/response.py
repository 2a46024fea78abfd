"""Planning the true response: the category first, then lesion SUVmax values that produce it.

Baseline values are planned from the baseline's background; follow-up values from the follow-up's
background and reference (liver mean), so that ``onconet.classes.response_category`` applied to the true
image values gives the drawn category. About a third of the patients sit near a threshold (1–4 % on the
right side of it).
"""

from __future__ import annotations

import numpy as np

from onconet.classes import ABSOLUTE_CHANGE, PARTIAL_RATIO, PROGRESSION_RATIO

#: categories of one block of six consecutive patients (response : stable : progression = 2 : 2 : 2)
CATEGORY_BLOCK = ("CMR", "PMR", "SMD", "SMD", "PMD", "PMD")
NEAR_THRESHOLD_FRACTION = 0.35
NEW_LESION_FRACTION = 0.45
#: a lesion stays visible while its SUVmax exceeds its background by this much
VISIBILITY_MARGIN = 0.3
#: ratio of the follow-up's reference above which a non-complete response's hottest lesion lies
ABOVE_REFERENCE = 1.1


def category_of(seed: int, index: int) -> str:
    """The true category of patient ``index``: balanced within blocks of six, shuffled per block."""
    block, position = divmod(index, len(CATEGORY_BLOCK))
    order = np.random.default_rng([seed, block, 7]).permutation(len(CATEGORY_BLOCK))
    return CATEGORY_BLOCK[int(order[position])]


def partial_limit(b: float) -> float:
    """The highest follow-up SUVmax that is still a partial response from baseline ``b``."""
    return min(PARTIAL_RATIO * b, b - ABSOLUTE_CHANGE)


def progression_limit(b: float) -> float:
    """The lowest follow-up SUVmax that is progression from baseline ``b``."""
    return max(PROGRESSION_RATIO * b, b + ABSOLUTE_CHANGE)


def baseline_range(category: str, reference_estimate: float) -> tuple[float, float]:
    """Range of the baseline hottest-lesion SUVmax that leaves room for ``category`` at follow-up."""
    if category == "PMR":
        low = max(4.5, ABOVE_REFERENCE * 1.15 * reference_estimate / PARTIAL_RATIO)
        return low, max(low + 2.0, 20.0)
    if category == "SMD":
        return max(3.2, 1.5 * reference_estimate), 14.0
    if category == "PMD":
        return 2.8, 12.0
    return 3.0, 16.0


def plan_hottest_followup(
    rng: np.random.Generator,
    category: str,
    b: float,
    reference: float,
    floor: float,
    near: bool,
) -> float | None:
    """The follow-up SUVmax of the lesion that will be hottest, or None if ``category`` cannot fit.

    Args:
        category: PMR, SMD or PMD (by values); CMR is planned by ``plan_complete``.
        b: baseline hottest-lesion SUVmax.
        reference: the follow-up's reference (liver mean) SUV.
        floor: the lowest SUVmax this lesion can have and still be visible.
        near: put the value 1–4 % inside a threshold.
    """
    delta = rng.uniform(0.01, 0.04)
    above_ref = max(ABOVE_REFERENCE * reference, floor)
    if category == "PMR":
        high = partial_limit(b)
        if above_ref > high * 0.98:
            return None
        return high * (1 - delta) if near else rng.uniform(above_ref, high * 0.97)
    if category == "SMD":
        low_threshold, high = partial_limit(b), progression_limit(b)
        low = max(low_threshold * 1.01, above_ref)
        if low > high * 0.99:
            return None
        if near:
            candidates = [high * (1 - delta)]
            if low_threshold * (1 + delta) >= above_ref:
                candidates.append(low_threshold * (1 + delta))
            return float(candidates[int(rng.integers(len(candidates)))])
        return float(np.clip(b * rng.uniform(0.85, 1.15), low, high * 0.99))
    if category == "PMD":
        high = progression_limit(b)
        f = high * (1 + delta) if near else high * rng.uniform(1.05, 1.8)
        return float(max(f, floor))
    raise ValueError(f"plan_hottest_followup: category {category!r} is planned elsewhere")


def lesion_ratio(rng: np.random.Generator, category: str) -> float:
    """How the SUVmax of a lesion that is not the hottest changes under ``category``."""
    low, high = {"CMR": (0.0, 0.0), "PMR": (0.2, 0.7), "SMD": (0.8, 1.2), "PMD": (1.0, 1.6)}[category]
    return float(rng.uniform(low, high))


def diameter_ratio(rng: np.random.Generator, category: str) -> float:
    """How a lesion's diameter changes under ``category`` (before any resolution)."""
    low, high = {"CMR": (0.4, 0.7), "PMR": (0.5, 0.85), "SMD": (0.9, 1.1), "PMD": (1.1, 1.5)}[category]
    return float(rng.uniform(low, high))
