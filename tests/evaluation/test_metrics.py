"""The metrics against torchmetrics' independent implementations on random data."""

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import (
    binary_auroc as tm_binary_auroc,
)
from torchmetrics.functional.classification import (
    multiclass_auroc,
    multiclass_cohen_kappa,
)

from onconet.evaluation.metrics import (
    binary_auroc,
    change_auroc,
    classification_metrics,
    cohen_kappa,
    confusion_matrix,
    macro_ovr_auroc,
)
from onconet.evaluation.plots import roc_curve


def _random_predictions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, size=n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
    logits = np.round(logits, 1)  # ties, as real probabilities written to CSV have
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_torchmetrics(seed):
    y, probs = _random_predictions(np.random.default_rng(seed), 97)
    expected = multiclass_auroc(torch.tensor(probs), torch.tensor(y), num_classes=3, average="macro")
    assert macro_ovr_auroc(y, probs) == pytest.approx(float(expected), abs=1e-6)
    change = y != 1
    expected_change = tm_binary_auroc(torch.tensor(1 - probs[:, 1]), torch.tensor(change.astype(int)))
    assert change_auroc(y, probs) == pytest.approx(float(expected_change), abs=1e-6)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_matches_torchmetrics(weights):
    rng = np.random.default_rng(7)
    y, probs = _random_predictions(rng, 120)
    pred = probs.argmax(axis=1)
    expected = multiclass_cohen_kappa(torch.tensor(pred), torch.tensor(y), num_classes=3, weights=weights)
    assert cohen_kappa(y, pred, weights) == pytest.approx(float(expected), abs=1e-6)


def test_perfect_and_inverted_scores():
    positive = np.array([0, 0, 0, 1, 1])
    assert binary_auroc(positive, np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == 1.0
    assert binary_auroc(positive, -np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == 0.0
    assert binary_auroc(positive, np.zeros(5)) == 0.5
    assert np.isnan(binary_auroc(np.ones(4), np.arange(4)))


def test_roc_curve_area_equals_auroc():
    y, probs = _random_predictions(np.random.default_rng(3), 80)
    fpr, tpr = roc_curve(y == 2, probs[:, 2])
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(binary_auroc(y == 2, probs[:, 2]), abs=1e-12)


def test_confusion_and_summary():
    y = np.array([0, 1, 2, 2])
    probs = np.eye(3)[[0, 2, 2, 1]]
    assert confusion_matrix(y, probs.argmax(1)).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    metrics = classification_metrics(y, probs)
    assert metrics["accuracy"] == 0.5
    assert metrics["n"] == 4
    assert -1 <= metrics["kappa_quadratic"] <= 1
