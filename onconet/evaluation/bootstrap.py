"""Percentile bootstrap confidence intervals for the classification metrics."""

from __future__ import annotations

import numpy as np

from onconet.evaluation.metrics import classification_metrics


def bootstrap_intervals(
    y_true: np.ndarray,
    probs: np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every metric of :func:`classification_metrics`, resampling pairs.

    Resamples where a metric is undefined (e.g. one class only) are left out of that metric's interval.

    Example:
        >>> y = np.array([0, 1, 2] * 10)
        >>> lo, hi = bootstrap_intervals(y, np.eye(3)[y], n_resamples=50)["accuracy"]
        >>> (lo, hi)
        (1.0, 1.0)
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_resamples):
        index = rng.integers(0, len(y_true), size=len(y_true))
        for name, value in classification_metrics(y_true[index], probs[index]).items():
            if name != "n" and not np.isnan(value):
                samples.setdefault(name, []).append(value)
    alpha = (1.0 - confidence) / 2
    return {
        name: (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))
        for name, values in samples.items()
    }
