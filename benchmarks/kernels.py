"""Kernel benchmark: Taylor linear attention against softmax attention, the naive PyTorch version and fla.

One run on a CUDA GPU prints, for B=2, H=8, d=16, D=64 in bfloat16 and N in {4096, 32768, 262144}, the
forward and forward+backward times (median of CUDA-event timings after warm-up), peak memory, the
ratios to cuDNN SDPA, and the memory-bandwidth / tensor-core floors measured on the same GPU. Then it
runs ``benchmarks/kernels_mixers.py``'s ``main()`` if that file exists (local 3D attention, Monarch).

    python benchmarks/kernels.py [--sweep] [--sizes 4096 32768] [--markdown out.md]

``--sweep`` first times the tile variants of each Triton kernel at N=32768 and keeps the fastest.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
# This folder holds a kernels.py too: take it off the path so that `import kernels` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO_ROOT))

from kernels import _taylor_triton as taylor_triton  # noqa: E402
from kernels import taylor_linear_attention, taylor_linear_attention_reference  # noqa: E402

BATCH, HEADS, FEATURE_DIM, VALUE_DIM = 2, 8, 16, 64
DEFAULT_SIZES = (4096, 32768, 262144)
ALGORITHMIC_FEATURES = 1 + FEATURE_DIM + FEATURE_DIM * (FEATURE_DIM + 1) // 2  # 153
IMPLEMENTED_FEATURES = 1 + FEATURE_DIM + FEATURE_DIM * FEATURE_DIM  # 273: all d² products on the tensor cores


# ----------------------------------------------------------------------------------------------------
# Timing helpers
# ----------------------------------------------------------------------------------------------------


def time_ms(fn: Callable[[], object], slow: bool = False) -> float:
    """Median ms of ``fn`` on the GPU (``triton.testing.do_bench``; one warm-up and one run if slow)."""
    if slow:
        fn()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end)
    import triton.testing

    return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def peak_mib(fn: Callable[[], object]) -> float:
    """Peak memory allocated by one call of ``fn`` above what was allocated before, in MiB."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def measure_ceilings() -> dict[str, float]:
    """Device-to-device copy bandwidth (bytes read + written) and the bf16 matmul rate of this GPU."""
    src = torch.randn(2**30 // 2, device="cuda", dtype=torch.bfloat16)  # 1 GiB
    dst = torch.empty_like(src)
    copy_ms = time_ms(lambda: dst.copy_(src))
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    mm_ms = time_ms(lambda: a @ b)
    return {
        "copy_tb_s": 2 * 2**30 / copy_ms / 1e9,
        "bf16_tflop_s": 2 * 8192**3 / mm_ms / 1e9,
    }


@dataclasses.dataclass
class Row:
    name: str
    fwd_ms: float | None = None
    fwd_bwd_ms: float | None = None
    peak_mib: float | None = None
    note: str = ""


def measure(name: str, op: Callable, inputs: list[torch.Tensor], slow: bool = False) -> Row:
    """Forward and forward+backward times and peak memory of ``op(*inputs)`` (peak skipped if slow)."""
    row = Row(name)
    try:
        leaves = [t.detach().requires_grad_() for t in inputs]
        grad = torch.randn_like(inputs[2])  # every op returns the shape of v
        with torch.no_grad():
            row.fwd_ms = time_ms(lambda: op(*inputs), slow)

        def fwd_bwd() -> None:
            torch.autograd.grad(op(*leaves), leaves, grad, allow_unused=True)

        row.fwd_bwd_ms = time_ms(fwd_bwd, slow)
        if not slow:
            row.peak_mib = peak_mib(fwd_bwd)
    except Exception as exc:  # an anchor that does not run here is reported, not fatal
        message = str(exc).splitlines()[0][:120] if str(exc) else ""
        row.note = f"failed: {type(exc).__name__}: {message}"
    torch.cuda.empty_cache()
    return row


# ----------------------------------------------------------------------------------------------------
# The ops under comparison
# ----------------------------------------------------------------------------------------------------


def ours(q, k, v, _qs=None, _ks=None):
    return taylor_linear_attention(q, k, v, backend="triton")


def naive(q, k, v, _qs=None, _ks=None):
    return taylor_linear_attention_reference(q, k, v)


def sdpa(backend_name: str) -> Callable:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = getattr(SDPBackend, backend_name)

    def run(_q, _k, v, qs, ks):
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(qs, ks, v)

    return run


def fla_op(name: str) -> Callable:
    """fla's Taylor ("based") kernels, causal, inputs (B, T, H, d)."""
    module = importlib.import_module("fla.ops.based")
    fn = getattr(module, name)

    def run(q, k, v, _qs=None, _ks=None):
        out = fn(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return out.transpose(1, 2)

    return run


# ----------------------------------------------------------------------------------------------------
# Floors
# ----------------------------------------------------------------------------------------------------


def floors(n: int, ceilings: dict[str, float]) -> dict[str, float]:
    """Least bytes and matmul FLOPs of the op, in ms at the measured ceilings."""
    tokens = BATCH * HEADS * n
    itemsize = 2
    d, dv = FEATURE_DIM, VALUE_DIM
    fwd_bytes = tokens * itemsize * (d + d + dv + dv)  # q, k, v read; o written
    bwd_bytes = (
        tokens * itemsize * (d + d + dv + dv + dv + d + d + dv)
    )  # q, k, v, o, dO read; dq, dk, dv written
    bw = ceilings["copy_tb_s"] * 1e12 / 1e3  # bytes per ms
    rate = ceilings["bf16_tflop_s"] * 1e12 / 1e3  # flop per ms
    # state (F × D per key) and output (F × D per query); backward: dS, dq, dv and dk, each F × D per token.
    fwd_flops = {f: 2 * tokens * f * dv * 2 for f in (ALGORITHMIC_FEATURES, IMPLEMENTED_FEATURES)}
    return {
        "fwd_bytes_ms": fwd_bytes / bw,
        "fwd_bwd_bytes_ms": (fwd_bytes + bwd_bytes) / bw,
        "fwd_flops_ms": fwd_flops[ALGORITHMIC_FEATURES] / rate,
        "fwd_bwd_flops_ms": 3 * fwd_flops[ALGORITHMIC_FEATURES] / rate,
        "fwd_flops_impl_ms": fwd_flops[IMPLEMENTED_FEATURES] / rate,
        "fwd_bwd_flops_impl_ms": 3 * fwd_flops[IMPLEMENTED_FEATURES] / rate,
        "fwd_mb": fwd_bytes / 1e6,
        "fwd_bwd_mb": (fwd_bytes + bwd_bytes) / 1e6,
    }


# ----------------------------------------------------------------------------------------------------
# Tile sweep
# ----------------------------------------------------------------------------------------------------

TILE_OPTIONS = {
    "state": [(64, 8), (128, 8), (64, 4), (32, 4)],
    "output": [(64, 8), (128, 8), (64, 4), (32, 4)],
    "query_grad": [(32, 8), (64, 8), (32, 4), (16, 4)],
    "key_grad": [(64, 8), (128, 8), (32, 4), (64, 4)],
}


def _inputs(n: int, dtype=torch.bfloat16) -> tuple[torch.Tensor, ...]:
    shape_qk, shape_v = (BATCH, HEADS, n, FEATURE_DIM), (BATCH, HEADS, n, VALUE_DIM)
    q, k = (
        torch.randn(shape_qk, device="cuda", dtype=dtype),
        torch.randn(shape_qk, device="cuda", dtype=dtype),
    )
    v = torch.randn(shape_v, device="cuda", dtype=dtype)
    return q, k, v


def _time_config(config: taylor_triton.LaunchConfig, q, k, v, repeat: bool = True) -> tuple[float, float]:
    """(forward ms, backward-only ms) of the Triton path under ``config`` (one untimed run if not repeat)."""
    with taylor_triton.launch_config(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)}):
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        out = taylor_linear_attention(*leaves, backend="triton")
        grad = torch.randn_like(out)
        torch.autograd.grad(out, leaves, grad, retain_graph=True)
        if not repeat:
            torch.cuda.synchronize()
            return 0.0, 0.0
        with torch.no_grad():
            fwd = time_ms(lambda: taylor_linear_attention(q, k, v, backend="triton"))
        bwd = time_ms(lambda: torch.autograd.grad(out, leaves, grad, retain_graph=True))
    return fwd, bwd


