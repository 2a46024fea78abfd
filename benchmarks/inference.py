"""Batch inference throughput: pairs per second from raw DICOM, split by stage, and end to end.

Stages, each timed alone on the same pairs in one thread, as in a DataLoader worker (CPU milliseconds per
pair: both exams, PET and CT; per stage the fastest of ``--repeats`` runs; CPU time, not wall time, so
other load on the machine disturbs it less). The model stage is wall time with all threads / the GPU:
  io         the files' bytes off the disk (page cache): what any reader must pay
  parse      our series reader around that: header elements -> SliceHeaders (``read_series`` minus io)
  decode     pixel data -> numpy arrays (``pixel_matrix``: frombuffer for uncompressed data)
  assemble   geometry checks, slice order, rescale into float32 volumes (minus decode)
  suv        PET volume -> SUV (QIBA body-weight factors)
  resample   CT onto the PET grid (trilinear; separable on axis-aligned grids)
  hand-over  volumes -> MONAI MetaTensors in memory (``--cache`` in infer also writes gzip NIfTI)
  transform  the deterministic transforms of the pair in the worker (RAS + spacing + crop in one
             separable step, normalise; infer pads and stacks on the device, older code in the worker)
  model      the model's forward on batches of ready tensors (synchronised on CUDA), no data loading

"Bound by decoding" is measured against a floor taken in the same run: the byte floor of a pair reads the
same files, takes their pixel bytes with ``numpy.frombuffer`` at offsets known in advance and rescales
them into float32 stacks: what any reader of these files must do. Reading DICOM (io + parse + decode +
assemble) is reported as a multiple of that floor, and what it spends above the floor (Python work per
slice) as a share of the data path. ``--compressed-pairs N`` re-encodes N pairs RLE Lossless (pydicom's
own encoder and decoder, no extra packages) and times the same read stages on them, where decoding is real
work. End to end: ``onconet infer`` (``infer()``) over the whole export with ``--num-workers`` workers.

    python benchmarks/inference.py                         # 2-core CPU: 6 patients, demo model at 32x32x64
    python benchmarks/inference.py --spatial 128 128 128 --batch-size 16 --num-workers 12 --patients 192

On a GPU machine, give ``--patients`` a few hundred: end to end runs ``infer`` over every pair of the
cohort (one pair per patient), and with a few dozen the workers' start-up and discovery weigh.

Prints a markdown table (and writes it with ``--markdown``). The model stage on a GPU runs at the given
``--spatial`` with the demo configuration's BASED-3D sizes (``configs/demo.yaml``) unless ``--backbone``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from onconet.data.dicom import assemble_volume, pixel_matrix, read_series  # noqa: E402
from onconet.data.discovery import _sorted_files, group_runs, read_runs, split_tree  # noqa: E402
from onconet.data.header import header_number  # noqa: E402
from onconet.data.resample import resample_ct_to_pet  # noqa: E402
from onconet.data.slices import walk  # noqa: E402
from onconet.data.study import choose_series  # noqa: E402
from onconet.data.suv import suv_from_volume  # noqa: E402
from onconet.inference.dataset import (  # noqa: E402
    DicomPairDataset,
    freeze_imported_objects,
    nifti_equivalent,
    volume_transforms,
)
from onconet.inference.plan import PairJob, plan_inference  # noqa: E402
from onconet.inference.runner import InferenceSummary, infer  # noqa: E402
from onconet.models.module import ResponseModule  # noqa: E402

try:  # infer's discovery processes (older trees: one per DataLoader worker)
    from onconet.inference.plan import discovery_processes
except ImportError:  # before/after runs of older commits with this script

    def discovery_processes(num_workers: int) -> int:
        return max(1, num_workers)


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
READ_STAGES = STAGES[:4]


def time_parse_and_decode(files: list[Path], totals: dict[str, float]) -> tuple[list, float]:
    """Read one series' files, headers and pixels, adding io, parse and decode CPU seconds to ``totals``.

    Returns the slices and the decode time (``assemble_volume`` decodes again; the caller subtracts it).
    """
    clock = time.process_time
    t0 = clock()
    for path in files:
        with open(path, "rb") as handle:
            handle.read()
    t1 = clock()
    slices = read_series(files)
    t2 = clock()
    for ds in slices:
        pixel_matrix(ds)
    t3 = clock()
    totals["io"] += t1 - t0
    totals["parse"] += (t2 - t1) - (t1 - t0)
    totals["decode"] += t3 - t2
    return slices, t3 - t2


def time_reading(files: list[Path], totals: dict[str, float]) -> object:
    """Read one series the way ``onconet infer`` does, adding the read stages' CPU seconds to ``totals``."""
    slices, decode = time_parse_and_decode(files, totals)
    t3 = time.process_time()
    volume = assemble_volume(slices)
    totals["assemble"] += (time.process_time() - t3) - decode
    return volume


