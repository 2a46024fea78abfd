"""Multi-GPU scaling (issue 9): training and ``onconet infer`` throughput on 1 and N devices, in one run.

Training: the real ResponseModule (backbone sizes of ``--config``, default ``configs/based3d.yaml``) at
``--spatial`` on random tensors, Lightning ``Trainer.fit`` with DDP on N devices; pairs/s over all ranks
from the steps after ``--warmup`` (timed on rank 0, after a device synchronisation). Inference: ``python
-m onconet.cli infer --devices N`` over a synthetic cohort's raw DICOM (untrained checkpoint of the same
model), volumes handed over in memory (no NIfTI cache), so the whole data path is in the time; pairs/s
of the prediction loop, of infer's own summary (discovery to merged tables) and over the process's wall
time (with start-up).

Scaling efficiency = throughput on N devices / (N x throughput on 1 device).

Each measurement is its own process: Lightning re-launches the running script once per extra rank, so
the orchestrating process must not be the one that calls ``Trainer.fit``. NVLink multicast (NVLS) is kept
off (``NCCL_NVLS_ENABLE=0``) for every process.

    python benchmarks/ddp.py --markdown benchmarks/results/ddp.md                        # 2 GPUs
    python benchmarks/ddp.py --accelerator cpu --config configs/demo.yaml --spatial 32 32 32 \\
        --train-steps 3 --warmup 1 --patients 4 --num-workers 0 --infer-batch-size 2   # CPU rehearsal
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["NCCL_NVLS_ENABLE"] = "0"  # before torch starts NCCL; inherited by every child process

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import yaml  # noqa: E402

SUMMARY = re.compile(r"(\d+) run now \((\d+) predicted, (\d+) failed\) in ([\d.]+) s")
LOOP = re.compile(r"prediction loop: ([\d.]+) s")
MODEL_KEYS = ("backbone", "backbone_kwargs", "fusion_heads", "fusion_feature_dim", "head_hidden")


def model_settings(config: Path, spatial: list[int]) -> tuple[dict, dict]:
    """(ResponseModule kwargs, data settings) of a LightningCLI config, at ``spatial``."""
    settings = yaml.safe_load(config.read_text())
    model = {k: v for k, v in settings["model"].items() if k in MODEL_KEYS}
    model["image_size"] = tuple(spatial)
    data = {k: settings["data"][k] for k in ("spacing", "suv_scaling") if k in settings["data"]}
    data["spatial_size"] = list(spatial)
    data.setdefault("suv_scaling", "log1p")
    return model, data


# ----------------------------------------------------------------------------------------------------
# training worker (one process per rank, launched by Lightning)
# ----------------------------------------------------------------------------------------------------


class RandomPairs(torch.utils.data.Dataset):
    """Random (2, X, Y, Z) exam pairs with labels, in the layout of PairDataModule's batches.

    A few volumes are drawn once and reused, so the loader costs a copy, not a random draw, per sample.
    """

    def __init__(self, size: int, spatial: tuple[int, int, int], distinct: int = 4) -> None:
        self.size = size
        generator = torch.Generator().manual_seed(0)
        self.volumes = torch.rand(distinct, 2, 2, *spatial, generator=generator)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        pair = self.volumes[index % len(self.volumes)]
        return {
            "baseline": pair[0].clone(),
            "followup": pair[1].clone(),
            "label": index % 3,
            "weight": 1.0,
            "patient_id": f"P{index}",
            "site": "bench",
            "baseline_study_uid": f"{index}.1",
            "followup_study_uid": f"{index}.2",
        }


def train_worker(args: argparse.Namespace) -> None:
    """Fit ``warmup + train_steps`` steps on ``devices``; rank 0 writes pairs/s to ``--result``."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback

    from onconet.models.module import ResponseModule

    class StepTimer(Callback):
        def __init__(self) -> None:
            self.started: float | None = None
            self.elapsed = 0.0

        def _sync(self, trainer: pl.Trainer) -> None:
            if trainer.strategy.root_device.type == "cuda":
                torch.cuda.synchronize()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if trainer.global_step == args.warmup and self.started is None:
                self._sync(trainer)
                self.started = time.perf_counter()

        def on_train_end(self, trainer, pl_module) -> None:
            self._sync(trainer)
            if self.started is not None:
                self.elapsed = time.perf_counter() - self.started

    torch.set_float32_matmul_precision("high")
    model_kwargs, _ = model_settings(args.config, args.spatial)
    pl.seed_everything(0, verbose=False)
    module = ResponseModule(**model_kwargs)
    steps = args.warmup + args.train_steps
    dataset = RandomPairs(steps * args.batch_size * args.devices, tuple(args.spatial))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, num_workers=args.loader_workers, shuffle=False,
        pin_memory=args.accelerator != "cpu", persistent_workers=args.loader_workers > 0,
    )  # fmt: skip
    timer = StepTimer()
    trainer = pl.Trainer(
        accelerator=args.accelerator, devices=args.devices, strategy="ddp" if args.devices > 1 else "auto",
        max_steps=steps, precision="32-true", gradient_clip_val=1.0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[timer], default_root_dir=args.result.parent,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=loader)
    if trainer.global_rank == 0:
        pairs = args.train_steps * args.batch_size * trainer.world_size
        peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
        result = {"seconds": timer.elapsed, "pairs": pairs, "pairs_per_s": pairs / timer.elapsed,
                  "world_size": trainer.world_size, "peak_gib_rank0": peak}  # fmt: skip
        args.result.write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------------
