"""Evaluation plots: ROC curves per class, confusion matrix, reliability (calibration) curve."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt
import numpy as np

from onconet.classes import RESPONSE_CLASSES
from onconet.evaluation.metrics import binary_auroc, confusion_matrix


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    positive = np.asarray(positive, dtype=bool)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    sorted_score, sorted_pos = np.asarray(score)[order], positive[order]
    # One point per distinct score: the last index of each run of ties.
    last_of_tie = np.r_[np.nonzero(np.diff(sorted_score))[0], len(sorted_score) - 1]
    tp = np.cumsum(sorted_pos)[last_of_tie]
    fp = np.cumsum(~sorted_pos)[last_of_tie]
    n_pos, n_neg = max(int(positive.sum()), 1), max(int((~positive).sum()), 1)
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos]


def plot_roc(y_true: np.ndarray, probs: np.ndarray, path: Path, title: str = "ROC") -> Path:
    """One-vs-rest ROC curve per class with its AUROC in the legend."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for c, name in enumerate(RESPONSE_CLASSES):
        positive = y_true == c
        if positive.all() or not positive.any():
            continue
        fpr, tpr = roc_curve(positive, probs[:, c])
        ax.plot(fpr, tpr, label=f"{name} (AUROC {binary_auroc(positive, probs[:, c]):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, path: Path, title: str = "Confusion") -> Path:
    """Confusion matrix with counts (rows = truth, columns = prediction)."""
    matrix = confusion_matrix(y_true, y_pred)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=colour)
    ticks = range(len(RESPONSE_CLASSES))
    ax.set_xticks(ticks, RESPONSE_CLASSES)
    ax.set_yticks(ticks, RESPONSE_CLASSES)
    ax.set(xlabel="predicted", ylabel="truth", title=title)
    return _save(fig, path)


def reliability(
    y_true: np.ndarray, probs: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin of the predicted class: mean confidence, accuracy and count."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / counts
        accuracy = np.bincount(bins, weights=correct.astype(float), minlength=n_bins) / counts
    return mean_conf, accuracy, counts


def plot_calibration(y_true: np.ndarray, probs: np.ndarray, path: Path, title: str = "Calibration") -> Path:
    """Reliability curve of the predicted class' probability, with the expected calibration error."""
    mean_conf, accuracy, counts = reliability(y_true, probs)
    used = counts > 0
    ece = float(np.sum(counts[used] * np.abs(accuracy[used] - mean_conf[used])) / max(counts.sum(), 1))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.plot(mean_conf[used], accuracy[used], marker="o", label=f"model (ECE {ece:.3f})")
    ax.set(xlabel="confidence", ylabel="accuracy", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
