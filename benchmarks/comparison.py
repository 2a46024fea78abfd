"""Issue 6's comparison table: every model trained on weak labels, tested on internal and external pairs.

Given an ingested cohort (cache + truth + weak labels), for each model config this script runs
``onconet fit`` (LightningCLI, the config with the overrides below) and ``onconet test`` on the
held-out patients: the external site and an ``--internal-test-fraction`` of the internal site's
patients. It splits each model's test predictions by site, adds the no-learning heuristic
(``onconet heuristic``'s rule, ratio of the exams' hottest voxels) on the same pairs, and scores every
prediction file with ``onconet evaluate`` (bootstrap 95 % intervals). It writes:

- ``OUT/comparison.md`` and ``OUT/comparison.csv``: the table, run settings, timings and the issue's goals;
- ``OUT/comparison/<model>/{internal,external}_predictions.csv`` for <model> in based3d, monarch3d,
  densenet121, vit_sdpa, based3d_gold, heuristic; ``OUT/comparison/truth.csv`` and ``labels.csv``;
- ``OUT/comparison/<model>/curves.csv``: each fit's per-epoch training accuracy and validation metrics.

Checkpoints, logs and plots stay in ``--work`` (not in git). Runs can share one GPU (``--parallel``).

Example (the H200 run; the CPU rehearsal uses ``--accelerator cpu`` and a tiny size):

    python benchmarks/comparison.py --cohort data/cohort --cache data/cache \\
        --labels benchmarks/results/comparison/labels.csv --work runs/comparison --parallel 5
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from onconet.classes import RESPONSE_CLASSES  # noqa: E402
from onconet.errors import OncoNetError  # noqa: E402

#: model name -> config; every model but ``based3d_gold`` trains on the weak labels.
MODELS: dict[str, str] = {
    "based3d": "configs/based3d.yaml",
    "monarch3d": "configs/monarch3d.yaml",
    "densenet121": "configs/densenet121.yaml",
    "vit_sdpa": "configs/vit_sdpa.yaml",
    "based3d_gold": "configs/based3d_gold.yaml",
}
HEURISTIC = "heuristic"
EFFICIENT = ("based3d", "monarch3d")
SITES = ("internal", "external")
METRICS = ("macro_auroc", "change_auroc", "kappa_quadratic", "accuracy")
PREDICTION_COLUMNS = ("patient_id", "site", "baseline_study_uid", "followup_study_uid", "predicted",
                      *(f"prob_{c}" for c in RESPONSE_CLASSES))  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=Path, required=True, help="synthetic cohort folder (truth.csv)")
    parser.add_argument("--cache", type=Path, required=True, help="NIfTI cache of onconet ingest")
    parser.add_argument("--labels", type=Path, required=True, help="weak labels (onconet label)")
    parser.add_argument("--work", type=Path, default=Path("runs/comparison"), help="runs, logs, plots")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of the models")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--parallel", type=int, default=1, help="models trained at the same time")
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--max-time", default="00:00:05:00", help="fit time limit (DD:HH:MM:SS)")
    parser.add_argument("--spacing", default="[6.0, 6.0, 7.5]", help="data.spacing (mm)")
    parser.add_argument("--spatial-size", default="[64, 64, 128]", help="data.spatial_size")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers per run")
    parser.add_argument("--internal-test-fraction", type=float, default=0.25)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--extra", action="append", default=[], help="one more LightningCLI option for every run (repeat)"
    )
    parser.add_argument("--note", default="", help="a line about the run for comparison.md (device, ...)")
    parser.add_argument(
        "--synthesize",
        type=int,
        default=0,
        help="first write a cohort of this many patients to --cohort (onconet synth) and ingest it into "
        "--cache, e.g. on a machine the cohort cannot be copied to (same seed: same UIDs as the labels)",
    )
    parser.add_argument("--sites", default="internal,internal,external", help="onconet synth --sites")
    parser.add_argument("--seed", type=int, default=0, help="onconet synth --seed")
    parser.add_argument(
        "--workers", type=int, default=None, help="processes of synth and ingest (default: all cores)"
    )
    return parser.parse_args(argv)


def data_options(args: argparse.Namespace) -> list[str]:
    """The LightningCLI data options shared by fit and test (same pairs, same split)."""
    return [
        "--data.cache", str(args.cache), "--data.labels", str(args.labels),
        "--data.truth", str(args.cohort / "truth.csv"),
        "--data.internal_test_fraction", str(args.internal_test_fraction),
        "--data.val_fraction", str(args.val_fraction),
        "--data.spacing", args.spacing, "--data.spatial_size", args.spatial_size,
        "--data.batch_size", str(args.batch_size), "--data.num_workers", str(args.num_workers),
        "--trainer.accelerator", args.accelerator, "--trainer.enable_progress_bar", "false",
        *args.extra,
    ]  # fmt: skip


def onconet(arguments: list[str], log: Path) -> float:
    """Run one ``onconet`` command with its output in ``log``; returns its wall time (s)."""
    started = time.perf_counter()
    with log.open("w") as handle:
        handle.write("$ onconet " + " ".join(arguments) + "\n")
        handle.flush()
        code = subprocess.run(
            [sys.executable, "-m", "onconet", *arguments], stdout=handle, stderr=subprocess.STDOUT, cwd=REPO
        ).returncode
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise OncoNetError(f"onconet {arguments[0]} failed (exit {code}); see {log}:\n{tail}")
    return time.perf_counter() - started


def train_and_test(model: str, args: argparse.Namespace) -> dict[str, object]:
    """Fit one model config and test its best checkpoint; returns timings and the predictions path."""
    work = args.work / model
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    config = str(REPO / MODELS[model])
    data = data_options(args)
    checkpoints = work / "checkpoints"
    fit = [
        "fit", "--config", config, *data, "--trainer.max_epochs", str(args.max_epochs),
        "--trainer.max_time", args.max_time, "--trainer.default_root_dir", str(work / "fit"),
        "--checkpoint.dirpath", str(checkpoints),
    ]  # fmt: skip
    print(f"[{model}] fit ...", flush=True)
    fit_s = onconet(fit, work / "fit.log")
    best = checkpoints / "best.ckpt"
    if not best.is_file():
        raise OncoNetError(f"[{model}] no {best} after fit; see {work / 'fit.log'}")
    test = ["test", "--config", config, *data, "--trainer.default_root_dir", str(work / "test"),
            "--ckpt_path", str(best)]  # fmt: skip
    print(f"[{model}] fit {fit_s:.0f} s; test ...", flush=True)
    test_s = onconet(test, work / "test.log")
    found = sorted((work / "test").glob("**/test_predictions.csv"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise OncoNetError(f"[{model}] onconet test wrote no test_predictions.csv; see {work / 'test.log'}")
    curves = training_curves(work / "fit")
    epochs = int(curves[-1]["epoch"]) if curves else ""
    best_at = best_epoch(checkpoints / "last.ckpt")
    print(f"[{model}] test {test_s:.0f} s; {epochs} epochs, best {best_at}", flush=True)
    return {
        "model": model, "fit_s": fit_s, "test_s": test_s, "epochs": epochs, "best_epoch": best_at,
        "predictions": found[-1], "curves": curves,
    }  # fmt: skip


def guarded(job, model: str, args: argparse.Namespace) -> dict[str, object]:
    """``job(model, args)``, or ``{"model": model, "error": ...}`` when it fails (printed)."""
    try:
        return job(model, args)
    except Exception as error:  # one model's failure must not lose the others' results
        print(f"[{model}] FAILED: {error}", flush=True)
        return {"model": model, "error": f"{type(error).__name__}: {error}"}


def best_epoch(checkpoint: Path) -> int | str:
    """The epoch (1-based) of the checkpoint ``last.ckpt`` copies (the best one), or "" if unreadable."""
    import torch

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:  # an unreadable checkpoint only costs this column
        return ""
    return int(state.get("epoch", -1)) + 1


#: Per-epoch scalars of a fit kept in ``<model>/curves.csv`` (validation is scored on gold labels).
CURVE_TAGS = ("train/accuracy", "val/loss", "val/suvmax_loss", "val/macro_auroc", "val/change_auroc",
              "val/accuracy", "val/kappa_quadratic")  # fmt: skip


def training_curves(log_dir: Path) -> list[dict[str, object]]:
    """One row per epoch of a fit (1-based ``epoch`` and :data:`CURVE_TAGS`) from its TensorBoard events.

    Empty when no event file is readable (no TensorBoard): only the curves are lost.
    """
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return []
    rows: dict[int, dict[str, object]] = {}
    for events in sorted(log_dir.glob("**/events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        tags = set(accumulator.Tags()["scalars"])
        if "epoch" not in tags:
            continue
        epoch_at_step = {e.step: int(e.value) for e in accumulator.Scalars("epoch")}
        for tag in (t for t in CURVE_TAGS if t in tags):
            for event in accumulator.Scalars(tag):
                epoch = epoch_at_step.get(event.step)
                if epoch is not None:
                    rows.setdefault(epoch, {"epoch": epoch + 1})[tag] = round(float(event.value), 4)
    return [rows[e] for e in sorted(rows)]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict[str, object]], columns: tuple[str, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def split_by_site(rows: list[dict[str, str]], folder: Path) -> dict[str, Path]:
    """``folder/{internal,external}_predictions.csv`` from one predictions table; returns the paths."""
    paths = {}
    for site in SITES:
        chosen = [r for r in rows if r["site"] == site]
        if not chosen:
            raise OncoNetError(f"no {site} test pair in the predictions for {folder.name}")
        paths[site] = folder / f"{site}_predictions.csv"
        write_rows(paths[site], chosen, PREDICTION_COLUMNS)
    return paths


def synthesize(args: argparse.Namespace) -> dict[str, float]:
    """``onconet synth`` then ``onconet ingest`` into --cohort / --cache; returns their wall times."""
    args.work.mkdir(parents=True, exist_ok=True)
    # onconet ingest reads with one process unless told otherwise: 900 patients took 294 s on the H200
    # machine that way, against ~70 s with its 16 cores
    workers = ["--workers", str(args.workers or os.cpu_count() or 1)]
    synth = ["synth", "--out", str(args.cohort), "--patients", str(args.synthesize), "--seed", str(args.seed),
             "--sites", args.sites, "--size", "small", *workers]  # fmt: skip
    ingest = ["ingest", "--dicom", str(args.cohort / "dicom"), "--cache", str(args.cache), *workers,
              "--no-progress"]  # fmt: skip
    timings = {"synth_s": onconet(synth, args.work / "synth.log")}
    print(f"synth {timings['synth_s']:.0f} s", flush=True)
    timings["ingest_s"] = onconet(ingest, args.work / "ingest.log")
    print(f"ingest {timings['ingest_s']:.0f} s", flush=True)
    return timings


def check_labels_match(truth: Path, labels: Path) -> None:
    """Raise unless the weak labels name exactly the cohort's pairs (a regenerated cohort must match)."""
    keys = [
        {(r["baseline_study_uid"], r["followup_study_uid"]) for r in read_rows(p)} for p in (truth, labels)
    ]
    if keys[0] != keys[1]:
        raise OncoNetError(
            f"{labels} and {truth} name different pairs ({len(keys[0] & keys[1])} shared of {len(keys[0])}): "
            "the labels come from another cohort (seed, sites or generator version)"
        )


