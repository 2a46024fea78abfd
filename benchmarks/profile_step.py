"""Where a training step's GPU time goes: torch.profiler over the paired model's step, per backbone.

Builds the model of ``configs/<backbone>.yaml`` as ``benchmarks/backbones.py`` does (2 pairs of 2-channel
volumes, bf16 autocast, AdamW), runs a few warm-up steps, then profiles a few steps and prints the ops and
kernels with the most device time, grouped so that the Triton kernels of ``kernels/`` stand out from
PyTorch's own (matmuls, norms, elementwise, optimizer).

    python benchmarks/profile_step.py --backbone based3d --size 128 [--steps 3] [--top 30]
    python benchmarks/profile_step.py --backbone based3d --size 16 --device cpu   # a smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

HERE = Path(__file__).resolve().parent


def load_backbones_benchmark():
    """benchmarks/backbones.py as a module (this folder is not a package; it fixes sys.path itself)."""
    spec = importlib.util.spec_from_file_location("backbones_benchmark", HERE / "backbones.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def kernel_group(name: str) -> str:
    """A coarse family for a device kernel's name."""
    lowered = name.lower()
    if name.startswith("_") and name.endswith("_kernel"):
        return "kernels/ (Triton)"  # our kernels: _forward_kernel, _query_grad_kernel, ...
    rules = (
        ("direct_copy", "copy/layout"),
        ("gemm", "matmul"),
        ("sm90", "matmul"),
        ("cutlass", "matmul"),
        ("conv", "convolution"),
        ("norm", "norm"),
        ("adam", "optimizer"),
        ("foreach", "optimizer"),
        ("flash", "sdpa"),
        ("fmha", "sdpa"),
        ("cudnn", "cudnn other"),
        ("reduce", "reduction"),
        ("copy", "copy/layout"),
        ("transpose", "copy/layout"),
        ("cat", "copy/layout"),
        ("elementwise", "elementwise"),
        ("vectorized", "elementwise"),
    )
    return next((group for key, group in rules if key in lowered), "other")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="based3d")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    bench = load_backbones_benchmark()
    from onconet.models.module import ResponseModule, weighted_cross_entropy

    device = torch.device(args.device)
    options = bench.model_options(args.backbone)
    torch.manual_seed(0)
    module = ResponseModule(**options, image_size=(args.size,) * 3).to(device).train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    shape = (bench.PAIRS_PER_BATCH, 2, args.size, args.size, args.size)
    baseline, followup = torch.rand(shape, device=device), torch.rand(shape, device=device)
    labels = torch.tensor([0, 2], device=device)

    def step() -> None:
        loss = weighted_cross_entropy(module(baseline, followup), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    bench.synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
        bench.synchronize(device)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(f"{args.backbone} at {args.size}³, {args.steps} steps, {bench.environment(device)}")
    print(prof.key_averages().table(sort_by=sort, row_limit=args.top, max_name_column_width=70))
    if device.type == "cuda":
        groups: dict[str, float] = defaultdict(float)
        for event in prof.events():
            if event.device_type == torch.autograd.DeviceType.CUDA:
                groups[kernel_group(event.name)] += event.device_time / 1e3 / args.steps
        total = sum(groups.values())
        print(f"device time per step by kernel family (total {total:.2f} ms):")
        for group, ms in sorted(groups.items(), key=lambda item: -item[1]):
            print(f"  {group:20s} {ms:8.2f} ms  {100 * ms / total:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
