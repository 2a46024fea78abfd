"""Response metrics with torchmetrics: macro one-vs-rest AUROC, change AUROC, accuracy, quadratic kappa.

The change AUROC scores "change" (response or progression) against "stable" with p(response) +
p(progression). An AUROC is undefined for a class that is absent (or the only one present); such classes
are left out of the macro mean, and a metric with nothing defined is NaN (torchmetrics would report 0).

Example:
    >>> import torch
    >>> metrics = ResponseMetrics()
    >>> probs = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    >>> metrics.update(probs, torch.tensor([0, 1, 2, 0]))
    >>> {k: round(v, 3) for k, v in metrics.compute().items()}
    {'macro_auroc': 1.0, 'change_auroc': 1.0, 'accuracy': 1.0, 'kappa_quadratic': 1.0, 'n': 4.0}
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torchmetrics.classification import (
    BinaryAUROC,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassCohenKappa,
    MulticlassStatScores,
)

from onconet.classes import RESPONSE_CLASSES

#: The metrics of the table printed after ``onconet test``, in order.
METRIC_NAMES: tuple[str, ...] = ("macro_auroc", "change_auroc", "accuracy", "kappa_quadratic")
STABLE_INDEX = RESPONSE_CLASSES.index("stable")


class ResponseMetrics(nn.Module):
    """Accumulates (probabilities, labels) over an epoch and computes the response metrics."""

    def __init__(self, num_classes: int = len(RESPONSE_CLASSES)) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.auroc = MulticlassAUROC(num_classes=num_classes, average=None)
        self.change_auroc = BinaryAUROC()
        self.accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.kappa = MulticlassCohenKappa(num_classes=num_classes, weights="quadratic")
        self.support = MulticlassStatScores(num_classes=num_classes, average=None)

    def update(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch: ``probs`` (B, num_classes) summing to 1, ``labels`` (B,) class indices."""
        probs = probs.float()
        self.auroc.update(probs, labels)
        changed = (labels != STABLE_INDEX).long()
        self.change_auroc.update(1.0 - probs[:, STABLE_INDEX], changed)
        self.accuracy.update(probs, labels)
        self.kappa.update(probs.argmax(dim=1), labels)
        self.support.update(probs, labels)

    def compute(self) -> dict[str, float]:
        """The metrics over everything added since the last reset (NaN where undefined)."""
        support = self.support.compute()[:, 4]  # tp, fp, tn, fn, support
        n = float(support.sum())
        if n == 0:
            return {**dict.fromkeys(METRIC_NAMES, math.nan), "n": 0.0}
        defined = (support > 0) & (support < n)
        stable = float(support[STABLE_INDEX])
        with warnings.catch_warnings():
            # torchmetrics warns about the undefined classes this method leaves out on purpose
            warnings.filterwarnings("ignore", message=".*(positive|negative) samples in targets.*")
            macro = float(self.auroc.compute()[defined].mean()) if defined.any() else math.nan
            change = float(self.change_auroc.compute()) if 0 < stable < n else math.nan
        return {
            "macro_auroc": macro,
            "change_auroc": change,
            "accuracy": float(self.accuracy.compute()),
            "kappa_quadratic": float(self.kappa.compute()),
            "n": n,
        }

    def reset(self) -> None:
        """Forget everything added."""
        for metric in (self.auroc, self.change_auroc, self.accuracy, self.kappa, self.support):
            metric.reset()


def metrics_markdown(values: dict[str, float], title: str = "test") -> str:
    """A Markdown table of the metrics (one row).

    Example:
        >>> print(metrics_markdown({"macro_auroc": 0.9, "change_auroc": 0.8, "accuracy": 0.7,
        ...                         "kappa_quadratic": 0.6, "n": 10}))
        | split | n | macro_auroc | change_auroc | accuracy | kappa_quadratic |
        |---|---|---|---|---|---|
        | test | 10 | 0.900 | 0.800 | 0.700 | 0.600 |
    """
    names = ["n", *METRIC_NAMES]
    cells = [str(int(values["n"])), *(f"{values[name]:.3f}" for name in METRIC_NAMES)]
    return "\n".join(
        [
            "| split | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
            f"| {title} | " + " | ".join(cells) + " |",
        ]
    )
