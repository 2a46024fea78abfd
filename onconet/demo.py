"""``make demo``: the main job end to end on the embedded synthetic cohort.

synth → ingest → label → fit (demo config) → test on the external site → evaluate. Each stage runs as its
own ``onconet`` command, exactly as a user would type it, and the stage's command line and time are printed.

Example:
    python -m onconet.demo --out demo_out --patients 24
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from onconet.errors import OncoNetError


def stages(out: Path, patients: int, seed: int, config: Path) -> list[tuple[str, list[str]]]:
    """The demo's stages as (title, onconet arguments)."""
    cohort, cache, runs = out / "cohort", out / "cache", out / "runs"
    data = ["--data.cache", str(cache), "--data.labels", str(out / "labels.csv")]
    checkpoint = runs / "checkpoints" / "final.ckpt"
    return [
        (
            "synthesise the cohort (DICOM PET/CT, reports, truth)",
            ["synth", "--out", str(cohort), "--patients", str(patients), "--seed", str(seed),
             "--sites", "internal,external", "--size", "small"],
        ),
        (
            "ingest: DICOM → SUV / CT on the PET grid → NIfTI cache, pairs",
            ["ingest", "--dicom", str(cohort / "dicom"), "--cache", str(cache), "--workers", "2",
             "--no-progress"],
        ),
        (
            "weak labels from the reports (agreement with the truth printed)",
            ["label", "--reports", str(cohort / "reports.jsonl"), "--pairs", str(cache / "pairs.csv"),
             "--truth", str(cohort / "truth.csv"), "--out", str(out / "labels.csv")],
        ),
        (
            "train the demo model on the internal site's weak labels",
            ["fit", "--config", str(config), *data, "--trainer.default_root_dir", str(runs / "fit"),
             "--checkpoint.dirpath", str(checkpoint.parent)],
        ),
        (
            "test on the held-out external site",
            ["test", "--config", str(config), *data, "--trainer.default_root_dir", str(runs / "test"),
             "--ckpt_path", str(checkpoint)],
        ),
    ]  # fmt: skip


def run_stage(title: str, arguments: list[str]) -> float:
    """Run one ``onconet`` command; returns its wall time in seconds."""
    command = [sys.executable, "-m", "onconet", *arguments]
    print(f"\n=== {title}\n$ onconet {shlex.join(arguments)}", flush=True)
    start = time.perf_counter()
    if subprocess.run(command).returncode != 0:
        raise OncoNetError(f"demo stage failed: onconet {shlex.join(arguments)}")
    return time.perf_counter() - start


def newest(pattern: str, root: Path) -> Path:
    """The most recently written file matching ``pattern`` under ``root``."""
    found = sorted(root.glob(pattern), key=lambda path: path.stat().st_mtime)
    if not found:
        raise OncoNetError(f"demo: no {pattern} under {root}")
    return found[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m onconet.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument("--patients", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--config", type=Path, default=Path(__file__).resolve().parents[1] / "configs/demo.yaml"
    )
    args = parser.parse_args(argv)
    timings = []
    try:
        for title, arguments in stages(args.out, args.patients, args.seed, args.config):
            timings.append((arguments[0], run_stage(title, arguments)))
        predictions = newest("**/test_predictions.csv", args.out / "runs" / "test")
        truth = args.out / "cohort" / "truth.csv"
        evaluate = ["evaluate", "--predictions", str(predictions), "--truth", str(truth)]
        evaluate += ["--out", str(args.out / "evaluation")]
        timings.append(("evaluate", run_stage("metrics with bootstrap 95 % intervals, plots", evaluate)))
    except OncoNetError as err:
        print(f"\n{err}", file=sys.stderr)
        return 1
    print("\n=== demo finished: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings))
    print(f"outputs in {args.out}/: cohort/, cache/, labels.csv, runs/, evaluation/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
