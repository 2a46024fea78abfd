"""Response classes and the clinical categories they group (DESIGN.md, "Clinical definitions")."""

from __future__ import annotations

from typing import Final, Literal

#: The three classes the model predicts, in the order of its logits.
RESPONSE_CLASSES: Final[tuple[str, ...]] = ("response", "stable", "progression")

Category = Literal["CMR", "PMR", "SMD", "PMD"]

#: PERCIST-style category -> model class.
CATEGORY_TO_CLASS: Final[dict[str, str]] = {
    "CMR": "response",
    "PMR": "response",
    "SMD": "stable",
    "PMD": "progression",
}

#: Thresholds on the hottest lesion's SUVmax (b = baseline, f = follow-up).
PARTIAL_RATIO: Final[float] = 0.7
PROGRESSION_RATIO: Final[float] = 1.3
ABSOLUTE_CHANGE: Final[float] = 0.8
#: Thresholds are inclusive; this absorbs binary rounding (1.3 * 3.0 > 3.9 in floating point).
_TOLERANCE: Final[float] = 1e-9


def response_category(
    baseline_suvmax: float,
    followup_suvmax: float,
    *,
    reference_suv: float | None = None,
    new_lesion: bool = False,
) -> Category:
    """The response category of one exam pair from the hottest-lesion SUVmax at both timepoints.

    Args:
        baseline_suvmax: hottest-lesion SUVmax at baseline (b).
        followup_suvmax: hottest-lesion SUVmax at follow-up (f); 0 when no lesion remains.
        reference_suv: the reference region's uptake (liver or blood pool). When given and the follow-up
            has no lesion above it, the response is complete (CMR).
        new_lesion: a new lesion at follow-up means progression whatever the values.

    Example:
        >>> response_category(10.0, 5.0)
        'PMR'
        >>> response_category(4.0, 4.5)
        'SMD'
        >>> response_category(4.0, 4.5, new_lesion=True)
        'PMD'
    """
    b, f, tol = baseline_suvmax, followup_suvmax, _TOLERANCE
    if new_lesion or (f >= PROGRESSION_RATIO * b - tol and f - b >= ABSOLUTE_CHANGE - tol):
        return "PMD"
    if reference_suv is not None and f <= reference_suv:
        return "CMR"
    if f <= PARTIAL_RATIO * b + tol and b - f >= ABSOLUTE_CHANGE - tol:
        return "PMR"
    return "SMD"


def response_class(category: str) -> str:
    """The model class (response / stable / progression) of a category (CMR / PMR / SMD / PMD)."""
    return CATEGORY_TO_CLASS[category]
