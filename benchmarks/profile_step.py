"""Where a training step's GPU time goes: torch.profiler over the paired model's step, per backbone.

Builds the model of ``configs/<backbone>.yaml`` as ``benchmarks/backbones.py`` does (2 pairs of 2-channel
volumes, bf16 autocast, AdamW), runs a few warm-up steps, then profiles a few steps and prints the ops and
kernels with the most device time, grouped so that the Triton kernels of ``kernels/`` stand out from
PyTorch's own (matmuls, norms, elementwise, optimizer).

    python benchmarks/profile_step.py --backbone based3d --size 128 [--steps 3] [--top 30]
    python benchmarks/profile_step.py --backbone based3d --size 16 --device cpu   # a smoke run
    python benchmarks/profile_step.py --backbone based3d --size 32 --count   # glue op counts, no GPU

``--count`` needs no GPU: it runs the backbone's forward and backward on the CPU through the GPU path's
code (the kernels' Triton launchers, bfloat16 autocast with CUDA's float32 policy for layer norms) and
counts every PyTorch op around the kernels, with the bytes each reads and writes: copies, casts, norms,
elementwise ops. The Triton kernel launches themselves are skipped (their outputs are left unwritten):
only the ops around them are counted, which do not depend on the values. Bytes per token carry over to
128³; on the GPU these memory-bound ops take about bytes ÷ bandwidth.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
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


#: aten op name -> family, for ``--count`` (anything else: "other")
OP_FAMILIES = {
    "_to_copy": "cast",
    "copy_": "copy",
    "clone": "copy",
    "cat": "copy",
    "stack": "copy",
    "native_layer_norm": "norm",
    "native_layer_norm_backward": "norm",
    "mm": "matmul",
    "addmm": "matmul",
    "bmm": "matmul",
    "convolution": "matmul",
    "convolution_backward": "matmul",
    "sum": "reduction",
    "mean": "reduction",
    "zeros": "fill",
    "zero_": "fill",
    "fill_": "fill",
    "zeros_like": "fill",
    "new_zeros": "fill",
    "empty": "alloc",
    "empty_like": "alloc",
    "empty_strided": "alloc",
    "new_empty": "alloc",
    "new_empty_strided": "alloc",
}
#: ops whose launches ``--count`` also reports from torch.profiler (nested calls included)
PROFILED_OPS = ("copy_", "_to_copy", "contiguous", "clone", "native_layer_norm", "native_layer_norm_backward")
#: ops that move no data (views, metadata)
VIEW_OPS = {
    "view", "_unsafe_view", "reshape", "transpose", "t", "permute", "expand", "slice", "select", "split",
    "split_with_sizes", "chunk", "unbind", "unsqueeze", "squeeze", "as_strided", "alias", "detach",
    "_reshape_alias", "unflatten", "flatten", "contiguous", "narrow", "view_as", "lift_fresh",
    "_has_compatible_shallow_copy_type", "is_same_size", "result_type", "sym_size", "sym_stride",
    "sym_numel", "sym_storage_offset", "dim", "size", "stride", "_local_scalar_dense", "item",
}  # fmt: skip


def _tensor_bytes(values) -> int:
    flat, _ = torch.utils._pytree.tree_flatten(values)
    return sum(v.numel() * v.element_size() for v in flat if isinstance(v, torch.Tensor))


class GlueCounter(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the aten ops that reach the CPU kernels, with the bytes of their tensor inputs and outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name not in VIEW_OPS and not name.startswith("_foreach"):
            self.calls[name] += 1
            if name not in ("empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"):
                self.bytes[name] += _tensor_bytes((args, kwargs)) + _tensor_bytes(out)
        return out


def _emulate_cuda_autocast_layer_norm() -> torch.library.Library:
    """On the CPU, autocast leaves layer_norm in bfloat16; CUDA's autocast runs it in float32 (upcast)."""
    library = torch.library.Library("aten", "IMPL")

    def layer_norm(x, shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
        with torch.autocast("cpu", enabled=False):
            weight = None if weight is None else weight.float()
            bias = None if bias is None else bias.float()
            return torch.ops.aten.layer_norm(x.float(), shape, weight, bias, eps, cudnn_enable)

    library.impl("layer_norm", layer_norm, "AutocastCPU")
    return library


def count_glue(args: argparse.Namespace) -> int:
    """``--count``: ops and bytes around the kernels in one forward + backward of the backbone."""
    os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: Triton's path takes CPU tensors
    os.environ["KERNELS_BACKEND"] = "triton"
    from triton.runtime import interpreter

    # The launchers' own ops (contiguous copies, allocations) run; the kernels do not: glue only, fast.
    interpreter.InterpretedFunction.run = lambda self, *args, **kwargs: None
    bench = load_backbones_benchmark()
    from onconet.models.backbones import create_backbone

    options = bench.model_options(args.backbone)
    torch.manual_seed(0)
    kwargs = dict(options.get("backbone_kwargs") or {})
    net = create_backbone(options["backbone"], in_channels=2, image_size=(args.size,) * 3, **kwargs).train()
    volumes = torch.rand(2 * bench.PAIRS_PER_BATCH, 2, args.size, args.size, args.size)
    library = _emulate_cuda_autocast_layer_norm()  # noqa: F841  (kept alive while counting)
    counter = GlueCounter()
    with counter, torch.autocast("cpu", dtype=torch.bfloat16):
        tokens, _ = net(volumes)
        tokens.float().square().mean().backward()
    n_tokens = tokens.shape[0] * tokens.shape[1]
    families: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    print(
        f"{args.backbone}: ops around the kernels in one forward + backward of the backbone, "
        f"{volumes.shape[0]} exams at {args.size}³ ({n_tokens:,} tokens), bf16 autocast (CUDA policy)"
    )
    print(f"{'op':32s} {'calls':>6s} {'bytes/token':>12s}")
    for name, calls in sorted(counter.calls.items(), key=lambda item: -counter.bytes[item[0]]):
        print(f"{name:32s} {calls:6d} {counter.bytes[name] / n_tokens:12.0f}")
        family = families[OP_FAMILIES.get(name, "elementwise/other")]
        family[0] += calls
        family[1] += counter.bytes[name] / n_tokens
    print("by family:")
    for family, (calls, per_token) in sorted(families.items(), key=lambda item: -item[1][1]):
        print(f"  {family:20s} {calls:6d} calls {per_token:10.0f} bytes/token")
    total_calls = sum(c for c, _ in families.values())
    glue = sum(b for f, (_, b) in families.items() if f != "matmul")
    print(f"total: {total_calls} calls; {glue:.0f} bytes/token outside matmuls and kernels")
    # The dispatch mode sees the ops the model calls, not the ones an op calls inside itself (a layer
    # norm copying a strided input): torch.profiler records those too.
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.autocast("cpu", dtype=torch.bfloat16):
        tokens, _ = net(volumes)
        tokens.float().square().mean().backward()
    nested = {event.key: event.count for event in prof.key_averages()}
    launches = {name: nested.get(f"aten::{name}", 0) for name in PROFILED_OPS}
    print("profiler, every aten op incl. nested: " + ", ".join(f"{k} {v}" for k, v in launches.items()))
    summary = {"backbone": args.backbone, "size": args.size, "calls": total_calls}
    summary |= {"glue_bytes_per_token": round(glue), "casts": int(families["cast"][0])}
    summary |= {f"aten::{name}": count for name, count in launches.items()}
    print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="based3d")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--count", action="store_true", help="count the ops around the kernels on the CPU (no GPU needed)"
    )
    parser.add_argument(
        "--cuda-graphs", action="store_true", help="model.cuda_graphs (replayed forward/backward)"
    )
    args = parser.parse_args(argv)
    if args.count:
        return count_glue(args)
    bench = load_backbones_benchmark()
    from onconet.models.module import ResponseModule, weighted_cross_entropy

    device = torch.device(args.device)
    options = bench.model_options(args.backbone)
    options["cuda_graphs"] = args.cuda_graphs  # the configs turn it on; eager unless asked
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
