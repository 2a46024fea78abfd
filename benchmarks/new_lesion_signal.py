"""How visible are new lesions in the model's input? A no-learning check behind model.local_change_window.

In the comparison's external test set, almost every progression that BASED-3D missed had a new lesion while
the hottest lesion's SUVmax rose by less than 30 %: the new lesion was the only sign. Mean and max pooling
of the tokens cannot see a new lesion cooler than the hottest one. This script asks whether the signal is
there at the model's resolution: it reads every pair as the model does (the data module's transforms at
the given spacing and size, without augmentation), takes each exam's SUV-channel maximum per 4³ patch (the
patch maximum the tokens see), and scores, for each neighbourhood size ``w`` in tokens,

    new_w  = max over patches of (follow-up patch max − max of the baseline's patch maxima within w³)
    gone_w = the same with the exams swapped

(``w`` = 1: patch by patch; larger ``w`` tolerates misregistration), against the global
``max(follow-up) − max(baseline)``. It prints the AUROC of each score for new-lesion progressions whose
hottest lesion rose by less than 30 % against stable pairs, and of ``gone`` for responses against stable
pairs (truth.csv's categories).

    python benchmarks/new_lesion_signal.py --cache C --labels labels.csv --truth truth.csv
        [--spacing 6 6 7.5] [--spatial-size 64 64 128] [--windows 1 3 5]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from onconet.data.datamodule import PairDataModule  # noqa: E402
from onconet.evaluation.metrics import binary_auroc  # noqa: E402

PATCH = 4


def pair_scores(baseline: torch.Tensor, followup: torch.Tensor, windows: list[int]) -> dict[str, float]:
    """``new_w``, ``gone_w`` and ``max_change`` of one pair's SUV channels (1, X, Y, Z)."""
    peaks = [F.max_pool3d(v[None].float(), PATCH) for v in (baseline, followup)]
    scores = {"max_change": float(peaks[1].amax() - peaks[0].amax())}
    for w in windows:
        nearby = [F.max_pool3d(p, w, stride=1, padding=w // 2) for p in peaks]
        scores[f"new_{w}"] = float((peaks[1] - nearby[0]).amax())
        scores[f"gone_{w}"] = float((peaks[0] - nearby[1]).amax())
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="NIfTI cache of onconet ingest")
    parser.add_argument("--labels", required=True, help="weak labels (onconet label)")
    parser.add_argument("--truth", type=Path, required=True, help="the cohort's truth.csv")
    parser.add_argument("--spacing", type=float, nargs=3, default=[6.0, 6.0, 7.5])
    parser.add_argument("--spatial-size", type=int, nargs=3, default=[64, 64, 128])
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 3, 5])
    args = parser.parse_args(argv)
    data = PairDataModule(
        cache=args.cache, labels=args.labels, truth=str(args.truth), spacing=tuple(args.spacing),
        spatial_size=tuple(args.spatial_size), augment=False, cache_in_memory=False, num_workers=0,
    )  # fmt: skip
    data.setup()
    with open(args.truth, newline="") as handle:
        truth = {(r["baseline_study_uid"], r["followup_study_uid"]): r for r in csv.DictReader(handle)}
    dataset = data._dataset("predict")
    rows = []
    for i in range(len(dataset)):
        sample = dataset[i]
        record = truth[(sample["baseline_study_uid"], sample["followup_study_uid"])]
        rows.append((record, pair_scores(sample["baseline"][:1], sample["followup"][:1], args.windows)))

    def rise(record: dict) -> float:
        return float(record["followup_suvmax"]) / max(float(record["baseline_suvmax"]), 1e-6)

    def new_only_sign(record: dict) -> bool:
        return record["label"] == "progression" and record["new_lesion"] == "1" and rise(record) < 1.3

    new_only = [s for r, s in rows if new_only_sign(r)]
    stable = [s for r, s in rows if r["label"] == "stable"]
    response = [s for r, s in rows if r["label"] == "response"]

    def auroc(positives: list[dict], negatives: list[dict], key: str, sign: float = 1.0) -> float:
        positive = np.array([1] * len(positives) + [0] * len(negatives), dtype=bool)
        return binary_auroc(positive, sign * np.array([s[key] for s in positives + negatives]))

    print(f"{len(rows)} pairs: {len(new_only)} new-lesion progressions with the hottest rising < 30 %, "
          f"{len(stable)} stable, {len(response)} responses")  # fmt: skip
    print("| score | new-lesion progression vs stable | response vs stable |")
    print("|---|---:|---:|")
    print(f"| max(follow-up) − max(baseline) | {auroc(new_only, stable, 'max_change'):.3f} | "
          f"{auroc(response, stable, 'max_change', -1.0):.3f} (negated) |")  # fmt: skip
    for w in args.windows:
        print(f"| new / gone, {w}³ tokens | {auroc(new_only, stable, f'new_{w}'):.3f} | "
              f"{auroc(response, stable, f'gone_{w}'):.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
