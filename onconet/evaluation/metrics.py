"""Classification metrics for the three response classes.

The classes are ordinal (response < stable < progression), so weighted kappa is meaningful. AUROC is the
Mann–Whitney statistic with ties counted as one half, which equals the area under the empirical ROC curve.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import rankdata

from onconet.classes import RESPONSE_CLASSES

N_CLASSES = len(RESPONSE_CLASSES)
STABLE = RESPONSE_CLASSES.index("stable")


def binary_auroc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for the boolean labels ``positive`` (NaN if one class only).

    Example:
        >>> binary_auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        0.75
    """
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_ovr_auroc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean one-vs-rest AUROC over the classes that have both positives and negatives in ``y_true``."""
    values = [binary_auroc(y_true == c, probs[:, c]) for c in range(probs.shape[1])]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def change_auroc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """AUROC of "change" (response or progression) against stable, scored by 1 − p(stable)."""
    return binary_auroc(y_true != STABLE, 1.0 - probs[:, STABLE])


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Counts with rows = truth, columns = prediction."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def cohen_kappa(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    weights: Literal["linear", "quadratic"] | None = None,
    n_classes: int = N_CLASSES,
) -> float:
    """Cohen's kappa, unweighted or with linear / quadratic disagreement weights.

    Example:
        >>> cohen_kappa(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 2]))
        1.0
    """
    observed = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    total = observed.sum()
    if total == 0:
        return float("nan")
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    i, j = np.indices((n_classes, n_classes))
    if weights is None:
        w = (i != j).astype(np.float64)
    elif weights == "linear":
        w = np.abs(i - j).astype(np.float64)
    elif weights == "quadratic":
        w = ((i - j) ** 2).astype(np.float64)
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}")
    denominator = (w * expected).sum()
    if denominator == 0:  # both raters constant and equal: perfect agreement by convention
        return 1.0 if (w * observed).sum() == 0 else 0.0
    return float(1.0 - (w * observed).sum() / denominator)


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The report's metrics for integer labels ``y_true`` (n,) and class probabilities ``probs`` (n, 3)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    y_pred = probs.argmax(axis=1)
    return {
        "n": float(len(y_true)),
        "macro_auroc": macro_ovr_auroc(y_true, probs),
        "change_auroc": change_auroc(y_true, probs),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
        "kappa_linear": cohen_kappa(y_true, y_pred, "linear"),
        "kappa_quadratic": cohen_kappa(y_true, y_pred, "quadratic"),
    }