# orchestration
# ----------------------------------------------------------------------------------------------------


def run_logged(command: list[str], log: Path) -> tuple[str, float]:
    """Run ``command`` (output to ``log``); its output and wall seconds. Raises with the log's tail."""
    started = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
    seconds = time.perf_counter() - started
    output = log.read_text()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{output[-3000:]}")
    return output, seconds


def measure_training(args: argparse.Namespace, devices: int, work: Path) -> dict:
    result = work / f"train_{devices}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--train-worker", "--devices", str(devices),
               "--result", str(result), *args.worker_argv]  # fmt: skip
    run_logged(command, work / f"train_{devices}.log")
    return json.loads(result.read_text())


def measure_inference(args: argparse.Namespace, devices: int, dicom: Path, ckpt: Path, work: Path) -> dict:
    out = work / f"infer_{devices}"
    command = [sys.executable, "-m", "onconet.cli", "infer", "--dicom", str(dicom), "--ckpt", str(ckpt),
               "--out", str(out), "--devices", str(devices),
               "--accelerator", args.accelerator, "--batch-size", str(args.infer_batch_size),
               "--num-workers", str(args.num_workers), "--no-progress"]  # fmt: skip
    output, wall = run_logged(command, work / f"infer_{devices}.log")
    found = SUMMARY.search(output)
    if found is None:
        raise RuntimeError(f"no summary line in {work / f'infer_{devices}.log'}:\n{output[-3000:]}")
    _attempted, predicted, failed, seconds = found.groups()
    loop = LOOP.search(output)
    if int(failed):
        raise RuntimeError(f"{failed} pairs failed in {out}/errors.csv")
    rows = (out / "predictions.csv").read_text().strip().splitlines()[1:]
    keys = [tuple(line.split(",")[1:3]) for line in rows]
    if len(set(keys)) != len(keys) or len(keys) != int(predicted):
        raise RuntimeError(f"{out}/predictions.csv: {len(keys)} rows for {predicted} predicted pairs")
    pairs = int(predicted)
    loop_s = float(loop.group(1)) if loop else float("nan")
    return {"pairs": pairs, "seconds": float(seconds), "pairs_per_s": pairs / float(seconds),
            "wall_s": wall, "wall_pairs_per_s": pairs / wall, "loop_s": loop_s,
            "loop_pairs_per_s": pairs / loop_s}  # fmt: skip


def device_name(accelerator: str) -> str:
    if accelerator != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({os.cpu_count()} cores)"


