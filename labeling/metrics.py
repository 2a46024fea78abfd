"""Agreement of weak labels with gold: coverage, accuracy, Cohen's kappa (abstentions handled explicitly).

Example:
    >>> coverage([0, -1, 2]), accuracy([0, -1, 2], [0, 1, 1])
    (0.6666666666666666, 0.3333333333333333)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ABSTAIN = -1


def coverage(predicted: Sequence[int]) -> float:
    """Share of items with a label (not -1)."""
    predicted = np.asarray(predicted)
    return float((predicted != ABSTAIN).mean()) if predicted.size else 0.0


def accuracy(predicted: Sequence[int], gold: Sequence[int], *, covered_only: bool = False) -> float:
    """Share of items labelled correctly; an abstention counts as wrong unless ``covered_only``."""
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    if covered_only:
        keep = predicted != ABSTAIN
        predicted, gold = predicted[keep], gold[keep]
    return float((predicted == gold).mean()) if predicted.size else float("nan")


def cohen_kappa(predicted: Sequence[int], gold: Sequence[int], n_classes: int = 3) -> float:
    """Cohen's kappa over all items; an abstention is its own category, so it lowers agreement."""
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    if not predicted.size:
        return float("nan")
    categories = n_classes + 1
    table = np.zeros((categories, categories))
    np.add.at(table, (np.where(predicted == ABSTAIN, n_classes, predicted), gold), 1)
    table /= table.sum()
    observed = np.trace(table)
    expected = float(table.sum(axis=1) @ table.sum(axis=0))
    return float((observed - expected) / (1 - expected)) if expected < 1 else 1.0
