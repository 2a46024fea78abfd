"""Backbone benchmark: training-step time and peak memory of the paired response model per backbone.

For each backbone config (configs/based3d.yaml, monarch3d.yaml, densenet121.yaml, vit_sdpa.yaml: the
model sizes used for training) and each volume size (128³: 32,768 tokens per exam with 4³ patches; 192³:
110,592), one training step of the whole paired model (siamese backbone on both exams, fusion, head,
cross-entropy, backward, AdamW) on a batch of 2 pairs of 2-channel volumes in bfloat16 autocast. It prints
the median step time and the peak GPU memory, and their ratios to DenseNet121-3D and to ViT-SDPA at the
same size. A configuration that runs out of memory (or that a kernel cannot take) is reported and
skipped; a time budget keeps the whole run within one device call. Step times of one GPU spread by up to
1.5x from one run to the next (session 4); ``--rounds R`` measures every configuration R times,
interleaved (all backbones once, then all again), and reports the median over the rounds with their range.

``--modes eager graphs`` measures each backbone both ways, interleaved: ``graphs`` is the training option
``model.cuda_graphs`` (forward and backward replayed from CUDA graphs; loss and optimizer eager). Ratios are
taken within a mode (graphs against graphs). The "host" column is the time the host needs to enqueue a
step (until the optimizer returns, before the final synchronisation): a step whose host time is close to
its step time is bound by the host, not by the GPU.

    python benchmarks/backbones.py [--sizes 128 192] [--steps 5] [--rounds 3] [--budget-s 400] [--markdown F]
    python benchmarks/backbones.py --sizes 128 --rounds 3 --modes eager graphs   # eager and CUDA graphs
    python benchmarks/backbones.py --device cpu --sizes 32 --steps 1   # a smoke run without a GPU

Needs only torch, lightning and monai besides this repository.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# This folder holds a kernels.py too: take it off the path so that `import kernels` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402  (a dependency of lightning)

from onconet.models.module import ResponseModule, weighted_cross_entropy  # noqa: E402

BACKBONES = ("densenet121", "vit_sdpa", "based3d", "monarch3d")
REFERENCES = ("densenet121", "vit_sdpa")
PAIRS_PER_BATCH = 2


@dataclass
class Result:
    """One (backbone, size) measurement; ``status`` is "ok" or why it was skipped."""

    backbone: str
    size: int
    tokens: int
    params_m: float
    status: str = "ok"
    step_ms: float = math.nan
    peak_gib: float = math.nan
    step_range: tuple[float, float] | None = None  # min and max over the rounds (with --rounds > 1)
    mode: str = "eager"  # or "graphs" (model.cuda_graphs)
    host_ms: float = math.nan  # median time to enqueue a step


def model_options(name: str) -> dict:
    """The ``model`` section of ``configs/<name>.yaml``."""
    config = yaml.safe_load((REPO_ROOT / "configs" / f"{name}.yaml").read_text())
    return dict(config["model"])


def tokens_per_exam(options: dict, size: int) -> int:
    """Token count of one exam: 4³-style patches, or DenseNet's final feature map."""
    kwargs = options.get("backbone_kwargs") or {}
    if options["backbone"] == "densenet121":
        return (size // 2 ** (2 + len(kwargs.get("block_config", (6, 12, 24, 16))) - 1)) ** 3
    patch = kwargs.get("patch_size", 4)
    patch = (patch,) * 3 if isinstance(patch, int) else tuple(patch)
    return math.prod(size // p for p in patch)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    name: str,
    size: int,
    device: torch.device,
    steps: int,
    warmup: int,
    checkpointing: bool,
    compile_model: bool = False,
    mode: str = "eager",
) -> Result:
    """Median training-step time and peak memory of one backbone at one volume size.

    With ``compile_model`` the model runs through ``torch.compile`` (our Triton ops stay opaque calls
    between the compiled regions); compilation happens in the warm-up steps. ``mode="graphs"``: the
    model's ``cuda_graphs`` option (the graphs are recorded in the first warm-up step).
    """
    options = model_options(name)
    options["gradient_checkpointing"] = checkpointing or options.get("gradient_checkpointing", False)
    options["cuda_graphs"] = mode == "graphs"
    torch.manual_seed(0)
    module = ResponseModule(**options, image_size=(size, size, size)).to(device).train()
    result = Result(
        name,
        size,
        tokens_per_exam(options, size),
        sum(p.numel() for p in module.parameters()) / 1e6,
        mode=mode,
    )
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    forward = torch.compile(module) if compile_model else module
    shape = (PAIRS_PER_BATCH, 2, size, size, size)
    baseline, followup = torch.rand(shape, device=device), torch.rand(shape, device=device)
    labels = torch.tensor([0, 2], device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, host = [], []
    for step in range(warmup + steps):
        synchronize(device)
        started = time.perf_counter()
        loss = weighted_cross_entropy(forward(baseline, followup), labels)  # bf16 autocast inside on CUDA
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        enqueued = time.perf_counter()
        synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - started)
            host.append(enqueued - started)
    result.step_ms = 1e3 * statistics.median(times)
    result.host_ms = 1e3 * statistics.median(host)
    if device.type == "cuda":
        result.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
    return result


def run_one(name: str, size: int, device: torch.device, args: argparse.Namespace, mode: str) -> Result:
    """measure() with out-of-memory and unsupported shapes turned into a skipped row."""
    try:
        return measure(name, size, device, args.steps, args.warmup, args.checkpointing, args.compile, mode)
    except torch.cuda.OutOfMemoryError:
        status = "skipped: out of memory"
    except Exception as err:  # a kernel that cannot take the shape, etc.: report, go on
        status = f"skipped: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    options = model_options(name)
    return Result(name, size, tokens_per_exam(options, size), math.nan, status, mode=mode)


def combine_rounds(rounds: list[Result]) -> Result:
    """One configuration's rounds -> median step time, its range (of 2+ measured rounds), largest peak."""
    ok = [r for r in rounds if r.status == "ok"]
    if not ok:
        return rounds[-1]
    steps = [r.step_ms for r in ok]
    first = ok[0]
    return Result(
        first.backbone, first.size, first.tokens, first.params_m, "ok", statistics.median(steps),
        max(r.peak_gib for r in ok), (min(steps), max(steps)) if len(steps) > 1 else None,
        first.mode, statistics.median(r.host_ms for r in ok),
    )  # fmt: skip


def ratio(value: float, reference: Result | None, field: str) -> str:
    base = getattr(reference, field) if reference and reference.status == "ok" else math.nan
    return f"{value / base:.2f}×" if math.isfinite(value) and math.isfinite(base) and base > 0 else "—"


def table(results: list[Result]) -> str:
    """Markdown table: one row per (size, backbone) with ratios to the reference backbones."""
    columns = ["size", "backbone", "mode", "tokens/exam", "params (M)", "step (ms)", "host (ms)"]
    columns += ["peak (GiB)"]
    columns += ["time ÷ DenseNet", "time ÷ ViT", "memory ÷ DenseNet", "memory ÷ ViT", "status"]
    ranged = any(r.step_range for r in results)
    if ranged:
        columns.insert(6, "step range (ms)")
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for r in results:
        refs = [
            next((x for x in results if (x.backbone, x.size, x.mode) == (n, r.size, r.mode)), None)
            for n in REFERENCES
        ]
        cells = [f"{r.size}³", r.backbone, r.mode, f"{r.tokens:,}", f"{r.params_m:.2f}", f"{r.step_ms:.1f}"]
        if ranged:
            cells.append(f"{r.step_range[0]:.1f}–{r.step_range[1]:.1f}" if r.step_range else "—")
        cells += [f"{r.host_ms:.1f}", f"{r.peak_gib:.2f}"]
        cells += [ratio(r.step_ms, ref, "step_ms") for ref in refs]
        cells += [ratio(r.peak_gib, ref, "peak_gib") for ref in refs]
        cells.append(r.status)
        lines.append("| " + " | ".join("—" if c == "nan" else c for c in cells) + " |")
    return "\n".join(lines)


def environment(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    triton = "absent"
    with contextlib.suppress(ImportError):
        import triton

        triton = triton.__version__
    return f"device {name}; torch {torch.__version__}; triton {triton}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 192], help="volume side lengths")
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (Triton compilation)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repeats of every configuration")
    parser.add_argument("--budget-s", type=float, default=400.0, help="skip what is left after this long")
    parser.add_argument(
        "--checkpointing", action="store_true", help="gradient checkpointing in every backbone"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile every model (compiled in the warm-up steps)"
    )
    parser.add_argument(
        "--modes", nargs="+", default=["eager"], choices=("eager", "graphs"),
        help="eager steps and/or model.cuda_graphs (graphs need CUDA), interleaved",
    )  # fmt: skip
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--markdown", type=Path, help="also write the table (with a header) to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    header = (
        f"Training step of the paired model, batch {PAIRS_PER_BATCH} pairs × 2 exams × 2 channels, "
        f"bf16 autocast on CUDA, median of {args.steps} steps after {args.warmup} warm-up"
        f"{f', median of {args.rounds} interleaved rounds' if args.rounds > 1 else ''}"
        f"{', torch.compile' if args.compile else ''}; "
        f"{environment(device)}"
    )
    print(header, flush=True)
    started = time.perf_counter()
    rounds: dict[tuple[int, str, str], list[Result]] = {}
    configurations = [
        (size, name, mode) for size in args.sizes for name in args.backbones for mode in args.modes
    ]
    for round_index in range(max(1, args.rounds)):
        for size, name, mode in configurations:
            if time.perf_counter() - started > args.budget_s:
                tokens = tokens_per_exam(model_options(name), size)
                result = Result(name, size, tokens, math.nan, "skipped: time budget", mode=mode)
            else:
                result = run_one(name, size, device, args, mode)
            rounds.setdefault((size, name, mode), []).append(result)
            elapsed = time.perf_counter() - started
            print(
                f"  {size}³ {name:12s} {mode:6s} {result.status:10s} step {result.step_ms:9.1f} ms  "
                f"host {result.host_ms:7.1f} ms  peak {result.peak_gib:7.2f} GiB  "
                f"(round {round_index + 1}, {elapsed:.0f} s)",
                flush=True,
            )
    results = [combine_rounds(measured) for measured in rounds.values()]
    markdown = table(results)
    print()
    print(markdown)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(f"# Backbone benchmark\n\n{header}.\n\n{markdown}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
