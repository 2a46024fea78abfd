"""``onconet synth``: write a synthetic FDG PET/CT cohort (DICOM, reports, truth tables)."""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter

from onconet.data.synthetic.cohort import generate_cohort
from onconet.data.synthetic.sites import SITES, SIZES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``onconet synth``."""
    parser.add_argument("--out", required=True, help="output folder (dicom/, reports.jsonl, truth.csv, ...)")
    parser.add_argument("--patients", type=int, default=20, help="number of patients, two exams each")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    parser.add_argument(
        "--sites",
        default="internal,external",
        help=f"comma-separated sites, patients assigned in turn (known: {', '.join(SITES)})",
    )
    parser.add_argument(
        "--size", choices=SIZES, default="small", help="small: fast coarse grids; full: ~4 mm PET"
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")


def run(args: argparse.Namespace) -> int:
    """Generate the cohort and print a short summary (no patient identifiers)."""
    started = time.perf_counter()
    sites = tuple(s.strip() for s in args.sites.split(",") if s.strip())
    paths = generate_cohort(
        args.out, patients=args.patients, seed=args.seed, sites=sites, size=args.size, workers=args.workers
    )
    with paths.truth.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    categories = Counter(row["category"] for row in rows)
    labels = Counter(row["label"] for row in rows)
    per_site = Counter(row["site"] for row in rows)
    print(
        f"synthetic cohort: {len(rows)} patients, {2 * len(rows)} exams "
        f"({', '.join(f'{k} {v}' for k, v in sorted(per_site.items()))}) in {paths.root}"
    )
    print("  categories: " + ", ".join(f"{k} {categories[k]}" for k in ("CMR", "PMR", "SMD", "PMD")))
    print("  labels: " + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())))
    print(f"  seed {args.seed}, size {args.size}, {time.perf_counter() - started:.1f} s")
    return 0
