"""How well can the response class be read from measured SUVmax values? The ceiling of issue 6's table.

The cohort's class is PERCIST on the true hottest-lesion SUVmax of each exam (DESIGN.md): a model that
finds the hottest lesion still measures its SUVmax with an error (partial volume at the model's voxel
size, noise). This script gives each exam's true value a multiplicative error exp(N(0, sigma / sqrt 2)),
so the follow-up / baseline ratio has log-noise ``sigma``, and scores a reader who knows that error: its
class probabilities are PERCIST applied to draws around the measured values. New lesions count as found
unless ``--miss-new-lesions``. Without error (sigma 0) the rule reproduces truth.csv's labels exactly.

    python benchmarks/response_ceiling.py [--truth benchmarks/results/comparison/truth.csv]
        [--sigmas 0 0.05 0.1 0.2 0.3] [--draws 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from onconet.classes import RESPONSE_CLASSES  # noqa: E402
from onconet.evaluation.metrics import cohen_kappa, macro_ovr_auroc  # noqa: E402

RESPONSE, STABLE, PROGRESSION = (RESPONSE_CLASSES.index(c) for c in ("response", "stable", "progression"))


def percist_class(
    baseline: np.ndarray, followup: np.ndarray, reference: np.ndarray, new_lesion: np.ndarray
) -> np.ndarray:
    """DESIGN.md's response rule on hottest-lesion SUVmax values (arrays of one shape) -> class indices.

    Progression: a new lesion, or f ≥ 1.3·b and f − b ≥ 0.8. Response: no lesion above the reference at
    follow-up (complete), or f ≤ 0.7·b and b − f ≥ 0.8 (partial). Otherwise stable.
    """
    progression = new_lesion | ((followup >= 1.3 * baseline) & (followup - baseline >= 0.8))
    response = (followup <= reference) | ((followup <= 0.7 * baseline) & (baseline - followup >= 0.8))
    return np.where(progression, PROGRESSION, np.where(response, RESPONSE, STABLE))


def read_truth(path: Path) -> dict[str, np.ndarray]:
    """truth.csv -> arrays: baseline, followup, reference (SUV), new_lesion (bool), label (class index)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "baseline": np.array([float(r["baseline_suvmax"]) for r in rows]),
        "followup": np.array([float(r["followup_suvmax"]) for r in rows]),
        "reference": np.array([float(r["reference_suv"]) for r in rows]),
        "new_lesion": np.array([r["new_lesion"] == "1" for r in rows]),
        "label": np.array([RESPONSE_CLASSES.index(r["label"]) for r in rows]),
    }


def reader_probabilities(
    truth: dict[str, np.ndarray], sigma: float, draws: int, rng: np.random.Generator, find_new: bool = True
) -> np.ndarray:
    """(n, 3) class probabilities of a reader measuring each SUVmax with log-ratio noise ``sigma``."""
    n = len(truth["label"])
    new = truth["new_lesion"] if find_new else np.zeros(n, dtype=bool)
    if sigma == 0:
        return np.eye(len(RESPONSE_CLASSES))[
            percist_class(truth["baseline"], truth["followup"], truth["reference"], new)
        ]
    per_exam = sigma / np.sqrt(2.0)
    measured_b = truth["baseline"] * np.exp(rng.normal(0.0, per_exam, n))
    measured_f = truth["followup"] * np.exp(rng.normal(0.0, per_exam, n))
    # the reader's belief about the true values, given its measurement and its known error
    votes = np.zeros((n, len(RESPONSE_CLASSES)))
    for _ in range(draws):
        b = measured_b * np.exp(rng.normal(0.0, per_exam, n))
        f = measured_f * np.exp(rng.normal(0.0, per_exam, n))
        votes[np.arange(n), percist_class(b, f, truth["reference"], new)] += 1
    return votes / draws


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--truth", type=Path, default=REPO / "benchmarks" / "results" / "comparison" / "truth.csv"
    )
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5])
    parser.add_argument("--draws", type=int, default=200, help="draws per pair of the reader's belief")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--miss-new-lesions", action="store_true", help="the reader does not see new lesions")
    args = parser.parse_args(argv)
    truth = read_truth(args.truth)
    rng = np.random.default_rng(args.seed)
    seen = "missed" if args.miss_new_lesions else "found"
    print(f"{len(truth['label'])} pairs of {args.truth}; new lesions {seen}")
    print("| log-ratio noise sigma | macro AUROC | quadratic kappa | accuracy |")
    print("|---:|---:|---:|---:|")
    for sigma in args.sigmas:
        probs = reader_probabilities(truth, sigma, args.draws, rng, find_new=not args.miss_new_lesions)
        predicted = probs.argmax(axis=1)
        kappa = cohen_kappa(truth["label"], predicted, weights="quadratic")
        accuracy = float(np.mean(predicted == truth["label"]))
        print(
            f"| {sigma:.2f} | {macro_ovr_auroc(truth['label'], probs):.3f} | {kappa:.3f} | {accuracy:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