QUERY_BACKWARD_TILES = [(64, 4), (64, 8), (128, 8)]  # dq pass; state-gradient pass
QUERY_STATE_TILES = [(64, 4), (128, 8)]


def _query_backward_candidates(base: taylor_triton.LaunchConfig) -> dict[str, taylor_triton.LaunchConfig]:
    candidates = {"query backward fused": dataclasses.replace(base, query_backward="fused")}
    for mode in ("two_pass", "state_kernel"):
        for dq_tile in QUERY_BACKWARD_TILES:
            for state_tile in QUERY_STATE_TILES:
                label = f"query backward {mode}: dq tile {dq_tile}, state-gradient tile {state_tile}"
                candidates[label] = dataclasses.replace(
                    base,
                    query_backward=mode,
                    query_dq=taylor_triton.Tile(*dq_tile),
                    query_state=taylor_triton.Tile(*state_tile),
                )
    return candidates


def sweep_candidates() -> list[taylor_triton.LaunchConfig]:
    """Configurations to compile ahead: each kernel's tile varied alone, the query-backward variants, and
    the gradient kernels without prefetching."""
    base = taylor_triton.current_config()
    candidates = [base, dataclasses.replace(base, prefetch_grads=not base.prefetch_grads)]
    for kernel, options in TILE_OPTIONS.items():
        candidates += [dataclasses.replace(base, **{kernel: taylor_triton.Tile(*tile)}) for tile in options]
    candidates += list(_query_backward_candidates(base).values())
    return list(dict.fromkeys(candidates))


