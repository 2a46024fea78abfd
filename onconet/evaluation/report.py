"""The evaluation report: predictions joined to truth, metrics per site with bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from onconet.classes import RESPONSE_CLASSES
from onconet.errors import ConfigError
from onconet.evaluation.bootstrap import bootstrap_intervals
from onconet.evaluation.metrics import classification_metrics

#: Columns of class probabilities in every predictions table, in the model's class order.
PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"prob_{name}" for name in RESPONSE_CLASSES)
PAIR_KEY: tuple[str, ...] = ("baseline_study_uid", "followup_study_uid")
REPORTED_METRICS: tuple[str, ...] = (
    "macro_auroc",
    "change_auroc",
    "accuracy",
    "kappa_linear",
    "kappa_quadratic",
)


def join_predictions(predictions: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Predictions with the true class (``y_true``) and site, one row per pair present in both tables.

    Raises:
        ConfigError: a table lacks the pair key, the probabilities or the truth label.
    """
    _require(predictions, [*PAIR_KEY, *PROBABILITY_COLUMNS], "predictions")
    _require(truth, [*PAIR_KEY, "label"], "truth")
    keep = [*PAIR_KEY, "label", *(["site"] if "site" in truth else [])]
    # The truth table is the one source of the label and site: a prediction file may carry its own copy.
    predictions = predictions.drop(columns=["site", "label", "y_true"], errors="ignore")
    joined = predictions.merge(truth[keep], on=list(PAIR_KEY))
    unknown = set(joined["label"]) - set(RESPONSE_CLASSES)
    if unknown:
        raise ConfigError(f"truth: unknown labels {sorted(unknown)}; expected {RESPONSE_CLASSES}")
    joined["y_true"] = joined["label"].map(RESPONSE_CLASSES.index)
    if "site" not in joined:
        joined["site"] = "all"
    return joined


def metrics_table(joined: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per site and one for all pairs: each metric with its 95 % bootstrap interval."""
    groups = [("all", joined)]
    if joined["site"].nunique() > 1:
        groups += list(joined.groupby("site", sort=True))
    rows = []
    for site, frame in groups:
        y_true = frame["y_true"].to_numpy()
        probs = frame[list(PROBABILITY_COLUMNS)].to_numpy(dtype=np.float64)
        values = classification_metrics(y_true, probs)
        intervals = bootstrap_intervals(y_true, probs, n_resamples=n_resamples, seed=seed)
        row: dict[str, object] = {"site": site, "n": int(values["n"])}
        for name in REPORTED_METRICS:
            low, high = intervals.get(name, (float("nan"), float("nan")))
            row[name] = values[name]
            row[f"{name}_low"] = low
            row[f"{name}_high"] = high
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    """The metrics table as Markdown, each metric written as ``value [low, high]``."""
    header = ["site", "n", *REPORTED_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [str(row["site"]), str(row["n"])]
        cells += [_with_interval(row[m], row[f"{m}_low"], row[f"{m}_high"]) for m in REPORTED_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _with_interval(value: float, low: float, high: float) -> str:
    if np.isnan(value):
        return "n/a"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{what} table lacks columns {missing}; it has {list(frame.columns)}")