def worker_transforms(settings: dict):
    """The transforms a DataLoader worker of ``infer`` runs: without the padding and stacking where infer
    pads on the device (``crop_transforms``), else the whole chain (older code, for before/after runs)."""
    try:
        from onconet.inference.dataset import crop_transforms
    except ImportError:
        return volume_transforms(settings)
    return crop_transforms(settings)[0]


def time_stages(jobs: list[PairJob], data: dict, pairs: int) -> dict[str, float]:
    """Seconds per pair of the data stages, on the first ``pairs`` pairs (one process)."""
    totals = dict.fromkeys(STAGES, 0.0)
    jobs = jobs[:pairs]
    settings = {"suv_max": 20.0, "hu_range": (-1000.0, 1000.0), **data}
    transform = worker_transforms(settings)
    clock = time.process_time  # CPU time of this process: what a DataLoader worker spends, less disturbed
    for job in jobs:
        sample = {}
        for exam, study in (("baseline", job.baseline), ("followup", job.followup)):
            volumes = {series.modality: time_reading(series.files, totals) for series in choose_series(study)}
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


def floor_plan(jobs: list[PairJob], pairs: int) -> list[list[tuple]]:
    """Per series of the first ``pairs`` pairs, in slice order: ``(path, pixel offset, dtype, rows, columns,
    slope, intercept)``, found beforehand so that :func:`time_floor` does nothing but the unavoidable."""
    plans = []
    for job in jobs[:pairs]:
        for study in (job.baseline, job.followup):
            for series in choose_series(study):
                plan = []
                for ds in assemble_volume(read_series(series.files)).datasets:  # in slice order
                    walked = walk(Path(ds.filename).read_bytes())
                    if walked is None:
                        raise SystemExit(f"{ds.filename}: not plain little-endian DICOM; no byte floor")
                    stored = pixel_matrix(read_series([ds.filename])[0])  # dtype and shape as decoded
                    slope = header_number(ds, "RescaleSlope")
                    intercept = header_number(ds, "RescaleIntercept") or 0.0
                    offset = walked[0][-1][2]  # where the pixel data element's value starts
                    plan.append((ds.filename, offset, stored.dtype, *stored.shape, slope or 1.0, intercept))
                plans.append(plan)
    return plans


def time_floor(plans: list[list[tuple]], pairs: int) -> float:
    """CPU seconds per pair of the byte floor: read each file, ``frombuffer`` its pixels, rescale."""
    clock = time.process_time
    t0 = clock()
    for plan in plans:
        rows, cols = plan[0][3], plan[0][4]
        stack = np.empty((len(plan), rows, cols), dtype=np.float32)
        for k, (path, offset, dtype, rows, cols, slope, intercept) in enumerate(plan):
            with open(path, "rb") as handle:
                data = handle.read()
            pixels = np.frombuffer(data, dtype=dtype, count=rows * cols, offset=offset).reshape(rows, cols)
            np.multiply(pixels, slope, out=stack[k], casting="unsafe")
            if intercept:
                stack[k] += intercept
    return (clock() - t0) / pairs


def _rle_copy(job: tuple[Path, Path]) -> None:
    import pydicom
    from pydicom.uid import RLELossless

    source, target = job
    ds = pydicom.dcmread(source)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)


def compressed_copy(dicom: Path, jobs: list[PairJob], out: Path, pairs: int, workers: int) -> Path:
    """The PET and CT series of the first ``pairs`` pairs re-encoded RLE Lossless (pydicom's encoder)."""
    copies = []
    for job in jobs[:pairs]:
        for study in (job.baseline, job.followup):
            for series in choose_series(study):
                copies += [(path, out / path.relative_to(dicom)) for path in series.files]
    with ProcessPoolExecutor(max(1, workers)) as pool:
        list(pool.map(_rle_copy, copies, chunksize=16))
    return out