def markdown(args: argparse.Namespace, train: dict[int, dict], infer: dict[int, dict], command: str) -> str:
    """The results page: one row per measurement, speed-up and efficiency against 1 device."""
    counts = sorted(train)
    lines = [
        f"### DDP scaling on {device_name(args.accelerator)}, devices {', '.join(map(str, counts))}",
        "",
        f"Command: `{command}` (NCCL_NVLS_ENABLE=0).",
        f"Training: {args.config.name} model at {'x'.join(map(str, args.spatial))}, batch {args.batch_size} "
        f"per device, {args.train_steps} timed steps after {args.warmup} warm-up, random tensors. "
        f"Inference: `onconet infer` over {args.patients} synthetic patients' raw DICOM, batch "
        f"{args.infer_batch_size}, {args.num_workers} DataLoader workers per rank, volumes in memory.",
        "",
        "| workload | devices | pairs | seconds | pairs / s | speed-up | scaling efficiency |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    workloads = (
        ("training", train, "pairs_per_s", "seconds"),
        ("inference: prediction loop", infer, "loop_pairs_per_s", "loop_s"),
        ("inference: infer() incl. discovery, DDP start", infer, "pairs_per_s", "seconds"),
        ("inference: process wall time", infer, "wall_pairs_per_s", "wall_s"),
    )
    for name, table, key, seconds_key in workloads:
        base = table[counts[0]][key] / counts[0]
        for n in counts:
            row = table[n]
            seconds = row[seconds_key]
            speed_up = row[key] / table[counts[0]][key]
            lines.append(
                f"| {name} | {n} | {row['pairs']} | {seconds:.1f} | {row[key]:.2f} | {speed_up:.2f}x | "
                f"{100 * row[key] / (n * base):.0f} % |"
            )
    peak = train[counts[-1]].get("peak_gib_rank0", 0.0)
    if peak:
        lines += ["", f"Peak memory of rank 0 in training: {peak:.1f} GiB."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2], help="device counts (default 1 2)")
    parser.add_argument("--accelerator", default="auto", help="gpu, cpu or auto")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "based3d.yaml", help="model sizes")
    parser.add_argument("--spatial", type=int, nargs=3, default=[128, 128, 128])
    parser.add_argument("--batch-size", type=int, default=2, help="training pairs per device and step")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (compilation, autotune)")
    parser.add_argument("--loader-workers", type=int, default=2, help="training DataLoader workers per rank")
    parser.add_argument("--patients", type=int, default=96, help="synthetic patients for inference")
    parser.add_argument("--infer-batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=6, help="infer DataLoader workers per rank")
    parser.add_argument("--skip-inference", action="store_true")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--markdown", type=Path, help="write the results page here")
    # internal: one training measurement (re-launched per rank by Lightning)
    parser.add_argument("--train-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_worker:
        args.devices = args.devices[0]
    if args.accelerator == "auto":
        args.accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    args.worker_argv = [
        "--accelerator", args.accelerator, "--config", str(args.config), "--spatial", *map(str, args.spatial),
        "--batch-size", str(args.batch_size), "--train-steps", str(args.train_steps), "--warmup",
        str(args.warmup), "--loader-workers", str(args.loader_workers),
    ]  # fmt: skip
    return args


def main() -> None:
    args = parse_args()
    if args.train_worker:
        train_worker(args)
        return
    if args.accelerator != "cpu" and torch.cuda.device_count() < max(args.devices):
        raise SystemExit(f"{max(args.devices)} GPUs asked for, {torch.cuda.device_count()} visible")
    work = args.work or Path(tempfile.mkdtemp(prefix="onconet_bench_ddp_"))
    work.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/ddp.py " + " ".join(sys.argv[1:])
    train = {}
    for n in args.devices:
        train[n] = measure_training(args, n, work)
        print(f"training on {n}: {train[n]['pairs_per_s']:.2f} pairs/s", flush=True)
    infer = {}
    if not args.skip_inference:
        from onconet.data.synthetic import generate_cohort

        sys.path.insert(0, str(REPO / "benchmarks"))
        from inference import write_checkpoint  # benchmarks/inference.py: an untrained checkpoint

        dicom = generate_cohort(work / "cohort", patients=args.patients, seed=0, size="small").dicom_dir
        model_kwargs, data = model_settings(args.config, args.spatial)
        ckpt = work / "model.ckpt"
        write_checkpoint(ckpt, model_kwargs, data)
        for n in args.devices:
            infer[n] = measure_inference(args, n, dicom, ckpt, work)
            print(f"inference on {n}: {infer[n]['pairs_per_s']:.2f} pairs/s", flush=True)
    else:
        nan = float("nan")
        infer = {n: {"pairs": 0, "seconds": nan, "pairs_per_s": nan, "wall_s": nan, "wall_pairs_per_s": nan,
                     "loop_s": nan, "loop_pairs_per_s": nan} for n in args.devices}  # fmt: skip
    page = markdown(args, train, infer, command)
    print(page)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(page + "\n")
    print(f"(logs in {work})")


if __name__ == "__main__":
    main()