def test_pairs(args: argparse.Namespace) -> list[dict[str, str]]:
    """The pairs.csv rows of the test split the models are tested on (same datamodule, same options)."""
    from onconet.data.cache import read_csv
    from onconet.data.datamodule import PairDataModule

    dm = PairDataModule(
        cache=str(args.cache), labels=str(args.labels), truth=str(args.cohort / "truth.csv"),
        internal_test_fraction=args.internal_test_fraction, val_fraction=args.val_fraction,
    )  # fmt: skip
    dm.setup("test")
    keys = {(s["baseline_study_uid"], s["followup_study_uid"]) for s in dm.splits.samples["test"]}
    return [
        p
        for p in read_csv(args.cache / "pairs.csv")
        if (p["baseline_study_uid"], p["followup_study_uid"]) in keys
    ]


def evaluate(predictions: Path, truth: Path, out: Path, bootstrap: int) -> dict[str, float]:
    """``onconet evaluate`` on one prediction file; returns its all-pairs row (value, low, high)."""
    from onconet.cli import main

    args = ["evaluate", "--predictions", str(predictions), "--truth", str(truth), "--out", str(out)]
    if main([*args, "--bootstrap", str(bootstrap)]) != 0:
        raise OncoNetError(f"onconet evaluate failed on {predictions}")
    row = next(r for r in read_rows(out / "metrics.csv") if r["site"] == "all")
    # evaluate leaves a metric blank when it is undefined (e.g. AUROC on a test set of one class)
    return {k: (float(v) if v != "" else float("nan")) if k != "site" else v for k, v in row.items()}