def time_compressed(dicom: Path, jobs: list[PairJob], copy: Path, pairs: int) -> dict[str, float]:
    """Seconds per pair of the read stages on the compressed copies of the first ``pairs`` pairs.

    io, parse and decode are timed on the copies; assemble (checks and rescale, the same work once the
    pixels are decoded) on the originals, since subtracting a second decode inside ``assemble_volume``
    from its time would leave mostly noise.
    """
    totals = dict.fromkeys(READ_STAGES, 0.0)
    for job in jobs[:pairs]:
        for study in (job.baseline, job.followup):
            for series in choose_series(study):
                time_parse_and_decode([copy / path.relative_to(dicom) for path in series.files], totals)
                plain = dict.fromkeys(READ_STAGES, 0.0)
                time_reading(series.files, plain)
                totals["assemble"] += plain["assemble"]
    return {name: total / pairs for name, total in totals.items()}


def time_discovery_parts(dicom: Path, subtrees: int = 16) -> tuple[float, float, int]:
    """Per file, in this process: the header reading of discovery (``read_runs`` over the files of the
    first ``subtrees`` subtrees, as one worker task does) and the caller's grouping of its runs; seconds,
    and the files in the whole tree."""
    tasks = split_tree(dicom, 1)
    files = [f for path, is_dir in tasks[:subtrees] for f in (_sorted_files(path) if is_dir else [path])]
    read_runs(files[:200])  # warm-up
    t0 = time.perf_counter()
    runs = read_runs(files)
    t1 = time.perf_counter()
    group_runs(runs)
    t2 = time.perf_counter()
    total = sum(len(names) for _where, _dirs, names in os.walk(dicom))
    return (t1 - t0) / len(files), (t2 - t1) / len(files), total


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


_PARALLEL_DATASET: DicomPairDataset | None = None  # inherited by the forked processes


def _one_thread() -> None:
    torch.set_num_threads(1)  # as DataLoader workers
    freeze_imported_objects()


def _load_pairs(indices: list[int]) -> tuple[float, int]:
    """Wall seconds to load these pairs through infer's dataset, and how many loaded."""
    started = time.perf_counter()
    for index in indices:
        _PARALLEL_DATASET[index]  # type: ignore[index]
    return time.perf_counter() - started, len(indices)