def _warm(configs: list[taylor_triton.LaunchConfig], n: int) -> int:
    """Compile (into Triton's on-disk cache) by running each configuration once; in a worker process."""
    q, k, v = _inputs(n)
    done = 0
    for config in configs:
        with contextlib.suppress(Exception):
            _time_config(config, q, k, v, repeat=False)
            done += 1
    return done


def precompile(configs: list[taylor_triton.LaunchConfig], n: int, workers: int) -> int:
    """Compile the kernels of ``configs`` in parallel processes (Triton compiles on one CPU core)."""
    import concurrent.futures
    import multiprocessing

    # Contiguous runs of the list share most kernels: one worker compiles them once.
    size = -(-len(configs) // workers)
    groups = [configs[i : i + size] for i in range(0, len(configs), size)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(len(groups), mp_context=context) as pool:
        return sum(pool.map(_warm, groups, [n] * len(groups)))


def sweep(n: int = 32768, log: Callable[[str], None] = print) -> taylor_triton.LaunchConfig:
    """Coordinate search: prefetching in the gradient kernels, each kernel's tile, the split query
    backward, programs per SM (wall-clock medians; compare close calls with ``--variants``)."""
    q, k, v = _inputs(n)
    best = taylor_triton.current_config()

    def trial(label: str, candidate: taylor_triton.LaunchConfig) -> tuple[float, float] | None:
        try:
            fwd, bwd = _time_config(candidate, q, k, v)
        except Exception as exc:
            log(f"  {label}: failed: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        log(f"  {label}: fwd {fwd:.3f} bwd {bwd:.3f} ms")
        return fwd, bwd

    def pick(candidates: dict[str, taylor_triton.LaunchConfig], score) -> None:
        nonlocal best
        results = {label: trial(label, c) for label, c in candidates.items()}
        results = {label: r for label, r in results.items() if r is not None}
        if results:
            best = candidates[min(results, key=lambda label: score(*results[label]))]

    base = trial("default", best)
    log(f"sweep N={n}, starting from {best} ({base})")
    variants = {f"prefetch_grads={x}": dataclasses.replace(best, prefetch_grads=x) for x in (False, True)}
    pick(variants, lambda f, b: b)
    for kernel, options in TILE_OPTIONS.items():
        candidates = {
            f"{kernel} tile {tile}": dataclasses.replace(best, **{kernel: taylor_triton.Tile(*tile)})
            for tile in options
        }
        pick(candidates, (lambda f, b: f) if kernel in ("state", "output") else (lambda f, b: b))
    pick(_query_backward_candidates(best), lambda f, b: b)
    # (num_stages is not swept: Triton software-pipelines none of these loops, see LaunchConfig.prefetch.)
    variants = {f"programs_per_sm={x}": dataclasses.replace(best, programs_per_sm=x) for x in (1, 2, 3, 4)}
    pick(variants, lambda f, b: f + b)
    log(f"sweep best {best}: {trial('best', best)}")
    return best


def graph_times(n: int, log: Callable[[str], None]) -> tuple[float, float] | None:
    """Forward and forward+backward of ours replayed from a CUDA graph: the GPU time without the host's
    launch gaps (the wall-clock tables include them)."""
    q, k, v = _inputs(n)
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    grad = torch.randn_like(v)

    def forward() -> None:
        with torch.no_grad():
            taylor_linear_attention(q, k, v, backend="triton")

    def forward_backward() -> None:
        torch.autograd.grad(taylor_linear_attention(*leaves, backend="triton"), leaves, grad)

    times = []
    try:
        for step in (forward, forward_backward):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up outside the capture (compilation, allocator)
                    step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                step()
            times.append(time_ms(graph.replay))
    except Exception as exc:  # a capture failure is reported, not fatal
        log(f"N={n:,}: CUDA-graph replay failed: {type(exc).__name__}: {str(exc)[:160]}")
        return None
    log(f"N={n:,}: CUDA-graph replay of ours: forward {times[0]:.3f} ms, forward+backward {times[1]:.3f} ms")
    return times[0], times[1]


def wall_times(n: int, log: Callable[[str], None]) -> None:
    """Forward and forward+backward of ours, wall time per call (``do_bench`` median, host launches
    included), next to the graph replay of ``graph_times``."""
    q, k, v = _inputs(n)
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    grad = torch.randn_like(v)
    with torch.no_grad():
        fwd = time_ms(lambda: taylor_linear_attention(q, k, v, backend="triton"))

    def forward_backward() -> None:
        torch.autograd.grad(taylor_linear_attention(*leaves, backend="triton"), leaves, grad)

    both = time_ms(forward_backward)
    log(f"N={n:,}: wall time of ours: forward {fwd:.3f} ms, forward+backward {both:.3f} ms")


T = taylor_triton.Tile
SESSION3 = {  # the launch config of session 3 (whole-state kernel, exact float32 z products)
    "state_feature_block": 0,
    "state_separate_z": False,
    "state_symmetric": False,
    "z_products_tf32": False,
}
SESSION5_OUTPUT = {  # the output kernel of session 5 (no q prefetch, chunks and registers as the others)
    "output_prefetch": False,
    "output_programs_per_sm": None,
    "output_max_registers": None,
}
VARIANTS: dict[str, dict] = {
    "default": {},
    "session 3 default": SESSION3,
    "default, 8 state programs per SM": {"state_programs_per_sm": 8},
    "default, 6 state programs per SM": {"state_programs_per_sm": 6},
    "state kernel not symmetric": {"state_symmetric": False},
    "state kernel not symmetric, z by matmul": {"state_symmetric": False, "state_separate_z": False},
    "state kernel symmetric, z by matmul": {"state_separate_z": False},
    "state kernel not symmetric, transposed": {"state_symmetric": False, "state_transposed": True},
    "state kernel 128-row blocks (8 warps)": {
        "state_symmetric": False, "state_feature_block": 128, "state": T(64, 8), "query_state": T(64, 8),
    },
    "state kernel, tiles (32, 4)": {"state": T(32, 4), "query_state": T(32, 4)},
    "state kernel, 2 programs per SM": {"state_programs_per_sm": 2},
    "whole-state kernel": {"state_feature_block": 0},
    "output kernel symmetric": {"output_symmetric": True},
    "z products exact float32": {"z_products_tf32": False},
    # Session 6 (relative to the session-5 default, whose output kernel had neither change): the output
    # kernel's q prefetch and three programs per multiprocessor (168 registers). Measured slower and
    # removed: the linear and constant rows of S in the z program (state kernel 209 -> 255 µs per fwd+bwd);
    # no gain, removed: the state loop at 2 or 4 pipeline stages (205 µs).
    "session 5 default": SESSION5_OUTPUT,
    "session 5 default, 8 state programs per SM": {**SESSION5_OUTPUT, "state_programs_per_sm": 8},
    "output kernel prefetch": {**SESSION5_OUTPUT, "output_prefetch": True},
    "output kernel 3 programs per SM": {
        **SESSION5_OUTPUT, "output_programs_per_sm": 3, "output_max_registers": 168,
    },
}  # fmt: skip


# Named sets of variants for --variants (the comparison of one session, before and after interleaved).
VARIANT_SETS: dict[str, tuple[str, ...]] = {
    "session6": (  # call 1, without the variants removed after it
        "session 5 default",
        "session 5 default, 8 state programs per SM",
        "output kernel prefetch",
        "output kernel 3 programs per SM",
        "default",
    ),
    "session6-2": (  # call 2: the new default, with more state chunks, against the session-5 default
        "session 5 default",
        "default",
        "default, 8 state programs per SM",
        "default, 6 state programs per SM",
    ),
}


def compare_variants(
    n: int,
    names: list[str],
    log: Callable[[str], None],
    workers: int = 0,
    rounds: int = 1,
    best_to: Path | None = None,
) -> None:
    """GPU time (CUDA-graph replay: no host gaps) of each launch-config variant (all, or those whose label
    is one of ``names`` or, if none is, contains one), in ``rounds`` interleaved rounds, and their medians;
    then the wall time and the per-kernel profile of each. ``best_to``: the overrides (FIELD=VALUE, one
    a line) of the variant with the least median forward+backward time, for ``gpu_check.py --config``.
    A name of ``VARIANT_SETS`` stands for its labels."""
    names = [label for name in names for label in VARIANT_SETS.get(name, (name,))]
    exact = [label for label in VARIANTS if label in names]
    chosen = {
        label: o
        for label, o in VARIANTS.items()
        if label in exact or not names or (not exact and any(x in label for x in names))
    }
    if workers:
        t0 = time.perf_counter()
        base = taylor_triton.current_config()
        configs = [dataclasses.replace(base, **overrides) for overrides in chosen.values()]
        done = precompile(configs, n, workers)
        log(f"precompiled {done}/{len(configs)} variants in {time.perf_counter() - t0:.0f} s")
    log(f"Variants at N={n:,}, CUDA-graph replay (forward, forward+backward), {rounds} interleaved rounds:")
    measured: dict[str, list[tuple[float, float]]] = {label: [] for label in chosen}
    for round_index in range(1, rounds + 1):
        for label, overrides in chosen.items():
            with taylor_triton.launch_config(**overrides):
                tag = f"round {round_index}, {label}"
                found = graph_times(n, lambda line, tag=tag: log(f"  {tag}: {line}"))
            if found is not None:
                measured[label].append(found)
    medians = {
        label: (statistics.median([f for f, _ in times]), statistics.median([b for _, b in times]))
        for label, times in measured.items()
        if times
    }
    log(f"Medians over the rounds (GPU time, forward / forward+backward ms, N={n:,}):")
    for label, (fwd, both) in sorted(medians.items(), key=lambda item: item[1][1]):
        forwards, boths = [f for f, _ in measured[label]], [b for _, b in measured[label]]
        log(
            f"  {label}: {fwd:.3f} / {both:.3f} (ranges {min(forwards):.3f}-{max(forwards):.3f} / "
            f"{min(boths):.3f}-{max(boths):.3f})"
        )
    if best_to is not None and medians:
        best = min(medians, key=lambda label: medians[label][1])
        log(f"Least median forward+backward: {best}")
        best_to.write_text("".join(f"{field}={value}\n" for field, value in chosen[best].items()))
    log("Wall time per call (do_bench median, host launches included):")
    for label, overrides in chosen.items():
        with taylor_triton.launch_config(**overrides):
            wall_times(n, lambda line, label=label: log(f"  {label}: {line}"))
    # Last: the profiler's hooks stay in the process and slow every later launch on the host.
    for label, overrides in chosen.items():
        with taylor_triton.launch_config(**overrides):
            profile_kernels(n, lambda line, label=label: log(f"  {label}: {line}"))


def profile_kernels(n: int, log: Callable[[str], None]) -> None:
    """GPU time per kernel of one forward+backward of ours (torch.profiler), against the wall time."""
    from torch.profiler import ProfilerActivity, profile

    q, k, v = _inputs(n)
    leaves = [t.requires_grad_() for t in (q, k, v)]
    grad = torch.randn_like(v)

    def step() -> None:
        torch.autograd.grad(taylor_linear_attention(*leaves, backend="triton"), leaves, grad)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    steps = 20
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    parts = [(e.key, e.device_time_total / steps, e.count // steps) for e in prof.key_averages()]
    parts = sorted((p for p in parts if p[1] > 0), key=lambda p: -p[1])
    total = sum(p[1] for p in parts)
    detail = ", ".join(
        f"{name.strip('_')} {us:.0f} µs" + (f" ×{calls}" if calls > 1 else "") for name, us, calls in parts
    )
    log(f"N={n:,}: GPU time per fwd+bwd {total:.0f} µs = {detail}")


# ----------------------------------------------------------------------------------------------------
# Main table
# ----------------------------------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def benchmark_size(n: int, ceilings: dict[str, float], with_fla: bool) -> tuple[list[Row], dict[str, float]]:
    q, k, v = _inputs(n)
    # Softmax attention at head dim 64 (the value width); Taylor attention uses q, k of d = 16.
    qs, ks = torch.randn_like(v), torch.randn_like(v)
    quadratic_slow = n > 100_000
    args = [q, k, v, qs, ks]
    rows = [measure("Taylor linear attention, Triton (ours)", ours, args)]
    rows.append(measure("Taylor linear attention, naive PyTorch", naive, args, slow=quadratic_slow))
    for backend, label in (("CUDNN_ATTENTION", "cuDNN"), ("FLASH_ATTENTION", "FlashAttention")):
        rows.append(measure(f"SDPA softmax attention, {label}", sdpa(backend), args, slow=quadratic_slow))
    if with_fla:
        rows.append(
            measure("fla fused_chunk_based (causal)", fla_op("fused_chunk_based"), args, slow=quadratic_slow)
        )
        if quadratic_slow:
            rows.append(Row("fla parallel_based (causal)", note="skipped: O(N²), minutes at this size"))
        else:
            rows.append(measure("fla parallel_based (causal)", fla_op("parallel_based"), args))
    return rows, floors(n, ceilings)


def render(n: int, rows: list[Row], floor: dict[str, float]) -> str:
    ref = next((r for r in rows if "cuDNN" in r.name and r.fwd_ms), None)
    ours_row = rows[0]
    lines = [
        f"### N = {n:,} (B={BATCH}, H={HEADS}, d={FEATURE_DIM}, D={VALUE_DIM}, bfloat16)",
        "",
        "| op | forward ms | fwd+bwd ms | peak MiB (fwd+bwd) | cuDNN fwd / op fwd | cuDNN f+b / op f+b "
        "| note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        speed_f = ref.fwd_ms / r.fwd_ms if ref and r.fwd_ms else None
        speed_fb = ref.fwd_bwd_ms / r.fwd_bwd_ms if ref and ref.fwd_bwd_ms and r.fwd_bwd_ms else None
        lines.append(
            f"| {r.name} | {_fmt(r.fwd_ms)} | {_fmt(r.fwd_bwd_ms)} | {_fmt(r.peak_mib, 0)} "
            f"| {_fmt(speed_f, 1)} | {_fmt(speed_fb, 1)} | {r.note} |"
        )
    if ours_row.fwd_ms and ours_row.fwd_bwd_ms:
        bw_f, bw_fb = floor["fwd_bytes_ms"], floor["fwd_bwd_bytes_ms"]
        fl_f, fl_fb = floor["fwd_flops_ms"], floor["fwd_bwd_flops_ms"]
        lines += [
            "",
            f"Floors: bytes {floor['fwd_mb']:.0f} MB fwd / {floor['fwd_bwd_mb']:.0f} MB fwd+bwd -> "
            f"{bw_f:.4f} / {bw_fb:.4f} ms at the measured copy bandwidth; matmul FLOPs (153 features) -> "
            f"{fl_f:.4f} / {fl_fb:.4f} ms at the measured bf16 rate "
            f"({floor['fwd_flops_impl_ms']:.4f} / {floor['fwd_bwd_flops_impl_ms']:.4f} ms with the 273 "
            "features the kernels multiply).",
            f"Ours over the larger floor: forward {ours_row.fwd_ms / max(bw_f, fl_f):.1f}x, "
            f"fwd+bwd {ours_row.fwd_bwd_ms / max(bw_fb, fl_fb):.1f}x; over the bandwidth floor alone: "
            f"{ours_row.fwd_ms / bw_f:.1f}x / {ours_row.fwd_bwd_ms / bw_fb:.1f}x.",
        ]
    return "\n".join(lines)


def run_mixers(log: Callable[[str], None]) -> None:
    path = REPO_ROOT / "benchmarks" / "kernels_mixers.py"
    if not path.is_file():
        log("(benchmarks/kernels_mixers.py not present: no local-3D / Monarch table)")
        return
    spec = importlib.util.spec_from_file_location("kernels_mixers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    assert spec.loader is not None
    spec.loader.exec_module(module)
    module.main([])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--sweep", action="store_true", help="search the kernel tiles first (N=32768)")
    parser.add_argument(
        "--precompile", type=int, default=0, metavar="WORKERS", help="compile sweep variants in parallel"
    )
    parser.add_argument(
        "--compile-only", action="store_true", help="with --precompile: compile the sweep variants, then stop"
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        metavar="NAME",
        help="GPU and wall time of each launch-config variant (those named, those whose label holds a NAME, "
        "or a set of VARIANT_SETS), then stop",
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --variants: interleaved rounds")
    parser.add_argument(
        "--best-to", type=Path, help="with --variants: write the fastest variant's overrides to this file"
    )
    parser.add_argument("--no-fla", action="store_true", help="leave out the fla anchors")
    parser.add_argument("--no-mixers", action="store_true", help="do not run benchmarks/kernels_mixers.py")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument(
        "--config", nargs="+", default=[], metavar="FIELD=VALUE", help="launch-config overrides (state=64x4)"
    )
    args = parser.parse_args(argv)
    taylor_triton.set_config(
        dataclasses.replace(taylor_triton.current_config(), **taylor_triton.parse_overrides(args.config))
    )
    if not torch.cuda.is_available():
        print("benchmarks/kernels.py needs a CUDA GPU", file=sys.stderr)
        return 2

    out: list[str] = []

    if args.markdown:
        args.markdown.write_text("")

    def log(line: str) -> None:
        print(line, flush=True)
        out.append(line)
        if args.markdown:  # written as it goes: a run stopped at its time limit keeps what it measured
            with args.markdown.open("a") as f:
                f.write(line + "\n")

    import triton

    props = torch.cuda.get_device_properties(0)
    log(
        f"## Kernel benchmark on {props.name} ({props.multi_processor_count} SMs), "
        f"torch {torch.__version__}, triton {triton.__version__}"
    )
    log("Command: python benchmarks/kernels.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    ceilings = measure_ceilings()
    log(
        f"Measured ceilings: copy {ceilings['copy_tb_s']:.2f} TB/s (read + write), "
        f"bf16 matmul {ceilings['bf16_tflop_s']:.0f} TFLOP/s (8192³)"
    )
    if args.sweep:
        if args.precompile:
            t0 = time.perf_counter()
            candidates = sweep_candidates()
            done = precompile(candidates, 32768, args.precompile)
            log(f"precompiled {done}/{len(candidates)} variants in {time.perf_counter() - t0:.0f} s")
            if args.compile_only:
                return 0
        best = sweep(log=log)
        taylor_triton.set_config(best)
    log(f"Launch config: {taylor_triton.current_config()}")
    if args.variants is not None:
        compare_variants(32768, args.variants, log, args.precompile, args.rounds, args.best_to)
        return 0

    with_fla = not args.no_fla and importlib.util.find_spec("fla") is not None
    if not with_fla:
        log("(fla not importable: no fla anchors)")
    for n in args.sizes:
        t0 = time.perf_counter()
        rows, floor = benchmark_size(n, ceilings, with_fla)
        log("")
        log(render(n, rows, floor))
        log(f"({time.perf_counter() - t0:.0f} s)")
    log("")
    for n in args.sizes:
        graph_times(n, log)
    # Last: the profiler's hooks stay in the process and slow every later launch on the host.
    log("")
    log("Kernel time per forward+backward of ours (torch.profiler, 20 steps):")
    for n in args.sizes:
        profile_kernels(n, log)
    if not args.no_mixers:
        try:
            run_mixers(log)
        except SystemExit:
            pass
        except Exception as exc:  # the other engineer's benchmark failing must not hide this one's tables
            log(f"benchmarks/kernels_mixers.py failed: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