def cell(row: dict[str, float], metric: str) -> str:
    return f"{row[metric]:.3f} [{row[metric + '_low']:.3f}, {row[metric + '_high']:.3f}]"


def goals(table: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """The issue's goals, each with the figures that decide it."""
    lines = []
    ext = {m: sites["external"] for m, sites in table.items()}
    efficient = [m for m in EFFICIENT if m in ext]
    if not efficient:
        return ["no efficient backbone in this run: goals not assessed"]
    best = max(efficient, key=lambda m: ext[m]["macro_auroc"])
    auroc, kappa = ext[best]["macro_auroc"], ext[best]["kappa_quadratic"]

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    lines.append(f"- best efficient backbone (external macro AUROC): `{best}`")
    lines.append(f"- external macro AUROC ≥ 0.90: {auroc:.3f} → {verdict(auroc >= 0.90)}")
    lines.append(f"- external quadratic kappa ≥ 0.80: {kappa:.3f} → {verdict(kappa >= 0.80)}")
    if "based3d_gold" in ext:
        gold = ext["based3d_gold"]["macro_auroc"]
        lines.append(
            f"- within 0.02 AUROC of BASED-3D on gold labels ({gold:.3f}): gap {gold - auroc:+.3f} → "
            f"{verdict(auroc >= gold - 0.02)}"
        )
    if "densenet121" in ext:
        dense = ext["densenet121"]["macro_auroc"]
        lines.append(f"- at least as good as DenseNet121-3D ({dense:.3f}): {verdict(auroc >= dense)}")
    if HEURISTIC in ext:
        heur = ext[HEURISTIC]
        clearly = heur["macro_auroc_high"] < ext[best]["macro_auroc_low"]
        lines.append(
            f"- heuristic clearly worse (its 95 % interval below the best's): {cell(heur, 'macro_auroc')} "
            f"vs {cell(ext[best], 'macro_auroc')} → {verdict(clearly)}"
        )
    return lines


def write_results(
    args: argparse.Namespace,
    table: dict[str, dict[str, dict[str, float]]],
    runs: dict[str, dict[str, object]],
    counts: dict[str, int],
    prepared: dict[str, float],
    seconds: float,
    failed: dict[str, str] | None = None,
) -> None:
    """comparison.csv (one row per model and site) and comparison.md (table, settings, goals)."""
    rows = []
    for model, sites in table.items():
        for site, values in sites.items():
            row: dict[str, object] = {"model": model, "site": site, "n": int(values["n"])}
            for metric in METRICS:
                for suffix in ("", "_low", "_high"):
                    row[metric + suffix] = round(values[metric + suffix], 4)
            run = runs.get(model, {})
            row.update(
                fit_s=round(float(run.get("fit_s", 0.0)), 1),
                epochs=run.get("epochs", ""),
                best_epoch=run.get("best_epoch", ""),
            )
            rows.append(row)
    columns = (
        "model",
        "site",
        "n",
        *(m + s for m in METRICS for s in ("", "_low", "_high")),
        "fit_s",
        "epochs",
        "best_epoch",
    )
    write_rows(args.out / "comparison.csv", rows, columns)

    header = (
        "| model | labels | internal macro AUROC | external macro AUROC | internal change AUROC | "
        "external change AUROC | internal κ (quadratic) | external κ (quadratic) | fit (s) | epochs (best) |"
    )
    lines = [
        "# Comparison table (issue 6)", "",
        f"Synthetic cohort `{args.cohort}`: {counts['pairs']} pairs ({counts['internal']} internal, "
        f"{counts['external']} external patients). Test: all {counts['test_external']} external pairs and "
        f"{counts['test_internal']} internal pairs of held-out patients "
        f"(`--data.internal_test_fraction {args.internal_test_fraction}`); the other internal patients "
        f"train ({counts['train']} weakly labelled pairs) and validate ({counts['val']}, scored on gold). "
        "Metrics against the truth (category from the true image SUVs), 95 % bootstrap intervals "
        f"({args.bootstrap} resamples).", "",
        header, "|" + "---|" * 10,
    ]  # fmt: skip
    for model, sites in table.items():
        labels = "none" if model == HEURISTIC else "gold" if model.endswith("_gold") else "weak"
        run = runs.get(model, {})
        cells = [cell(sites[s], m) for m in ("macro_auroc", "change_auroc", "kappa_quadratic") for s in SITES]
        fit = f"{float(run['fit_s']):.0f}" if run else "—"
        epochs = f"{run.get('epochs', '')} ({run.get('best_epoch', '')})" if run else "—"
        lines.append(f"| {model} | {labels} | " + " | ".join(cells) + f" | {fit} | {epochs} |")
    for model, error in (failed or {}).items():
        lines.append(f"| {model} | failed: {error.strip().splitlines()[-1][:200]} |" + " |" * 8)
    lines += ["", "Goals:", *goals(table), "", "Settings:"]
    lines.append(
        f"`--spacing {args.spacing} --spatial-size {args.spatial_size} --batch-size {args.batch_size} "
        f"--max-epochs {args.max_epochs} --max-time {args.max_time} --parallel {args.parallel}`"
        + (f", extra: `{' '.join(args.extra)}`" if args.extra else "")
        + "".join(f"; {k[:-2]} {v:.0f} s" for k, v in prepared.items())
        + f"; whole script {seconds:.0f} s."
    )
    if args.note:
        lines.append(args.note)
    (args.out / "comparison.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {', '.join(MODELS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    prepared = synthesize(args) if args.synthesize else {}
    check_labels_match(args.cohort / "truth.csv", args.labels)
    results = args.out / "comparison"
    results.mkdir(parents=True, exist_ok=True)
    truth = args.cohort / "truth.csv"
    shutil.copyfile(truth, results / "truth.csv")
    if args.labels.resolve() != (results / "labels.csv").resolve():
        shutil.copyfile(args.labels, results / "labels.csv")

    pairs = test_pairs(args)
    from onconet.data.cache import read_csv
    from onconet.data.datamodule import PairDataModule
    from onconet.evaluation.heuristic import predict_pairs

    def heuristic() -> None:
        rows = [{k: str(v) for k, v in r.items()} for r in predict_pairs(args.cache, pairs)]
        split_by_site(rows, results / HEURISTIC)

    # The heuristic reads the cache while the models train; a model that fails is reported, not fatal.
    with ThreadPoolExecutor(max_workers=max(1, args.parallel) + 1) as pool:
        heuristic_done = pool.submit(heuristic)
        runs = dict(zip(models, pool.map(lambda m: guarded(train_and_test, m, args), models), strict=True))
        heuristic_done.result()
    failed = {m: str(r["error"]) for m, r in runs.items() if "error" in r}
    runs = {m: r for m, r in runs.items() if m not in failed}
    for model, run in runs.items():
        split_by_site(read_rows(Path(run["predictions"])), results / model)
        if run["curves"]:
            write_rows(results / model / "curves.csv", run["curves"], ("epoch", *CURVE_TAGS))

    table: dict[str, dict[str, dict[str, float]]] = {}
    for model in [*runs, HEURISTIC]:
        folder = results / model
        table[model] = {
            site: evaluate(
                folder / f"{site}_predictions.csv", truth, args.work / "eval" / model / site, args.bootstrap
            )
            for site in SITES
        }
    dm = PairDataModule(
        cache=str(args.cache), labels=str(args.labels), truth=str(truth),
        internal_test_fraction=args.internal_test_fraction, val_fraction=args.val_fraction,
    )  # fmt: skip
    dm.setup("fit")
    all_pairs = read_csv(args.cache / "pairs.csv")
    counts = {
        "pairs": len(all_pairs),
        **{site: len({p["patient_id"] for p in all_pairs if p["site"] == site}) for site in SITES},
        **{f"test_{site}": sum(p["site"] == site for p in pairs) for site in SITES},
        "train": len(dm.splits.samples["train"]),
        "val": len(dm.splits.samples["val"]),
    }
    write_results(args, table, runs, counts, prepared, time.perf_counter() - started, failed)
    (args.work / "runs.json").write_text(
        json.dumps({m: {k: str(v) for k, v in r.items()} for m, r in runs.items()})
    )
    print((args.out / "comparison.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