def time_parallel_data_path(jobs: list[PairJob], settings: dict, workers: int, per_worker: int) -> float:
    """Wall seconds per pair of one worker when ``workers`` processes load pairs at the same time.

    Each process loads its own ``per_worker`` pairs through ``DicomPairDataset`` (read..transform, what a
    DataLoader worker of infer does), so this is the data path under the memory and cache contention of
    a full run, without the hand-over to the main process.
    """
    global _PARALLEL_DATASET
    _PARALLEL_DATASET = DicomPairDataset(jobs, None, settings)
    lanes = max(1, workers)
    chunks = [[(k * per_worker + i) % len(jobs) for i in range(per_worker)] for k in range(lanes)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(lanes, mp_context=context, initializer=_one_thread) as pool:
        list(pool.map(_load_pairs, [[k % len(jobs)] for k in range(lanes)]))  # warm-up: imports, caches
        results = list(pool.map(_load_pairs, chunks))
    _PARALLEL_DATASET = None
    return sum(seconds for seconds, _n in results) / sum(n for _s, n in results)


def handover_shapes(jobs: list[PairJob], settings: dict) -> list[tuple[int, ...]]:
    """The shapes of the tensors a worker of ``infer`` hands over for the first pair: the unpadded volumes
    of both exams, or (older code) both padded (2, X, Y, Z) model inputs."""
    item = DicomPairDataset(jobs[:1], None, settings)[0]
    tensors = [t for exam in ("baseline", "followup") for t in (item[exam] if isinstance(item[exam], tuple)
               else [item[exam]])]  # fmt: skip
    return [tuple(t.shape) for t in tensors]


def time_host_to_device(shapes: list[tuple[int, ...]], repeats: int = 10) -> dict[str, float]:
    """Seconds per pair to bring what a worker hands over (float32 tensors of ``shapes``) to the GPU.

    ``pageable``: ``.to("cuda")`` from shared memory, as a worker hands a pair over; ``pin copy``: the copy
    into page-locked memory that the loader's pin thread makes (CPU); ``pinned``: the DMA from there.
    Median of ``repeats`` after a warm-up, each synchronised.
    """
    pair = [torch.rand(*shape).share_memory_() for shape in shapes]
    pinned = [torch.empty_like(t).pin_memory() for t in pair]

    def timed(step) -> float:
        times = []
        for _ in range(repeats + 2):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            step()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return float(np.median(times[2:]))

    return {
        "pageable": timed(lambda: [t.to("cuda") for t in pair]),
        "pin copy": timed(lambda: [p.copy_(t) for p, t in zip(pinned, pair, strict=True)]),
        "pinned": timed(lambda: [p.to("cuda", non_blocking=True) for p in pinned]),
    }


class LoopTimes(Callback):
    """Wall-clock times of ``infer``'s prediction loop: its start, each batch's start and end and size."""

    def __init__(self) -> None:
        self.setup_at = 0.0  # Lightning's setup hook: the device is set up, the model not yet moved by it
        self.start = 0.0
        self.batches: list[tuple[float, float, int]] = []  # (start, end, pairs)
        self._batch_start = 0.0

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.setup_at = time.perf_counter()

    def on_predict_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch_start = time.perf_counter()  # the batch is loaded and on the device

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.batches.append((self._batch_start, time.perf_counter(), batch["size"]))


def end_to_end_phases(started: float, ended: float, loop: LoopTimes) -> dict[str, float]:
    """Seconds of ``infer``'s phases: before the loop (checkpoint, discovery + planning, trainer and device
    set-up), start-up (loop start -> first batch ready: workers start, first batch loaded), the first
    batch's prediction, the steady state (first batch done -> last batch done, and the pairs of the later
    batches) and after the loop (merge)."""
    first, last = loop.batches[0], loop.batches[-1]
    return {
        "before loop": loop.start - started,
        "start-up": first[0] - loop.start,
        "first batch": first[1] - first[0],
        "steady": last[1] - first[1],
        "steady pairs": sum(size for _s, _e, size in loop.batches[1:]),
        "after loop": ended - last[1],
    }


#: infer's own steps (``InferenceSummary.marks``, seconds from its start), in the order they end
MARKS = (
    ("checkpoint", "checkpoint loaded"),
    ("trainer", "Trainer made"),
    ("device ready", "model on the device (one CUDA device: context made during discovery)"),
    ("discovery", "discovery done (its processes started at 0)"),
    ("plan", "pairs planned, predictions.csv read"),
    ("workers started", "DataLoader workers started"),
    ("lightning setup", "Lightning's setup hook"),
    ("loop start", "prediction loop starts"),
    ("first batch", "first batch on the device"),
    ("loop end", "last batch predicted"),
)


def mark_lines(marks: dict[str, float], loop: LoopTimes, started: float, total: float) -> list[str]:
    """When each of ``infer``'s steps ended (its own marks where it records them; Lightning's hooks and the
    first batch from the benchmark's callback)."""
    marks = dict(marks)
    marks.setdefault("lightning setup", loop.setup_at - started)
    marks.setdefault("loop start", loop.start - started)
    marks.setdefault("first batch", loop.batches[0][0] - started)
    lines = ["", "| `infer` step | ended at, s | step, s |", "|---|---:|---:|"]
    previous = 0.0
    for key, name in sorted(((k, n) for k, n in MARKS if k in marks), key=lambda item: marks[item[0]]):
        lines.append(f"| {name} | {marks[key]:.2f} | {marks[key] - previous:.2f} |")
        previous = marks[key]
    lines.append(f"| end (tables merged) | {total:.2f} | {total - previous:.2f} |")
    return lines


def bound_lines(
    phases: dict[str, float], pairs: int, total: float, planning: float, stages: dict[str, float],
    floor: float, workers: int, transfer: dict[str, float] | None = None, parallel: float | None = None,
    processes: int | None = None,
) -> list[str]:  # fmt: skip
    """The end-to-end breakdown and what bounds it: the steady state against the ceilings the workers'
    data path, the byte floor and the model allow."""
    data_total = sum(v for k, v in stages.items() if k != "model")
    read = sum(stages[name] for name in READ_STAGES)
    lanes = max(1, workers)
    ceilings = {
        f"{lanes} workers x data path ({1000 * data_total:.1f} ms per pair)": lanes / data_total,
        f"{lanes} workers x reading DICOM alone ({1000 * read:.1f} ms per pair)": lanes / read,
        f"{lanes} workers x DICOM byte floor ({1000 * floor:.1f} ms per pair)": lanes / floor,
        "model (ready batches)": 1 / stages["model"],
    }
    if parallel:  # the same data path with every worker loading at once (contention)
        ceilings[f"{lanes} workers loading at once ({1000 * parallel:.1f} ms wall per pair each)"] = (
            lanes / parallel
        )
    if transfer:  # the main process copies every pair to the GPU
        pageable, pinned, pin_copy = (1000 * transfer[k] for k in ("pageable", "pinned", "pin copy"))
        ceilings[f"main process: hand-over to the GPU, pageable ({pageable:.1f} ms per pair)"] = (
            1 / transfer["pageable"]
        )
        ceilings[
            f"main process: hand-over to the GPU, page-locked ({pinned:.1f} ms per pair; the pin thread's "
            f"copy {pin_copy:.1f} ms)"
        ] = 1 / transfer["pinned"]
    steady = phases["steady pairs"] / phases["steady"] if phases["steady pairs"] else float("nan")
    # what the workers allow: measured with all of them loading at once when given, else one process x N
    worker_ceiling = lanes / parallel if parallel else lanes / data_total
    which = "measured with all workers loading at once" if parallel else "one process's data path x workers"
    lines = [
        "",
        f"End to end over {pairs} pairs ({lanes} workers): where the wall time goes",
        "",
        "| phase | s | share of end to end | pairs / s |",
        "|---|---:|---:|---:|",
        f"| **end to end** (`infer()`) | {total:.2f} | 100 % | {pairs / total:.2f} |",
        f"| before the loop (checkpoint, discovery + planning, trainer and device set-up) | "
        f"{phases['before loop']:.2f} | {100 * phases['before loop'] / total:.0f} % | - |",
        f"| of which discovery + planning ({processes or lanes} processes, timed alone) | {planning:.2f} | "
        f"{100 * planning / total:.0f} % | {pairs / planning:.2f} |",
        f"| start-up (loop start -> first batch on the device: workers start, first batch read) | "
        f"{phases['start-up']:.2f} | {100 * phases['start-up'] / total:.0f} % | - |",
        f"| first batch predicted (model, writer) | {phases['first batch']:.2f} | "
        f"{100 * phases['first batch'] / total:.0f} % | - |",
        f"| steady state (first batch done -> last batch done, {phases['steady pairs']} pairs) | "
        f"{phases['steady']:.2f} | {100 * phases['steady'] / total:.0f} % | {steady:.2f} |",
        f"| after the loop (merge the tables) | {phases['after loop']:.2f} | "
        f"{100 * phases['after loop'] / total:.0f} % | - |",
        "",
        "| ceiling | pairs / s | steady state / ceiling |",
        "|---|---:|---:|",
        *(f"| {name} | {rate:.2f} | {100 * steady / rate:.0f} % |" for name, rate in ceilings.items()),
        "",
    ]
    if steady > 1.2 * worker_ceiling:
        verdict = (
            f"the steady state runs at {100 * steady / worker_ceiling:.0f} % of the workers' data-path "
            f"ceiling ({which}): above it, so that ceiling was measured under other load; no verdict"
        )
    elif steady >= 0.8 * worker_ceiling:
        verdict = (
            f"the steady state runs at {100 * steady / worker_ceiling:.0f} % of the workers' data-path "
            f"ceiling ({which}): bound by the per-pair data path in the workers, of which reading DICOM is "
            f"{100 * read / data_total:.0f} % ({read / floor:.2f}x its byte floor)"
        )
    else:
        verdict = (
            f"the steady state reaches only {100 * steady / worker_ceiling:.0f} % of the workers' data-path "
            f"ceiling ({which}): something besides the workers' data path limits it (the main process, "
            "host-to-device copies, or workers slower in parallel than one process alone)"
        )
    outside = total - phases["steady"]
    lines.append(
        f"Verdict: {verdict}. Outside the steady state (set-up, discovery, start-up, first batch, merge): "
        f"{outside:.2f} s = {100 * outside / total:.0f} % of end to end."
    )
    return lines


def timed_infer(
    args: argparse.Namespace, dicom: Path, ckpt: Path, work: Path
) -> tuple[InferenceSummary, LoopTimes, float, float]:
    """One ``infer()`` run into ``work/out`` with the loop's times recorded: summary, loop, start, end."""
    loop = LoopTimes()
    started = time.perf_counter()
    summary = infer(dicom, ckpt, work / "out", batch_size=args.batch_size, num_workers=args.num_workers,
                    progress=False, callbacks=[loop])  # fmt: skip
    return summary, loop, started, time.perf_counter()


def end_to_end_only(
    args: argparse.Namespace, dicom: Path, ckpt: Path, work: Path, planning: float, processes: int
) -> None:
    """``--end-to-end-only``: ``infer()`` over the export with its phases and steps, nothing else."""
    summary, loop, started, ended = timed_infer(args, dicom, ckpt, work)
    total = ended - started
    pairs = summary.pairs_planned
    phases = end_to_end_phases(started, ended, loop)
    steady = phases["steady pairs"] / phases["steady"] if phases["steady pairs"] else float("nan")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    lines = [
        f"### onconet infer end to end on {device}: {pairs} pairs, batch {args.batch_size}, "
        f"{args.num_workers} workers",
        "",
        "| phase | s | share of end to end | pairs / s |",
        "|---|---:|---:|---:|",
        f"| **end to end** (`infer()`) | {total:.2f} | 100 % | {pairs / total:.2f} |",
        f"| discovery + planning ({processes} processes, timed alone before) | {planning:.2f} | "
        f"{100 * planning / total:.0f} % | {pairs / planning:.2f} |",
        *(
            f"| {name} | {phases[key]:.2f} | {100 * phases[key] / total:.0f} % | - |"
            for key, name in (
                ("before loop", "before the loop"),
                ("start-up", "start-up to the first batch"),
                ("first batch", "first batch predicted"),
            )
        ),
        f"| steady state ({phases['steady pairs']} pairs) | {phases['steady']:.2f} | "
        f"{100 * phases['steady'] / total:.0f} % | {steady:.2f} |",
        f"| after the loop (merge) | {phases['after loop']:.2f} | {100 * phases['after loop'] / total:.0f} % "
        "| - |",
        *mark_lines(getattr(summary, "marks", {}), loop, started, total),
    ]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dicom", type=Path, help="an existing export (default: a synthetic cohort)")
    parser.add_argument("--patients", type=int, default=6,
                        help="synthetic patients = pairs run end to end (default 6)")  # fmt: skip
    parser.add_argument("--size", default="small", choices=("small", "full"), help="synthetic grid sizes")
    parser.add_argument("--spatial", type=int, nargs=3, help="model input size (default: the demo's)")
    parser.add_argument("--backbone", default=None, help="backbone name (default: the demo's based3d)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-workers", type=int, default=min(8, max(1, (os.cpu_count() or 2) - 1)))
    parser.add_argument("--stage-pairs", type=int, default=3, help="pairs timed stage by stage")
    parser.add_argument("--repeats", type=int, default=3, help="stage timings: the fastest of this many")
    parser.add_argument("--compressed-pairs", type=int, default=1,
                        help="pairs re-encoded RLE Lossless and read again (0: skip)")  # fmt: skip
    parser.add_argument("--parallel-pairs", type=int, default=3,
                        help="pairs each worker loads in the parallel data-path timing")  # fmt: skip
    parser.add_argument("--end-to-end-only", action="store_true",
                        help="only discovery alone and infer() with its phases")  # fmt: skip
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

    processes = discovery_processes(args.num_workers)
    started = time.perf_counter()
    jobs = plan_inference(dicom, workers=processes).jobs  # what infer does first, timed alone
    planning = time.perf_counter() - started
    if args.end_to_end_only:
        return end_to_end_only(args, dicom, ckpt, work, planning, processes)
    per_file, grouping, files = time_discovery_parts(dicom)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker of infer, which also freezes the imports' objects
    freeze_imported_objects()
    time_stages(jobs, data, 1)  # warm-up: imports, page cache
    runs = [time_stages(jobs, data, args.stage_pairs) for _ in range(args.repeats)]
    stages = {name: min(run[name] for run in runs) for name in STAGES}  # the least disturbed run
    plans = floor_plan(jobs, args.stage_pairs)
    time_floor(plans, args.stage_pairs)  # warm-up
    floor = min(time_floor(plans, args.stage_pairs) for _ in range(args.repeats))
    compressed = None
    if args.compressed_pairs > 0:
        rle = compressed_copy(dicom, jobs, work / "rle", args.compressed_pairs, args.num_workers)
        compressed = min(
            (time_compressed(dicom, jobs, rle, args.compressed_pairs) for _ in range(min(2, args.repeats))),
            key=lambda run: sum(run.values()),
        )
        shutil.rmtree(rle)
    settings = {"suv_max": 20.0, "hu_range": (-1000.0, 1000.0), **data}
    parallel = time_parallel_data_path(jobs, settings, args.num_workers, args.parallel_pairs)
    torch.set_num_threads(threads)
    stages["model"] = time_model(module, tuple(data["spatial_size"]), args.batch_size, device)
    shapes = handover_shapes(jobs, settings)
    transfer = time_host_to_device(shapes) if device == "cuda" else None
    summary, loop, started, ended = timed_infer(args, dicom, ckpt, work)
    end_to_end = ended - started
    data_total = sum(v for k, v in stages.items() if k != "model")
    decode_share = (stages["io"] + stages["decode"]) / data_total
    read = sum(stages[name] for name in READ_STAGES)

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
        f"| of which discovery + planning ({processes} processes, timed alone) | "
        f"{1000 * planning / summary.pairs_planned:.1f} | {summary.pairs_planned / planning:.2f} | - |",
        f"| of which the predict loop (workers start, read..model, write) | "
        f"{1000 * summary.loop_seconds / summary.pairs_planned:.1f} | "
        f"{summary.pairs_planned / summary.loop_seconds:.2f} | - |",
        f"| DICOM byte floor (read the files + frombuffer + rescale) | {1000 * floor:.1f} | {1 / floor:.2f} "
        f"| {100 * floor / data_total:.0f} % |",
        "",
        f"Reading DICOM (io + parse + decode + assemble): {1000 * read:.1f} ms per pair = "
        f"**{read / floor:.2f}x the byte floor** ({1000 * floor:.1f} ms, same files, same run); Python work "
        f"above the floor: {1000 * (read - floor):.1f} ms = {100 * (read - floor) / data_total:.0f} % of the "
        f"data path. Data path / floor: {data_total / floor:.1f}x. Decode-bound share (io + decode) of the "
        f"data path: {100 * decode_share:.0f} %.",
    ]
    lines += [
        "",
        f"A worker hands over per pair: {' + '.join('x'.join(map(str, sh)) for sh in shapes)} float32 = "
        f"{sum(4 * int(np.prod(sh)) for sh in shapes) / 2**20:.1f} MiB.",
    ]
    lines += bound_lines(
        end_to_end_phases(started, ended, loop), summary.pairs_planned, end_to_end, planning, stages, floor,
        args.num_workers, transfer, parallel, processes,
    )  # fmt: skip
    lines += mark_lines(getattr(summary, "marks", {}), loop, started, end_to_end)
    lines += [
        "",
        f"Discovery alone: {planning:.2f} s for {files} files over {processes} processes. In one process: "
        f"headers {1e6 * per_file:.1f} us per file, the caller's grouping {1e6 * grouping:.1f} us per file; "
        f"{files} files x headers / {processes} processes + grouping = "
        f"{files * per_file / processes + files * grouping:.2f} s.",
    ]
    if compressed is not None:
        compressed_read = sum(compressed.values())
        overhead = (compressed["parse"] + compressed["assemble"]) / compressed_read
        lines += [
            "",
            f"Reading {args.compressed_pairs} pair(s) re-encoded RLE Lossless (pydicom's encoder; the "
            "series reader walks their headers as above and hands the pixel bytes to pydicom's decoder):",
            "",
            "| stage | ms / pair (CPU, 1 thread; assemble: on the originals) | share of reading |",
            "|---|---:|---:|",
            *(
                f"| {name} | {1000 * seconds:.1f} | {100 * seconds / compressed_read:.0f} % |"
                for name, seconds in compressed.items()
            ),
            f"| reading (io..assemble) | {1000 * compressed_read:.1f} | 100 % |",
            "",
            f"Compressed: decoding is {100 * compressed['decode'] / compressed_read:.0f} % of reading; "
            f"header parsing and assembly {100 * overhead:.0f} %.",
        ]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
