"""Batch inference throughput: pairs per second from raw DICOM, split by stage, and end to end.

Stages, each timed alone on the same pairs in one thread, as in a DataLoader worker (CPU milliseconds per
pair: both exams, PET and CT; per stage the fastest of ``--repeats`` runs; CPU time, not wall time, so
other load on the machine disturbs it less). The model stage is wall time with all threads / the GPU:
  io         the files' bytes off the disk (page cache): what any reader must pay
  parse      our DICOM reader around that: header elements -> pydicom Datasets (read minus io)
  decode     pixel data -> numpy arrays (``pixel_matrix``: frombuffer for uncompressed data)
  assemble   geometry checks, slice order, rescale into float32 volumes (minus decode)
  suv        PET volume -> SUV (QIBA body-weight factors)
  resample   CT onto the PET grid (trilinear; separable on axis-aligned grids)
  hand-over  volumes -> MONAI MetaTensors in memory (``--cache`` in infer also writes gzip NIfTI)
  transform  MONAI deterministic transforms of the pair (RAS, spacing, normalise, crop/pad, stack)
  model      the model's forward on batches of ready tensors (synchronised on CUDA), no data loading
"decode-bound share" = (io + decode) / data path. End to end: ``onconet infer`` (``infer()``) over the
whole export with ``--num-workers`` workers.

    python benchmarks/inference.py                         # 2-core CPU: 6 patients, demo model at 48x48x64
    python benchmarks/inference.py --spatial 128 128 128 --batch-size 16 --num-workers 12   # a GPU

Prints a markdown table (and writes it with ``--markdown``). The model stage on a GPU runs at the given
``--spatial`` with the demo configuration's BASED-3D sizes (``configs/demo.yaml``) unless ``--backbone``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from onconet.data.dicom import assemble_volume, pixel_matrix, read_datasets  # noqa: E402
from onconet.data.resample import resample_ct_to_pet  # noqa: E402
from onconet.data.study import choose_series  # noqa: E402
from onconet.data.suv import suv_from_volume  # noqa: E402
from onconet.inference.dataset import (  # noqa: E402
    freeze_imported_objects,
    nifti_equivalent,
    volume_transforms,
)
from onconet.inference.plan import plan_inference  # noqa: E402
from onconet.inference.runner import infer  # noqa: E402
from onconet.models.module import ResponseModule  # noqa: E402


def demo_model_settings() -> tuple[dict, dict]:
    """(model kwargs, data settings) of configs/demo.yaml."""
    config = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    kept = ("backbone", "backbone_kwargs", "fusion_heads", "fusion_feature_dim", "head_hidden")
    model = {k: v for k, v in config["model"].items() if k in kept}
    data = {k: config["data"][k] for k in ("spacing", "spatial_size", "suv_scaling")}
    return model, data


def write_checkpoint(path: Path, model_kwargs: dict, data: dict) -> ResponseModule:
    """An untrained model's checkpoint in the layout of ``onconet fit`` (throughput needs no training)."""
    torch.manual_seed(0)
    module = ResponseModule(**model_kwargs)
    data_settings = {"suv_max": 20.0, "hu_range": (-1000.0, 1000.0), **data}
    data_settings = {k: tuple(v) if isinstance(v, list) else v for k, v in data_settings.items()}
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "datamodule_hyper_parameters": data_settings,
        },
        path,
    )
    return module


STAGES = ("io", "parse", "decode", "assemble", "suv", "resample", "hand-over", "transform")


def time_stages(dicom: Path, data: dict, pairs: int) -> dict[str, float]:
    """Seconds per pair of the data stages, on the first ``pairs`` pairs (one process)."""
    totals = dict.fromkeys(STAGES, 0.0)
    jobs = plan_inference(dicom).jobs[:pairs]
    settings = {"suv_max": 20.0, "hu_range": (-1000.0, 1000.0), **data}
    transform = volume_transforms(settings)
    clock = time.process_time  # CPU time of this process: what a DataLoader worker spends, less disturbed
    for job in jobs:
        sample = {}
        for exam, study in (("baseline", job.baseline), ("followup", job.followup)):
            volumes = {}
            for series in choose_series(study):
                t0 = clock()
                for path in series.files:
                    with open(path, "rb") as handle:
                        handle.read()
                t1 = clock()
                datasets = read_datasets(series.files)
                t2 = clock()
                for ds in datasets:
                    pixel_matrix(ds)
                t3 = clock()
                volumes[series.modality] = assemble_volume(datasets)
                t4 = clock()
                totals["io"] += t1 - t0
                totals["parse"] += (t2 - t1) - (t1 - t0)
                totals["decode"] += t3 - t2
                totals["assemble"] += (t4 - t3) - (t3 - t2)
            t0 = clock()
            suv = suv_from_volume(volumes["PT"], "bw")
            t1 = clock()
            ct_on_pet = resample_ct_to_pet(
                volumes["CT"], suv.affine, suv.array.shape, suv.volume.frame_of_reference_uid
            )
            t2 = clock()
            sample[f"{exam}_suv"] = nifti_equivalent(suv.array, suv.affine)
            sample[f"{exam}_ct"] = nifti_equivalent(ct_on_pet, suv.affine)
            t3 = clock()
            totals["suv"] += t1 - t0
            totals["resample"] += t2 - t1
            totals["hand-over"] += t3 - t2
        t0 = clock()
        transform(sample)
        totals["transform"] += clock() - t0
    return {name: total / len(jobs) for name, total in totals.items()}


