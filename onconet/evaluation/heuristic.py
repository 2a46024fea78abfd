"""``onconet heuristic``: the no-learning baseline of the comparison table.

Each exam is reduced to its whole-body SUVmax (the hottest voxel of the cached SUV volume, whatever
organ it lies in); the ratio r = f / b of the follow-up's to the baseline's value is classed by the
design's thresholds on the hottest lesion (response: f ≤ 0.7·b and b − f ≥ 0.8; progression: f ≥ 1.3·b
and f − b ≥ 0.8; otherwise stable). It is what a reader who trusts the hottest voxel would conclude:
right when the hottest voxel is the hottest lesion, wrong when the brain, bladder or heart is hotter.

Scores for AUROC are a softmax over per-class margins: how far the pair is past the response and the
progression thresholds (the smaller of the ratio and the absolute margin), against 0 for stable, over a
temperature. Their argmax is exactly the threshold class, so kappa and AUROC describe the same rule.

    onconet heuristic --cache CACHE [--pairs CACHE/pairs.csv] --out heuristic_predictions.csv

The CSV has the columns ``onconet evaluate`` reads (pair key, ``prob_<class>``) plus ``predicted`` and
the two SUVmax values.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from onconet.classes import (
    ABSOLUTE_CHANGE,
    PARTIAL_RATIO,
    PROGRESSION_RATIO,
    RESPONSE_CLASSES,
    response_category,
    response_class,
)
from onconet.data.cache import read_csv, read_nifti, write_csv
from onconet.errors import ConfigError

#: Temperatures of the score: a log-ratio margin of 0.1 and an absolute margin of 0.5 SUV weigh alike.
LOG_RATIO_SCALE = 0.1
ABSOLUTE_SCALE = 0.5
ID_COLUMNS = ("patient_id", "site", "baseline_study_uid", "followup_study_uid")
PROBABILITY_COLUMNS = tuple(f"prob_{name}" for name in RESPONSE_CLASSES)
OUTPUT_COLUMNS = (*ID_COLUMNS, "baseline_image_suvmax", "followup_image_suvmax", "predicted",
                  *PROBABILITY_COLUMNS)  # fmt: skip


def image_suvmax(path: str | Path) -> float:
    """The hottest voxel (SUV) of a cached SUV volume; raises ConfigError for an empty or non-finite one."""
    volume, _ = read_nifti(path)
    finite = volume[np.isfinite(volume)]
    if finite.size == 0:
        raise ConfigError(f"{path}: the SUV volume has no finite voxel; re-run onconet ingest")
    return float(finite.max())


def heuristic_scores(baseline: float, followup: float) -> np.ndarray:
    """Class probabilities (response, stable, progression) of one pair from its two image SUVmax values.

    Example:
        >>> p = heuristic_scores(10.0, 4.0)
        >>> RESPONSE_CLASSES[int(p.argmax())], round(float(p.sum()), 6)
        ('response', 1.0)
        >>> RESPONSE_CLASSES[int(heuristic_scores(10.0, 10.5).argmax())]
        'stable'
    """
    b, f = max(baseline, 1e-6), max(followup, 1e-6)
    log_ratio = math.log(f / b)
    response = min(
        (math.log(PARTIAL_RATIO) - log_ratio) / LOG_RATIO_SCALE, (b - f - ABSOLUTE_CHANGE) / ABSOLUTE_SCALE
    )
    progression = min(
        (log_ratio - math.log(PROGRESSION_RATIO)) / LOG_RATIO_SCALE,
        (f - b - ABSOLUTE_CHANGE) / ABSOLUTE_SCALE,
    )
    logits = np.array([response, 0.0, progression])
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def heuristic_class(baseline: float, followup: float) -> str:
    """The class the design's thresholds give to the two image SUVmax values (no reference, no new lesion)."""
    return response_class(response_category(baseline, followup))


def predict_pairs(cache: Path, pairs: Sequence[dict[str, str]]) -> list[dict[str, object]]:
    """One prediction row per pair of ``pairs`` (rows of pairs.csv whose image paths are under ``cache``)."""
    rows = []
    for line, pair in enumerate(pairs, start=2):
        values = []
        for column in ("baseline_pet", "followup_pet"):
            path = cache / (pair.get(column) or "")
            if not pair.get(column) or not path.is_file():
                raise ConfigError(
                    f"pairs.csv line {line}: {column} {pair.get(column)!r} is not a file under {cache}"
                )
            values.append(image_suvmax(path))
        b, f = values
        probs = heuristic_scores(b, f)
        row: dict[str, object] = {key: pair.get(key, "") for key in ID_COLUMNS}
        row.update(baseline_image_suvmax=f"{b:.4f}", followup_image_suvmax=f"{f:.4f}")
        row["predicted"] = heuristic_class(b, f)
        row.update({c: f"{p:.6f}" for c, p in zip(PROBABILITY_COLUMNS, probs, strict=True)})
        rows.append(row)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``onconet heuristic``."""
    parser.add_argument("--cache", type=Path, required=True, help="the NIfTI cache of onconet ingest")
    parser.add_argument("--pairs", type=Path, default=None, help="pairs.csv (default: CACHE/pairs.csv)")
    parser.add_argument("--site", default=None, help="only pairs of this site (pairs.csv 'site')")
    parser.add_argument("--out", type=Path, required=True, help="predictions CSV to write")


def run(args: argparse.Namespace) -> int:
    """Write the heuristic's predictions for every pair (of ``--site`` when given)."""
    pairs_path = args.pairs or args.cache / "pairs.csv"
    if not pairs_path.is_file():
        raise ConfigError(f"{pairs_path}: no such file (--pairs); run onconet ingest first")
    pairs = read_csv(pairs_path)
    if args.site:
        pairs = [p for p in pairs if p.get("site") == args.site]
    if not pairs:
        raise ConfigError(f"{pairs_path}: no pair{f' of site {args.site!r}' if args.site else ''}")
    rows = predict_pairs(args.cache, pairs)
    write_csv(args.out, rows, OUTPUT_COLUMNS)
    counts = {name: sum(r["predicted"] == name for r in rows) for name in RESPONSE_CLASSES}
    print(f"heuristic: {len(rows)} pairs → " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"written to {args.out}")
    return 0
