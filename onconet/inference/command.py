"""``onconet infer``: batch inference over DICOM folders with a trained checkpoint.

    onconet infer --dicom DIR --ckpt model.ckpt --out OUTDIR [--pairs consecutive|first-last]
                  [--devices N] [--batch-size B] [--num-workers W] [--cache DIR] [--figures]

Writes ``OUTDIR/predictions.csv`` (one row per pair: patient, both study UIDs and dates, site and
scanners, ``prob_response``, ``prob_stable``, ``prob_progression``, ``predicted``, the checkpoint's sha256
and the package version) and ``OUTDIR/errors.csv`` (every file, series, study, patient or pair left out,
with the reason and the file). A re-run with the same checkpoint predicts only the missing pairs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from onconet.data.pairs import PAIR_MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``onconet infer`` options."""
    parser.add_argument(
        "--dicom", required=True, type=Path, help="folder tree of DICOM files (a PACS export)"
    )
    parser.add_argument("--ckpt", required=True, type=Path, help="checkpoint of `onconet fit` (.ckpt)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (predictions.csv, errors.csv)")
    parser.add_argument("--pairs", default="consecutive", choices=PAIR_MODES, help="how to pair studies")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (default)")
    parser.add_argument("--devices", type=int, default=1, help="devices; more than 1 runs DDP (default 1)")
    parser.add_argument("--batch-size", type=int, default=2, help="pairs per batch (default 2)")
    parser.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="DataLoader workers reading DICOM per device (default: the device's share of the CPU cores "
        "but one, for the process that batches and runs the model; 0: in process)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="also keep the SUV/CT volumes as a NIfTI cache here, reused by re-runs (default: none, the "
        "volumes go to the model in memory)",
    )
    parser.add_argument("--figures", action="store_true", help="a coronal MIP PNG per pair in OUTDIR/figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_workers(devices: int = 1) -> int:
    """``--num-workers`` when not given: per rank (``devices`` of them), its share of the cores but one
    loads pairs (the loading is CPU-bound; the rank's own process batches them and drives the model)."""
    from onconet.data.discovery import rank_cpus

    return max(1, rank_cpus(devices) - 1)


def run(args: argparse.Namespace) -> int:
    """Run the inference; exit code 0 when predictions.csv holds at least one pair, else 1."""
    from onconet.inference.runner import infer

    summary = infer(
        args.dicom,
        args.ckpt,
        args.out,
        pairs_mode=args.pairs,
        accelerator=args.accelerator,
        devices=args.devices,
        batch_size=args.batch_size,
        num_workers=default_workers(args.devices) if args.num_workers is None else args.num_workers,
        figures=args.figures,
        cache_dir=args.cache,
        progress=not args.no_progress,
    )
    if summary.rank != 0:
        return 0
    for line in summary.lines():
        print(line)
    return 0 if summary.predictions else 1
