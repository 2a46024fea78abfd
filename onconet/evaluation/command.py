"""``onconet evaluate``: metrics table (CSV + Markdown) and plots of predictions against truth."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from onconet.errors import ConfigError
from onconet.evaluation.plots import plot_calibration, plot_confusion, plot_roc
from onconet.evaluation.report import PROBABILITY_COLUMNS, join_predictions, metrics_table, to_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--predictions", type=Path, required=True, help="predictions.csv (prob_* columns)")
    parser.add_argument("--truth", type=Path, required=True, help="truth.csv (label per pair)")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics.csv/.md and plots")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    predictions, truth = _read_csv(args.predictions), _read_csv(args.truth)
    joined = join_predictions(predictions, truth)
    if joined.empty:
        raise ConfigError(f"no pair of {args.predictions} is in {args.truth} (joined on both study UIDs)")
    table = metrics_table(joined, n_resamples=args.bootstrap, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "metrics.csv", index=False)
    markdown = to_markdown(table)
    (args.out / "metrics.md").write_text(markdown)
    y_true = joined["y_true"].to_numpy()
    probs = joined[list(PROBABILITY_COLUMNS)].to_numpy(dtype=float)
    plot_roc(y_true, probs, args.out / "roc.png")
    plot_confusion(y_true, probs.argmax(axis=1), args.out / "confusion.png")
    plot_calibration(y_true, probs, args.out / "calibration.png")
    print(f"{len(joined)} pairs evaluated ({len(predictions) - len(joined)} predictions without truth)")
    print(markdown, end="")
    print(f"written to {args.out}/ (metrics.csv, metrics.md, roc.png, confusion.png, calibration.png)")
    return 0


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return pd.read_csv(path, dtype={"baseline_study_uid": str, "followup_study_uid": str})