def time_model(module: ResponseModule, spatial: tuple[int, int, int], batch: int, device: str) -> float:
    """Seconds per pair of the model's forward on ready batches (after warm-up)."""
    module = module.to(device).eval()
    x = torch.rand(batch, 2, *spatial, device=device)
    with torch.inference_mode():
        for _ in range(2):
            module(x, x)
        if device == "cuda":
            torch.cuda.synchronize()
        repeats, started = 0, time.perf_counter()
        while repeats < 3 or time.perf_counter() - started < 2.0:
            module(x, x)
            repeats += 1
        if device == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - started) / (repeats * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dicom", type=Path, help="an existing export (default: a synthetic cohort)")
    parser.add_argument("--patients", type=int, default=6, help="synthetic patients (default 6)")
    parser.add_argument("--size", default="small", choices=("small", "full"), help="synthetic grid sizes")
    parser.add_argument("--spatial", type=int, nargs=3, help="model input size (default: the demo's)")
    parser.add_argument("--backbone", default=None, help="backbone name (default: the demo's based3d)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-workers", type=int, default=min(8, max(1, (os.cpu_count() or 2) - 1)))
    parser.add_argument("--stage-pairs", type=int, default=3, help="pairs timed stage by stage")
    parser.add_argument("--repeats", type=int, default=3, help="stage timings: the fastest of this many")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    torch.set_float32_matmul_precision("high")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model_kwargs, data = demo_model_settings()
    if args.spatial:
        data["spatial_size"] = list(args.spatial)
    if args.backbone:
        model_kwargs = {"backbone": args.backbone}
    model_kwargs["image_size"] = tuple(data["spatial_size"])
    work = Path(tempfile.mkdtemp(prefix="onconet_bench_infer_"))
    dicom = args.dicom
    if dicom is None:
        from onconet.data.synthetic import generate_cohort

        dicom = generate_cohort(work / "cohort", patients=args.patients, seed=0, size=args.size).dicom_dir
    ckpt = work / "model.ckpt"
    module = write_checkpoint(ckpt, model_kwargs, data)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker of infer, which also freezes the imports' objects
    freeze_imported_objects()
    time_stages(dicom, data, 1)  # warm-up: imports, page cache
    runs = [time_stages(dicom, data, args.stage_pairs) for _ in range(args.repeats)]
    stages = {name: min(run[name] for run in runs) for name in STAGES}  # the least disturbed run
    torch.set_num_threads(threads)
    stages["model"] = time_model(module, tuple(data["spatial_size"]), args.batch_size, device)
    started = time.perf_counter()
    summary = infer(dicom, ckpt, work / "out", batch_size=args.batch_size, num_workers=args.num_workers,
                    progress=False)  # fmt: skip
    end_to_end = time.perf_counter() - started
    data_total = sum(v for k, v in stages.items() if k != "model")
    decode_share = (stages["io"] + stages["decode"]) / data_total

    device_name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    lines = [
        f"### onconet infer on {device_name}: {summary.pairs_planned} pairs, "
        f"model {model_kwargs.get('backbone')} at {'x'.join(map(str, data['spatial_size']))}, "
        f"batch {args.batch_size}, {args.num_workers} workers",
        "",
        "| stage | ms / pair (data: CPU, 1 thread; model: wall) | pairs / s | share of data path |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in stages.items():
        share = f"{100 * seconds / data_total:.0f} %" if name != "model" else "-"
        lines.append(f"| {name} | {1000 * seconds:.1f} | {1 / seconds:.2f} | {share} |")
    lines += [
        f"| data path, one process (read..transform) | {1000 * data_total:.1f} | {1 / data_total:.2f} "
        "| 100 % |",
        f"| **end to end** (`infer`, incl. discovery {summary.pairs_planned} pairs) | "
        f"{1000 * end_to_end / summary.pairs_planned:.1f} | {summary.pairs_planned / end_to_end:.2f} | - |",
        "",
        f"Decode-bound share (io + decode) of the data path: {100 * decode_share:.0f} %.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
