"""Benchmark: local 3D attention and Monarch mixing (Triton) against their PyTorch equivalents on one GPU.

One run prints, in bfloat16 (median of CUDA-event timings after warm-up, ``triton.testing.do_bench``):
- local 3D attention, 7³ window on a 32³ grid (N = 32,768), B=2, H=8, D=64, forward and forward+backward,
  against ``flex_attention`` (compiled) with a block mask of the same windows and against SDPA with a dense
  (N × N) boolean mask; the relative difference of the outputs to flex_attention; peak memory;
- ``monarch_mix_3d`` on a (2, 32, 32, 32, 256) tensor against the batched-matmul chain (the reference)
  and a chain of ``torch.einsum``; ``monarch_linear`` (256 → 256, 4 and 16 blocks) on 65,536 rows against
  the bmm reference and a dense ``F.linear``;
- the copy bandwidth and bf16 matmul rate measured on the same GPU, and each op's memory floor.

    python benchmarks/kernels_mixers.py [--sweep] [--markdown out.md] [--json out.json]
    python benchmarks/kernels_mixers.py --mix-compare 5 --mix-variants planes planes-e8192-w4 "matmul chain"

``--mix-compare`` times only the named ``monarch_mix_3d`` configurations and the chains, interleaved over
rounds (wall time and CUDA-graph GPU time, with their ranges), after checking each at full size.

``--sweep`` first times launch variants of each Triton op (tiles, warps; the Monarch mixing strategy) and
keeps the fastest for the table.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from kernels import (  # noqa: E402
    local_attention_3d,
    monarch_linear,
    monarch_linear_reference,
    monarch_mix_3d,
    monarch_mix_3d_reference,
)

GRID, WINDOW = (32, 32, 32), (7, 7, 7)
BATCH, HEADS, HEAD_DIM = 2, 8, 64
MIX_SHAPE = (2, 32, 32, 32, 256)
LINEAR_ROWS, LINEAR_FEATURES = 65536, 256
DTYPE = torch.bfloat16
_START = time.time()


def log(message: str) -> None:
    print(f"[{time.time() - _START:6.1f}s] {message}", flush=True)


def time_ms(fn: Callable[[], object], grad_to_none: list[torch.Tensor] | None = None) -> float:
    """Median milliseconds of ``fn`` (CUDA events, after warm-up)."""
    import triton.testing

    return triton.testing.do_bench(fn, warmup=25, rep=100, grad_to_none=grad_to_none, return_mode="median")


def peak_mib(fn: Callable[[], object]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return ((value.float() - reference.float()).norm() / reference.float().norm()).item()


@dataclasses.dataclass
class Row:
    op: str
    impl: str
    fwd_ms: float | None
    fwd_bwd_ms: float | None
    note: str = ""


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def ceilings() -> dict[str, float]:
    """Copy bandwidth (bytes read + written) and bf16 matmul rate on random data, on this GPU."""
    src = torch.randn(2**29, device="cuda", dtype=torch.float32)  # 2 GiB
    dst = torch.empty_like(src)
    copy_ms = time_ms(lambda: dst.copy_(src))
    a, b = (torch.randn(8192, 8192, device="cuda", dtype=DTYPE) for _ in range(2))
    mm_ms = time_ms(lambda: a @ b)
    return {"copy_tb_s": 2 * 2**31 / copy_ms / 1e9, "matmul_tflops": 2 * 8192**3 / mm_ms / 1e9}


# ----------------------------------------------------------------------------------------------------
# Local 3D attention
# ----------------------------------------------------------------------------------------------------


def _window_mask_mod(grid: tuple[int, int, int], window: tuple[int, int, int]):
    size_x, size_y, size_z = grid
    wx, wy, wz = window

    def inside(q, k, size, w):
        start = torch.clamp(q - w // 2, 0, size - w)
        return (k >= start) & (k < start + w)

    def mask_mod(b, h, q_idx, kv_idx):
        qx, qy, qz = q_idx // (size_y * size_z), (q_idx // size_z) % size_y, q_idx % size_z
        kx, ky, kz = kv_idx // (size_y * size_z), (kv_idx // size_z) % size_y, kv_idx % size_z
        return inside(qx, kx, size_x, wx) & inside(qy, ky, size_y, wy) & inside(qz, kz, size_z, wz)

    return mask_mod


def _dense_window_mask(grid, window) -> torch.Tensor:
    from kernels.local_attention_3d import neighbourhood_index

    n = math.prod(grid)
    index = neighbourhood_index(grid, window, "cuda")
    mask = torch.zeros(n, n, dtype=torch.bool, device="cuda")
    return mask.scatter_(1, index, True)


def sweep_local_attention(q, k, v, grad) -> object:
    """Time tile variants of the three token-loop kernels; returns the fastest LaunchConfig."""
    from kernels import _local3d_triton as lt

    variants = [
        lt.Tiles((4, 4, 8), (2, 16), 8, 2),
        lt.Tiles((4, 4, 8), (4, 16), 8, 2),
        lt.Tiles((4, 4, 8), (2, 16), 4, 3),
        lt.Tiles((4, 4, 8), (4, 16), 4, 3),
        lt.Tiles((2, 8, 8), (2, 16), 8, 2),
    ]
    best_fwd, best_bwd = (None, math.inf), (None, math.inf)
    out, lse = lt.forward(q, k, v, GRID, WINDOW)
    for tiles in variants:
        config = lt.LaunchConfig(tiles, tiles, tiles)
        try:
            fwd = time_ms(lambda c=config: lt.forward(q, k, v, GRID, WINDOW, c))
            bwd = time_ms(lambda c=config: lt.backward(grad, q, k, v, out, lse, GRID, WINDOW, c))
        except Exception as error:  # a variant that does not compile is skipped, not fatal
            log(f"  sweep {tiles}: failed: {type(error).__name__}: {str(error)[:200]}")
            continue
        log(f"  sweep {tiles}: forward {fwd:.3f} ms, backward {bwd:.3f} ms")
        if fwd < best_fwd[1]:
            best_fwd = (tiles, fwd)
        if bwd < best_bwd[1]:
            best_bwd = (tiles, bwd)
    fwd_tiles = best_fwd[0] or lt.DEFAULT_CONFIG.forward
    bwd_tiles = best_bwd[0] or lt.DEFAULT_CONFIG.query_grad
    return lt.LaunchConfig(fwd_tiles, bwd_tiles, bwd_tiles)


def bench_local_attention(sweep: bool, results: dict) -> list[Row]:
    n = math.prod(GRID)
    shape = (BATCH, HEADS, n, HEAD_DIM)
    q, k, v = (torch.randn(shape, device="cuda", dtype=DTYPE) for _ in range(3))
    grad = torch.randn(shape, device="cuda", dtype=DTYPE)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    config = sweep_local_attention(q, k, v, grad) if sweep else None
    if config is not None:
        results["local_attention_config"] = repr(config)
        log(f"local attention: chosen {config}")

    def ours_fwd():
        return local_attention_3d(q, k, v, GRID, WINDOW, config=config)

    def ours_fwd_bwd():
        local_attention_3d(*leaves, GRID, WINDOW, config=config).backward(grad)

    rows = []
    ours = ours_fwd()
    row = Row("local 3D attention", "Triton (ours)", time_ms(ours_fwd), time_ms(ours_fwd_bwd, leaves))
    row.note = f"peak {peak_mib(ours_fwd_bwd):.0f} MiB"
    rows.append(row)
    log(f"local attention ours: {row}")

    # flex_attention with a block mask of the same windows.
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        started = time.time()
        block_mask = create_block_mask(_window_mask_mod(GRID, WINDOW), None, None, n, n, device="cuda")
        flex = torch.compile(flex_attention)
        flex_out = flex(q, k, v, block_mask=block_mask)
        flex(*leaves, block_mask=block_mask).backward(grad)
        log(
            f"flex_attention compiled in {time.time() - started:.0f} s; block mask {block_mask}".split("\n")[
                0
            ]
        )
        results["local_attention_vs_flex_rel_diff"] = relative_error(ours, flex_out)

        def flex_fwd_bwd():
            flex(*leaves, block_mask=block_mask).backward(grad)

        row = Row(
            "local 3D attention",
            "flex_attention + block mask (compiled)",
            time_ms(lambda: flex(q, k, v, block_mask=block_mask)),
            time_ms(flex_fwd_bwd, leaves),
            f"peak {peak_mib(flex_fwd_bwd):.0f} MiB; ours vs flex rel. diff "
            f"{results['local_attention_vs_flex_rel_diff']:.1e}",
        )
        rows.append(row)
        log(f"local attention flex: {row}")
    except Exception as error:
        log(f"flex_attention failed: {type(error).__name__}: {error}")
        traceback.print_exc()
        rows.append(
            Row("local 3D attention", "flex_attention + block mask", None, None, f"failed: {error}"[:120])
        )

    # SDPA with the dense (N × N) boolean mask.
    try:
        mask = _dense_window_mask(GRID, WINDOW)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        dense_out = sdpa(q, k, v, attn_mask=mask)
        results["local_attention_vs_dense_sdpa_rel_diff"] = relative_error(ours, dense_out)
        del dense_out

        def sdpa_fwd_bwd():
            sdpa(*leaves, attn_mask=mask).backward(grad)

        row = Row(
            "local 3D attention",
            "SDPA + dense bool mask",
            time_ms(lambda: sdpa(q, k, v, attn_mask=mask)),
            time_ms(sdpa_fwd_bwd, leaves),
            f"peak {peak_mib(sdpa_fwd_bwd):.0f} MiB (mask {mask.numel() / 2**20:.0f} MiB)",
        )
        rows.append(row)
        log(f"local attention dense SDPA: {row}")
    except Exception as error:
        log(f"dense-mask SDPA failed: {type(error).__name__}: {error}")
        rows.append(Row("local 3D attention", "SDPA + dense bool mask", None, None, f"failed: {error}"[:120]))

    # Work actually needed: every query against its 343 keys (QK and PV), for the effective rate.
    useful_flop = 4 * BATCH * HEADS * n * math.prod(WINDOW) * HEAD_DIM
    results["local_attention_useful_tflop"] = useful_flop / 1e12
    return rows


# ----------------------------------------------------------------------------------------------------
# Monarch mixing
# ----------------------------------------------------------------------------------------------------


def _einsum_mix(x, w_x, w_y, w_z):
    y = torch.einsum("ia,bajkc->bijkc", w_x, x)
    y = torch.einsum("jb,aibkc->aijkc", w_y, y)
    return torch.einsum("kc,aijcd->aijkd", w_z, y)


def _time_pair(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], grad: torch.Tensor):
    leaves = [t.clone().requires_grad_() for t in inputs]
    fwd = time_ms(lambda: fn(*inputs))
    fwd_bwd = time_ms(lambda: fn(*leaves).backward(grad), leaves)
    return fwd, fwd_bwd


def sweep_mix(x, weights, grad, results: dict) -> None:
    """Time MixConfig variants of monarch_mix_3d (and each pass alone); keep the fastest fwd+bwd."""
    from kernels import _monarch_triton as mt

    views = mt._axis_views(x.shape)
    variants = [
        mt.MixConfig("planes", 16384, 8192, 8),
        mt.MixConfig("planes", 8192, 4096, 8),
        mt.MixConfig("planes", 8192, 4096, 4),
        mt.MixConfig("planes", 4096, 2048, 4),
        mt.MixConfig("planes", 2048, 1024, 4),
        mt.MixConfig("axes", axis_elements=8192, axis_warps=4),
        mt.MixConfig("axes", axis_elements=16384, axis_warps=8),
        mt.MixConfig("axes", axis_elements=4096, axis_warps=4),
    ]
    best, best_ms = mt.MIX_CONFIG, math.inf
    sweep = []
    for config in variants:
        mt.MIX_CONFIG = config
        try:
            fwd, fwd_bwd = _time_pair(monarch_mix_3d, [x, *weights], grad)
            if config.strategy == "planes":
                passes = [time_ms(lambda c=config: mt._plane_forward(x, weights[1], weights[2], c))]
            else:
                passes = [
                    time_ms(lambda c=config, v=v, w=w: mt._mix_axis(x, w, v, c))
                    for v, w in zip(views, weights, strict=True)
                ]
        except Exception as error:
            log(f"  mix sweep {config}: failed: {type(error).__name__}: {str(error)[:200]}")
            continue
        sweep.append({"config": repr(config), "fwd_ms": fwd, "fwd_bwd_ms": fwd_bwd, "pass_ms": passes})
        log(f"  mix sweep {config}: forward {fwd:.4f} ms, fwd+bwd {fwd_bwd:.4f} ms, passes {passes}")
        if fwd_bwd < best_ms:
            best, best_ms = config, fwd_bwd
    mt.MIX_CONFIG = best
    results["mix3d_sweep"] = sweep
    results["mix3d_config"] = repr(best)
    log(f"monarch_mix_3d: chosen {best}")


def sweep_linear(xl, gl, results: dict) -> None:
    """Time LinearConfig variants of monarch_linear (4 and 16 blocks); keep the fastest in total."""
    from kernels import _monarch_triton as mt

    factors = {}
    for nblocks in (4, 16):
        block = LINEAR_FEATURES // nblocks
        factors[nblocks] = [torch.randn(nblocks, block, block, device="cuda", dtype=DTYPE) for _ in range(2)]
    best, best_ms = mt.LINEAR_CONFIG, math.inf
    sweep = []
    for rows, warps in ((16, 4), (32, 4), (64, 4), (32, 8), (64, 8), (128, 8)):
        config = mt.LinearConfig(
            max_rows=rows, tile_elements=max(8192, rows * LINEAR_FEATURES), num_warps=warps
        )
        mt.LINEAR_CONFIG = config
        try:
            times = [_time_pair(monarch_linear, [xl, *factors[n]], gl) for n in (4, 16)]
        except Exception as error:
            log(f"  linear sweep {config}: failed: {type(error).__name__}: {str(error)[:200]}")
            continue
        total = sum(f + fb for f, fb in times)
        sweep.append({"config": repr(config), "times_ms (fwd, fwd+bwd) for 4, 16 blocks": times})
        log(f"  linear sweep {config}: {times}")
        if total < best_ms:
            best, best_ms = config, total
    mt.LINEAR_CONFIG = best
    results["linear_sweep"] = sweep
    results["linear_config"] = repr(best)
    log(f"monarch_linear: chosen {best}")


def bench_monarch(sweep: bool, results: dict) -> list[Row]:
    rows = []
    x = torch.randn(MIX_SHAPE, device="cuda", dtype=DTYPE)
    weights = [torch.randn(s, s, device="cuda", dtype=DTYPE) / s**0.5 for s in MIX_SHAPE[1:4]]
    grad = torch.randn(MIX_SHAPE, device="cuda", dtype=DTYPE)
    if sweep:
        sweep_mix(x, weights, grad, results)
    ours = monarch_mix_3d(x, *weights)
    exact = monarch_mix_3d_reference(x.float(), *(w.float() for w in weights))
    results["mix3d_rel_err_vs_fp32"] = relative_error(ours, exact)
    gib = x.numel() * x.element_size() / 2**30
    for impl, fn in (
        ("Triton (ours)", monarch_mix_3d),
        ("matmul chain (reference)", monarch_mix_3d_reference),
        ("torch.einsum chain", _einsum_mix),
    ):
        try:
            fwd, fwd_bwd = _time_pair(fn, [x, *weights], grad)
            rows.append(
                Row("monarch_mix_3d (2,32,32,32,256)", impl, fwd, fwd_bwd, f"x = {gib * 1024:.0f} MiB")
            )
        except Exception as error:
            rows.append(Row("monarch_mix_3d", impl, None, None, f"failed: {error}"[:120]))
        log(f"monarch mix: {rows[-1]}")

    xl = torch.randn(LINEAR_ROWS, LINEAR_FEATURES, device="cuda", dtype=DTYPE)
    gl = torch.randn(LINEAR_ROWS, LINEAR_FEATURES, device="cuda", dtype=DTYPE)
    dense_w = torch.randn(LINEAR_FEATURES, LINEAR_FEATURES, device="cuda", dtype=DTYPE) / 16
    if sweep:
        sweep_linear(xl, gl, results)
    for nblocks in (4, 16):
        block = LINEAR_FEATURES // nblocks
        left = torch.randn(nblocks, block, block, device="cuda", dtype=DTYPE) / block**0.5
        right = torch.randn(nblocks, block, block, device="cuda", dtype=DTYPE) / block**0.5
        exact = monarch_linear_reference(xl.float(), left.float(), right.float())
        results[f"linear_{nblocks}_rel_err_vs_fp32"] = relative_error(monarch_linear(xl, left, right), exact)
        op = f"monarch_linear 256→256, {nblocks} blocks, {LINEAR_ROWS} rows"
        for impl, fn in (
            ("Triton (ours)", monarch_linear),
            ("bmm chain (reference)", monarch_linear_reference),
        ):
            try:
                fwd, fwd_bwd = _time_pair(fn, [xl, left, right], gl)
                rows.append(Row(op, impl, fwd, fwd_bwd))
            except Exception as error:
                rows.append(Row(op, impl, None, None, f"failed: {error}"[:120]))
            log(f"monarch linear: {rows[-1]}")
    fwd, fwd_bwd = _time_pair(torch.nn.functional.linear, [xl, dense_w], gl)
    rows.append(Row("dense F.linear 256→256 (for scale)", "cuBLAS", fwd, fwd_bwd))
    return rows


# ----------------------------------------------------------------------------------------------------
# monarch_mix_3d: old and new kernels against the chains, interleaved
# ----------------------------------------------------------------------------------------------------

# Named launch configurations of monarch_mix_3d (fields of MixConfig over its defaults). "planes" is the
# default (since session 5: 16384-element plane tiles, 8 warps); "planes-e8192-w4" the session-3 one.
# The session-5 H200 comparison ran at commit 4040cae, when the defaults were 8192 elements, 4 warps.
# The one-launch "fused" variants it also timed were slower and are no longer in the code
# (benchmarks/results/kernels_mixers.md).
MIX_VARIANTS: dict[str, dict] = {
    "planes": {"strategy": "planes"},
    "planes-e8192-w4": {"strategy": "planes", "plane_elements": 8192, "plane_warps": 4},
    "planes-e16384-w8": {"strategy": "planes", "plane_elements": 16384, "plane_warps": 8},
    "axes": {"strategy": "axes"},
}
CHAINS = {"matmul chain": monarch_mix_3d_reference, "einsum chain": _einsum_mix}


def _mix_callable(name: str) -> Callable[..., torch.Tensor]:
    """monarch_mix_3d under the named configuration (set at call time), or a chain."""
    if name in CHAINS:
        return CHAINS[name]
    from kernels import _monarch_triton as mt

    config = dataclasses.replace(mt.MixConfig(), **MIX_VARIANTS[name])

    def run(*args: torch.Tensor) -> torch.Tensor:
        saved, mt.MIX_CONFIG = mt.MIX_CONFIG, config
        try:
            return monarch_mix_3d(*args)
        finally:
            mt.MIX_CONFIG = saved

    return run


def graph_ms(step: Callable[[int], object], sets: int, calls: int = 8, replays: int = 20) -> float:
    """GPU milliseconds per call: ``calls`` calls (input set i % ``sets``) captured in one CUDA graph,
    the median over ``replays`` replays (events), divided by ``calls``. Launch gaps mostly vanish."""
    # Warm-up (compilation, allocation) on a side stream, as PyTorch's whole-network capture does.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for i in range(sets):
            step(i)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(calls):
            step(i % sets)
    times = []
    for _ in range(replays + 2):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    del graph
    return sorted(times[2:])[replays // 2]


def _fwd_bwd(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], grad: torch.Tensor):
    """Forward and every input gradient, on fresh leaves: a graph capture must not meet autograd nodes
    of leaves used before on another stream."""
    fresh = [t.detach().requires_grad_() for t in inputs]
    return torch.autograd.grad(fn(*fresh), fresh, grad)


def _guarded(measure: Callable[[], float]) -> float:
    """The measure, or NaN (logged) if it fails: one failed capture does not lose the other numbers."""
    try:
        return measure()
    except Exception as error:
        log(f"  measurement failed: {type(error).__name__}: {str(error)[:200]}")
        torch.cuda.synchronize()
        return math.nan


def compare_mix(names: list[str], rounds: int, results: dict) -> str:
    """Each named variant: correctness at full size, then ``rounds`` interleaved rounds (the order rotates
    every round) of wall time (do_bench median) and GPU time (CUDA-graph replay over 4 input sets), for the
    forward and forward+backward. Returns a markdown table of medians and [min–max] over the rounds."""
    sets = 4  # 4 × 32 MiB inputs: repeated calls do not find their input in the 50 MiB L2
    xs = [torch.randn(MIX_SHAPE, device="cuda", dtype=DTYPE) for _ in range(sets)]
    weights = [torch.randn(s, s, device="cuda", dtype=DTYPE) / s**0.5 for s in MIX_SHAPE[1:4]]
    grad = torch.randn(MIX_SHAPE, device="cuda", dtype=DTYPE)
    leaves = [[t.clone().requires_grad_() for t in (x, *weights)] for x in xs]
    fns = {name: _mix_callable(name) for name in names}

    # Correctness: forward and every gradient against float32 autograd of the reference; then the forward
    # on every input set, outputs poisoned with NaN (a read before its write, or a missed element, shows),
    # each compared with the reference and with a repeat of itself (bitwise: no atomics in the sums).
    from kernels import _monarch_triton as mt

    exact_leaves = [t.detach().float().requires_grad_() for t in leaves[0]]
    exact = monarch_mix_3d_reference(*exact_leaves)
    exact_grads = torch.autograd.grad(exact, exact_leaves, grad.float())
    references = [monarch_mix_3d_reference(x.float(), *(w.float() for w in weights)) for x in xs]
    errors, repeatable = {}, {}
    mt.POISON_OUTPUTS = True
    try:
        for name, fn in fns.items():
            out = fn(*leaves[0])
            grads = torch.autograd.grad(out, leaves[0], grad)
            errs = [relative_error(out, exact)]
            errs += [relative_error(g, e) for g, e in zip(grads, exact_grads, strict=True)]
            same = True
            for x, reference in zip(xs, references, strict=True):
                first = fn(x, *weights)
                errs.append(relative_error(first, reference))
                same = same and torch.equal(first, fn(x, *weights))
            errors[name] = max(errs) if all(math.isfinite(e) for e in errs) else math.inf
            repeatable[name] = same
            log(
                f"mix {name}: max relative error vs float32 {errors[name]:.2e}; repeats bitwise equal: {same}"
            )
    finally:
        mt.POISON_OUTPUTS = False
    results["mix_compare_bitwise_repeatable"] = repeatable
    results["mix_compare_max_rel_err"] = errors

    measures = ("fwd wall", "fwd GPU", "fwd+bwd wall", "fwd+bwd GPU")
    samples: dict[str, dict[str, list[float]]] = {n: {m: [] for m in measures} for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = fns[name]
            got = samples[name]
            got["fwd wall"].append(time_ms(lambda fn=fn: fn(xs[0], *weights)))
            got["fwd+bwd wall"].append(
                time_ms(lambda fn=fn: torch.autograd.grad(fn(*leaves[0]), leaves[0], grad))
            )
            got["fwd GPU"].append(_guarded(lambda fn=fn: graph_ms(lambda i: fn(xs[i], *weights), sets)))
            got["fwd+bwd GPU"].append(
                _guarded(lambda fn=fn: graph_ms(lambda i: _fwd_bwd(fn, leaves[i], grad), sets))
            )
        for name in names:  # every sample as it comes: a run cut short keeps them
            log(
                f"mix round {r + 1}/{rounds} {name}: "
                + ", ".join(f"{m} {samples[name][m][-1]:.4f}" for m in measures)
            )
    results["mix_compare_samples_ms"] = samples

    def cell(values: list[float]) -> str:
        ordered = sorted(v for v in values if math.isfinite(v))
        if not ordered:
            return "failed"
        return f"{ordered[len(ordered) // 2]:.4f} [{ordered[0]:.4f}–{ordered[-1]:.4f}]"

    def median(values: list[float]) -> float:
        ordered = sorted(v for v in values if math.isfinite(v))
        return ordered[len(ordered) // 2] if ordered else math.nan

    lines = [
        f"monarch_mix_3d {MIX_SHAPE} bf16, {rounds} interleaved rounds: median [min–max] ms; wall = do_bench "
        "median of back-to-back calls, GPU = CUDA-graph replay (8 calls over 4 input sets) per call.",
        "",
        "| variant | " + " | ".join(measures) + " | max rel. err | repeat bitwise equal |",
        "| --- | " + " | ".join("---:" for _ in measures) + " | ---: | --- |",
    ]
    for name in names:
        lines.append(
            f"| {name} | "
            + " | ".join(cell(samples[name][m]) for m in measures)
            + f" | {errors[name]:.1e} | {repeatable[name]} |"
        )
    if "matmul chain" in names:
        lines += [
            "",
            "Matmul chain ÷ variant (medians): "
            + "; ".join(
                f"{n}: "
                + " / ".join(
                    f"{median(samples['matmul chain'][m]) / median(samples[n][m]):.2f}x" for m in measures
                )
                for n in names
                if n != "matmul chain"
            )
            + f" ({' / '.join(measures)})",
        ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------


def markdown(rows: list[Row], results: dict, command: str) -> str:
    device = torch.cuda.get_device_name()
    lines = [
        f"Machine: {device}, torch {torch.__version__}, triton {__import__('triton').__version__}; "
        f"copy {results.get('copy_tb_s', float('nan')):.2f} TB/s, bf16 matmul "
        f"{results.get('matmul_tflops', float('nan')):.0f} TFLOP/s (measured). Command: `{command}`.",
        "",
        "| op | implementation | forward ms | fwd+bwd ms | ours faster by (fwd / fwd+bwd) | note |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    ours_by_op = {r.op: r for r in rows if r.impl.startswith("Triton")}
    for r in rows:
        ours = ours_by_op.get(r.op)
        ratio = ""
        if ours is not None and r is not ours and r.fwd_ms and ours.fwd_ms:
            ratio = f"{r.fwd_ms / ours.fwd_ms:.2f}x"
            if r.fwd_bwd_ms and ours.fwd_bwd_ms:
                ratio += f" / {r.fwd_bwd_ms / ours.fwd_bwd_ms:.2f}x"
        lines.append(f"| {r.op} | {r.impl} | {fmt(r.fwd_ms)} | {fmt(r.fwd_bwd_ms)} | {ratio} | {r.note} |")
    lines.append("")
    figures = {k: v for k, v in results.items() if not k.endswith("_sweep")}
    lines.append("Extra figures: " + json.dumps(figures, default=str))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sweep", action="store_true", help="time the kernels' launch variants first")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["local", "monarch"], help="sections to skip"
    )
    parser.add_argument(
        "--mix-compare",
        type=int,
        metavar="ROUNDS",
        help="only compare monarch_mix_3d variants and the chains, in ROUNDS interleaved rounds",
    )
    parser.add_argument(
        "--mix-variants",
        nargs="+",
        default=["planes", "planes-e8192-w4", "matmul chain", "einsum chain"],
        choices=[*MIX_VARIANTS, *CHAINS],
        help="the variants --mix-compare times",
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("kernels_mixers: no CUDA GPU; nothing to time (the kernels are tested on the CPU interpreter)")
        return 0
    torch.manual_seed(0)
    results: dict = {}
    results.update(ceilings())
    log(f"ceilings: {results}")
    if args.mix_compare:
        table = compare_mix(args.mix_variants, args.mix_compare, results)
        print(table)
        if args.markdown:
            args.markdown.write_text(table + "\n")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
        return 0
    rows: list[Row] = []
    for name, section in (
        ("local", lambda: bench_local_attention(args.sweep, results)),
        ("monarch", lambda: bench_monarch(args.sweep, results)),
    ):
        if name in args.skip:
            continue
        try:
            rows += section()
        except Exception:
            traceback.print_exc()
        with contextlib.suppress(Exception):
            torch.cuda.empty_cache()
    command = "python benchmarks/kernels_mixers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table = markdown(rows, results, command.strip())
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": [dataclasses.asdict(r) for r in rows], **results}, indent=1, default=str)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
