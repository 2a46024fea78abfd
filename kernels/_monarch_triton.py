"""Triton forward and backward of the Monarch ops (see :mod:`kernels.monarch`).

``monarch_mix_3d`` is memory-bound (a few FLOP per byte), so what counts is the passes over the tensor.
Two strategies (``MixConfig.strategy``), both built from two kernels:
- ``_axis_kernel``: out[n] = W @ in[n] on an (outer, S, inner) view: one axis of the grid mixed in one
  streaming pass (rows of ``inner`` contiguous elements), optionally fused with the weight gradient
  Σ_n in[n] other[n]ᵀ (per-program partial sums, reduced in a fixed order);
- ``_plane_forward_kernel``: per (batch, x-slice, channel block) the whole (Y, Z) plane is loaded once and
  mixed along y and then z with two tensor-core matmuls; the y-mixed plane is re-laid out on-chip
  (permute through shared memory), never written. ``_plane_backward_kernel``: dx, dw_y, dw_z per plane,
  recomputing the y-mixing on-chip.
"planes": plane pass + x-axis pass (two passes; u = x ×₂ w_y ×₃ w_z saved for the backward);
"axes": one axis pass each (three passes, like the matmul chain, the intermediates saved); also used for
planes larger than 32×32, where the fused plane kernels would hold too few channels per program.
A one-launch variant (plane and x items from an atomic ticket, u re-read from L2) and a one-launch
backward were measured slower on the H200 and removed (``benchmarks/results/kernels_mixers.md``).

``monarch_linear`` (M = P L Pᵀ R) is fused in one kernel per direction: a tile of rows is multiplied
by the blocks of R (one batched 3D matmul), the intermediate is permuted on-chip (the stride
permutation is a reshape-transpose of the register tile) and multiplied by the blocks of L. The backward
kernel recomputes the intermediate, forms dx, and accumulates dL, dR over its rows.
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from kernels.dispatch import KernelError

MAX_AXIS = 128  # grid size along each axis (the (S, S) weight tile lives in registers)
# Padded Y·Z of the fused plane kernels. Larger planes leave room for fewer than 8 channels per program,
# and Triton 3.6 fails to compile 64×64 planes with 1 or 4 channels (TritonGPUOptimizeDotOperands, found
# by compiling for sm_90 ahead of time): such grids take the "axes" strategy, which compiles up to 128.
MAX_FUSED_PLANE = 1024
LINEAR_MAX_FEATURES = 1024
LINEAR_MAX_WEIGHT_BLOCK = 16384  # elements of the dL or dR accumulator of the backward kernel


@dataclasses.dataclass(frozen=True)
class MixConfig:
    """Launch choices of ``monarch_mix_3d`` (tuned on an H200 by ``benchmarks/kernels_mixers.py``).

    Attributes:
        strategy: "planes" (fused y/z pass + x pass) or "axes" (one pass per axis).
        plane_elements, plane_backward_elements: register budget (elements) of one plane tile; sets the
            channels per plane program.
        plane_warps: warps of the plane kernels.
        axis_elements: elements of one (S, columns) tile of the axis kernel.
        axis_warps: warps of the axis kernel.
    """

    # Fastest forward and fwd+bwd in GPU time (CUDA-graph replay) of the session-5 comparison on an H200,
    # (2, 32, 32, 32, 256) bf16 (benchmarks/results/kernels_mixers.md): 16384-element plane tiles with 8
    # warps, 0.048 / 0.368 ms, against 0.065 / 0.510 with the session-3 choice (8192, 4 warps; its
    # backward spilled).
    strategy: str = "planes"
    plane_elements: int = 16384
    plane_backward_elements: int = 4096
    plane_warps: int = 8
    axis_elements: int = 8192
    axis_warps: int = 4


@dataclasses.dataclass(frozen=True)
class LinearConfig:
    """Launch choices of ``monarch_linear``: rows per program (at most ``tile_elements`` / features)."""

    # Fastest in total (4 and 16 blocks, 256 features, bf16) of the sweep on an H200.
    max_rows: int = 32
    tile_elements: int = 8192
    num_warps: int = 4


# Module-wide choices; the benchmark swaps them while tuning.
MIX_CONFIG = MixConfig()
LINEAR_CONFIG = LinearConfig()
# Tests set this: every output and partial-sum buffer starts as NaN, so an unwritten element shows.
POISON_OUTPUTS = False


def _empty(shape: tuple[int, ...] | torch.Size, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    out = torch.empty(shape, dtype=dtype, device=device)
    return out.fill_(float("nan")) if POISON_OUTPUTS else out


def _pad(n: int) -> int:
    return max(16, triton.next_power_of_2(n))  # 16: the smallest matmul extent of the tensor cores


def _precision(dtype: torch.dtype) -> str:
    return "ieee" if dtype == torch.float32 else "tf32"


def _target_programs(device: torch.device) -> int:
    if device.type == "cuda":
        return 2 * torch.cuda.get_device_properties(device).multi_processor_count
    return 4  # the interpreter: a few programs still exercise the partial-sum reduction


# ----------------------------------------------------------------------------------------------------
# monarch_mix_3d kernels
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _axis_kernel(
    IN,
    W,
    OUT,
    OTHER,
    DW_PARTIAL,
    size,
    cols,
    tiles_per_program,
    TRANSPOSE_W: tl.constexpr,
    WITH_WEIGHT_GRAD: tl.constexpr,
    BS: tl.constexpr,
    BK: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """OUT[n] = W @ IN[n] (Wᵀ if TRANSPOSE_W) on (outer, size, cols) views; optionally Σ IN[n] OTHER[n]ᵀ."""
    outer = tl.program_id(0).to(tl.int64)
    prog = tl.program_id(1)
    r = tl.arange(0, BS)
    r_ok = r < size
    if TRANSPOSE_W:
        w = tl.load(W + r[None, :] * size + r[:, None], mask=r_ok[:, None] & r_ok[None, :], other=0.0)
    else:
        w = tl.load(W + r[:, None] * size + r[None, :], mask=r_ok[:, None] & r_ok[None, :], other=0.0)
    base = outer * size * cols
    cc = tl.arange(0, BK)
    dw = tl.zeros([BS, BS], dtype=tl.float32)
    for step in range(0, tiles_per_program):
        c = (prog * tiles_per_program + step) * BK + cc
        mask = r_ok[:, None] & (c[None, :] < cols)
        offsets = base + r[:, None] * cols + c[None, :]
        a = tl.load(IN + offsets, mask=mask, other=0.0)
        y = tl.dot(w, a, input_precision=PRECISION)
        tl.store(OUT + offsets, y.to(OUT.dtype.element_ty), mask=mask)
        if WITH_WEIGHT_GRAD:
            other = tl.load(OTHER + offsets, mask=mask, other=0.0)
            dw += tl.dot(a, tl.trans(other), input_precision=PRECISION)
    if WITH_WEIGHT_GRAD:
        slot = outer * tl.num_programs(1) + prog
        tl.store(DW_PARTIAL + slot * BS * BS + r[:, None] * BS + r[None, :], dw)


@triton.jit
def _plane_forward_kernel(
    IN,
    WY,
    WZ,
    OUT,
    size_y,
    size_z,
    channels,
    channel_blocks,
    BY: tl.constexpr,
    BZ: tl.constexpr,
    CB: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """OUT plane = (IN plane ×₁ WY) ×₂ WZ for one (batch, x, channel block); the plane is (Y, Z, C)."""
    pid = tl.program_id(0)
    plane = (pid // channel_blocks).to(tl.int64)
    j = tl.arange(0, BY)
    k = tl.arange(0, BZ)
    c = (pid % channel_blocks) * CB + tl.arange(0, CB)
    j_ok, k_ok, c_ok = j < size_y, k < size_z, c < channels
    row = size_z * channels
    wy = tl.load(WY + j[:, None] * size_y + j[None, :], mask=j_ok[:, None] & j_ok[None, :], other=0.0)
    wz = tl.load(WZ + k[:, None] * size_z + k[None, :], mask=k_ok[:, None] & k_ok[None, :], other=0.0)
    base = plane * size_y * row
    p = tl.load(
        IN + base + j[:, None, None] * row + k[None, :, None] * channels + c[None, None, :],
        mask=j_ok[:, None, None] & k_ok[None, :, None] & c_ok[None, None, :],
        other=0.0,
    )
    mixed_y = tl.dot(wy, tl.reshape(p, (BY, BZ * CB)), input_precision=PRECISION)
    # Re-lay the y-mixed plane out as (Z, Y·CB) on-chip so that z becomes the contracted axis.
    mixed_y = mixed_y.to(p.dtype)  # rounded before the re-layout: half the shared-memory traffic
    by_z = tl.reshape(tl.permute(tl.reshape(mixed_y, (BY, BZ, CB)), (1, 0, 2)), (BZ, BY * CB))
    mixed = tl.dot(wz, by_z, input_precision=PRECISION)
    tl.store(
        OUT + base + k[:, None, None] * channels + j[None, :, None] * row + c[None, None, :],
        tl.reshape(mixed, (BZ, BY, CB)).to(OUT.dtype.element_ty),
        mask=k_ok[:, None, None] & j_ok[None, :, None] & c_ok[None, None, :],
    )


@triton.jit
def _plane_backward_item(
    IN,
    GRAD_MIXED,
    GRAD_IN,
    base,
    j,
    k,
    c,
    j_ok,
    k_ok,
    c_ok,
    wy,
    wy_t,
    wz_t,
    dwy,
    dwz,
    row,
    channels,
    BY: tl.constexpr,
    BZ: tl.constexpr,
    CB: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """dIN of one (Y, Z, CB) plane at ``base``; returns dwy, dwz with its contributions added (in the
    matmuls' accumulators: separate sums cost registers and spill)."""
    # x plane as (Y, Z·CB); recompute its y-mixing, laid out as (Z, Y·CB).
    p = tl.load(
        IN + base + j[:, None, None] * row + k[None, :, None] * channels + c[None, None, :],
        mask=j_ok[:, None, None] & k_ok[None, :, None] & c_ok[None, None, :],
        other=0.0,
    )
    p = tl.reshape(p, (BY, BZ * CB))
    mixed_y = tl.dot(wy, p, input_precision=PRECISION).to(p.dtype)
    mixed_y = tl.reshape(tl.permute(tl.reshape(mixed_y, (BY, BZ, CB)), (1, 0, 2)), (BZ, BY * CB))
    # dL/d(output plane), loaded directly as (Z, Y·CB).
    g = tl.load(
        GRAD_MIXED + base + k[:, None, None] * channels + j[None, :, None] * row + c[None, None, :],
        mask=k_ok[:, None, None] & j_ok[None, :, None] & c_ok[None, None, :],
        other=0.0,
    )
    g = tl.reshape(g, (BZ, BY * CB))
    dwz = tl.dot(g, tl.trans(mixed_y), dwz, input_precision=PRECISION)
    g_y = tl.dot(wz_t, g, input_precision=PRECISION).to(g.dtype)  # dL/d(y-mixed plane), (Z, Y·CB)
    g_y = tl.reshape(tl.permute(tl.reshape(g_y, (BZ, BY, CB)), (1, 0, 2)), (BY, BZ * CB))
    dwy = tl.dot(g_y, tl.trans(p), dwy, input_precision=PRECISION)
    grad_in = tl.dot(wy_t, g_y, input_precision=PRECISION)
    tl.store(
        GRAD_IN + base + j[:, None, None] * row + k[None, :, None] * channels + c[None, None, :],
        tl.reshape(grad_in, (BY, BZ, CB)).to(GRAD_IN.dtype.element_ty),
        mask=j_ok[:, None, None] & k_ok[None, :, None] & c_ok[None, None, :],
    )
    return dwy, dwz


@triton.jit
def _plane_backward_kernel(
    IN,
    GRAD_MIXED,
    WY,
    WZ,
    GRAD_IN,
    DWY_PARTIAL,
    DWZ_PARTIAL,
    size_y,
    size_z,
    channels,
    channel_blocks,
    n_items,
    items_per_program,
    BY: tl.constexpr,
    BZ: tl.constexpr,
    CB: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Backward of the plane mixing: dIN, and per-program partial sums of dWY and dWZ."""
    prog = tl.program_id(0)
    j = tl.arange(0, BY)
    k = tl.arange(0, BZ)
    j_ok, k_ok = j < size_y, k < size_z
    wy = tl.load(WY + j[:, None] * size_y + j[None, :], mask=j_ok[:, None] & j_ok[None, :], other=0.0)
    wy_t = tl.load(WY + j[None, :] * size_y + j[:, None], mask=j_ok[:, None] & j_ok[None, :], other=0.0)
    wz_t = tl.load(WZ + k[None, :] * size_z + k[:, None], mask=k_ok[:, None] & k_ok[None, :], other=0.0)
    row = size_z * channels
    dwy = tl.zeros([BY, BY], dtype=tl.float32)
    dwz = tl.zeros([BZ, BZ], dtype=tl.float32)
    for step in range(0, items_per_program):
        item = prog * items_per_program + step
        plane = (item // channel_blocks).to(tl.int64)
        c = (item % channel_blocks) * CB + tl.arange(0, CB)
        c_ok = c < tl.where(item < n_items, channels, 0)  # items past the end: nothing to load
        base = plane * size_y * row
        dwy, dwz = _plane_backward_item(
            IN,
            GRAD_MIXED,
            GRAD_IN,
            base,
            j,
            k,
            c,
            j_ok,
            k_ok,
            c_ok,
            wy,
            wy_t,
            wz_t,
            dwy,
            dwz,
            row,
            channels,
            BY,
            BZ,
            CB,
            PRECISION,
        )
    tl.store(DWY_PARTIAL + prog * BY * BY + j[:, None] * BY + j[None, :], dwy)
    tl.store(DWZ_PARTIAL + prog * BZ * BZ + k[:, None] * BZ + k[None, :], dwz)


# ----------------------------------------------------------------------------------------------------
# monarch_mix_3d launchers
# ----------------------------------------------------------------------------------------------------


def mix3d_unsupported_reason(shape: torch.Size | tuple[int, ...]) -> str | None:
    """Why the Triton kernels cannot take a (B, X, Y, Z, C) input, or None if they can."""
    _, size_x, size_y, size_z, _ = shape
    for axis, size in zip("XYZ", (size_x, size_y, size_z), strict=True):
        if size > MAX_AXIS:
            return f"{axis}={size} > {MAX_AXIS} (the (S, S) weight tile lives in registers)"
    return None


def mix3d_strategy(shape: torch.Size | tuple[int, ...], config: MixConfig) -> str:
    """The strategy for a (B, X, Y, Z, C) input: the configured one, unless the plane is too big to fuse."""
    _, _, size_y, size_z, _ = shape
    if config.strategy == "planes" and _pad(size_y) * _pad(size_z) > MAX_FUSED_PLANE:
        return "axes"
    return config.strategy


def _channel_block(size_y: int, size_z: int, channels: int, budget: int) -> int:
    fit = max(1, budget // (_pad(size_y) * _pad(size_z)))
    return min(1 << (fit.bit_length() - 1), triton.next_power_of_2(channels))


def plane_tiles(shape: torch.Size | tuple[int, ...], budget: int) -> dict[str, int]:
    """Compile-time tile sizes (BY, BZ, CB) of the plane kernels for a (B, X, Y, Z, C) input."""
    _, _, size_y, size_z, channels = shape
    return {"BY": _pad(size_y), "BZ": _pad(size_z), "CB": _channel_block(size_y, size_z, channels, budget)}


def axis_tiles(size: int, cols: int, config: MixConfig) -> dict[str, int]:
    """Compile-time tile sizes (BS, BK) of the axis kernel on an (outer, size, cols) view."""
    bs = _pad(size)
    return {"BS": bs, "BK": max(16, min(1024, triton.next_power_of_2(cols), config.axis_elements // bs))}


def _plane_forward(x: torch.Tensor, w_y: torch.Tensor, w_z: torch.Tensor, config: MixConfig) -> torch.Tensor:
    batch, size_x, size_y, size_z, channels = x.shape
    out = _empty(x.shape, x.dtype, x.device)
    tiles = plane_tiles(x.shape, config.plane_elements)
    channel_blocks = triton.cdiv(channels, tiles["CB"])
    _plane_forward_kernel[(batch * size_x * channel_blocks,)](
        x,
        w_y,
        w_z,
        out,
        size_y,
        size_z,
        channels,
        channel_blocks,
        **tiles,
        PRECISION=_precision(x.dtype),
        num_warps=config.plane_warps,
    )
    return out


def _plane_backward(
    grad_mixed: torch.Tensor, x: torch.Tensor, w_y: torch.Tensor, w_z: torch.Tensor, config: MixConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, size_x, size_y, size_z, channels = x.shape
    tiles = plane_tiles(x.shape, config.plane_backward_elements)
    by, bz = tiles["BY"], tiles["BZ"]
    channel_blocks = triton.cdiv(channels, tiles["CB"])
    items = batch * size_x * channel_blocks
    programs = max(1, min(items, _target_programs(x.device)))
    per_program = triton.cdiv(items, programs)
    programs = triton.cdiv(items, per_program)
    grad_x = _empty(x.shape, x.dtype, x.device)
    dwy_partial = _empty((programs, by, by), torch.float32, x.device)
    dwz_partial = _empty((programs, bz, bz), torch.float32, x.device)
    _plane_backward_kernel[(programs,)](
        x,
        grad_mixed,
        w_y,
        w_z,
        grad_x,
        dwy_partial,
        dwz_partial,
        size_y,
        size_z,
        channels,
        channel_blocks,
        items,
        per_program,
        **tiles,
        PRECISION=_precision(x.dtype),
        num_warps=config.plane_warps,
    )
    return grad_x, dwy_partial.sum(0)[:size_y, :size_y], dwz_partial.sum(0)[:size_z, :size_z]


def _mix_axis(
    a: torch.Tensor,
    w: torch.Tensor,
    view: tuple[int, int, int],
    config: MixConfig,
    transpose: bool = False,
    other: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """w @ a[n] (wᵀ @ a[n]) on the (outer, S, inner) ``view`` of a; with ``other`` also Σ_n a[n] other[n]ᵀ."""
    outer, size, cols = view
    out = _empty(a.shape, a.dtype, a.device)
    tiles = axis_tiles(size, cols, config)
    bs = tiles["BS"]
    col_tiles = triton.cdiv(cols, tiles["BK"])
    if other is None:
        programs, per_program, partial = col_tiles, 1, out  # partial unused
    else:
        programs = max(1, min(col_tiles, _target_programs(a.device) // outer))
        per_program = triton.cdiv(col_tiles, programs)
        programs = triton.cdiv(col_tiles, per_program)
        partial = _empty((outer * programs, bs, bs), torch.float32, a.device)
    _axis_kernel[(outer, programs)](
        a,
        w,
        out,
        a if other is None else other,
        partial,
        size,
        cols,
        per_program,
        TRANSPOSE_W=transpose,
        WITH_WEIGHT_GRAD=other is not None,
        **tiles,
        PRECISION=_precision(a.dtype),
        num_warps=config.axis_warps,
    )
    weight_grad = None if other is None else partial.sum(0)[:size, :size]
    return out, weight_grad


def _axis_views(shape: torch.Size) -> tuple[tuple[int, int, int], ...]:
    """(outer, S, inner) views of a (B, X, Y, Z, C) tensor for mixing along x, y and z."""
    batch, size_x, size_y, size_z, channels = shape
    return (
        (batch, size_x, size_y * size_z * channels),
        (batch * size_x, size_y, size_z * channels),
        (batch * size_x * size_y, size_z, channels),
    )


def mix3d_forward(
    x: torch.Tensor, w_x: torch.Tensor, w_y: torch.Tensor, w_z: torch.Tensor, config: MixConfig | None = None
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """y = x ×₁ w_x ×₂ w_y ×₃ w_z, and the intermediates the backward needs."""
    config = config or MIX_CONFIG
    x, w_x, w_y, w_z = (t.contiguous() for t in (x, w_x, w_y, w_z))
    view_x, view_y, view_z = _axis_views(x.shape)
    strategy = mix3d_strategy(x.shape, config)
    if strategy == "planes":
        mixed_yz = _plane_forward(x, w_y, w_z, config)
        out, _ = _mix_axis(mixed_yz, w_x, view_x, config)
        return out, (mixed_yz,)
    if strategy == "axes":
        mixed_x, _ = _mix_axis(x, w_x, view_x, config)
        mixed_xy, _ = _mix_axis(mixed_x, w_y, view_y, config)
        out, _ = _mix_axis(mixed_xy, w_z, view_z, config)
        return out, (mixed_x, mixed_xy)
    raise KernelError(f"monarch_mix_3d: unknown strategy {config.strategy!r}; use 'planes' or 'axes'")


def mix3d_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    w_x: torch.Tensor,
    w_y: torch.Tensor,
    w_z: torch.Tensor,
    saved: tuple[torch.Tensor, ...],
    config: MixConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """dx, dw_x, dw_y, dw_z of :func:`mix3d_forward` (same ``config``)."""
    config = config or MIX_CONFIG
    grad_out = grad_out.contiguous()
    view_x, view_y, view_z = _axis_views(x.shape)
    if mix3d_strategy(x.shape, config) == "planes":
        (mixed_yz,) = saved
        grad_mixed, dw_x = _mix_axis(grad_out, w_x, view_x, config, transpose=True, other=mixed_yz)
        grad_x, dw_y, dw_z = _plane_backward(grad_mixed, x, w_y, w_z, config)
    else:
        mixed_x, mixed_xy = saved
        grad_xy, dw_z = _mix_axis(grad_out, w_z, view_z, config, transpose=True, other=mixed_xy)
        grad_mx, dw_y = _mix_axis(grad_xy, w_y, view_y, config, transpose=True, other=mixed_x)
        grad_x, dw_x = _mix_axis(grad_mx, w_x, view_x, config, transpose=True, other=x)
    return grad_x, dw_x.to(w_x.dtype), dw_y.to(w_y.dtype), dw_z.to(w_z.dtype)


# ----------------------------------------------------------------------------------------------------
# monarch_linear kernels
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _stride_permute(h, NB: tl.constexpr, BM: tl.constexpr, Q: tl.constexpr):
    """Pᵀ on a (NB, BM, Q) tile: the flat (NB·Q) row read as (Q, NB) and transposed to (NB, BM, Q)."""
    return tl.permute(tl.reshape(tl.permute(h, (1, 0, 2)), (BM, Q, NB)), (2, 0, 1))


@triton.jit
def _stride_unpermute(a, NB: tl.constexpr, BM: tl.constexpr, Q: tl.constexpr):
    """The inverse of :func:`_stride_permute`."""
    return tl.permute(tl.reshape(tl.permute(a, (1, 2, 0)), (BM, NB, Q)), (1, 0, 2))


@triton.jit
def _linear_forward_kernel(
    X,
    L,
    R,
    OUT,
    n_rows,
    NB: tl.constexpr,
    P: tl.constexpr,
    Q: tl.constexpr,
    S: tl.constexpr,
    BM: tl.constexpr,
    PRECISION: tl.constexpr,
):
    kk = tl.arange(0, NB)
    m = tl.program_id(0) * BM + tl.arange(0, BM)
    p = tl.arange(0, P)
    q = tl.arange(0, Q)
    s = tl.arange(0, S)
    rows_ok = (m < n_rows)[None, :, None]
    m64 = m.to(tl.int64)
    x = tl.load(
        X + m64[None, :, None] * (NB * P) + kk[:, None, None] * P + p[None, None, :], mask=rows_ok, other=0.0
    )
    r_t = tl.load(R + kk[:, None, None] * (Q * P) + q[None, None, :] * P + p[None, :, None])  # (NB, P, Q)
    l_t = tl.load(L + kk[:, None, None] * (S * Q) + s[None, None, :] * Q + q[None, :, None])  # (NB, Q, S)
    hidden = tl.dot(x, r_t, input_precision=PRECISION)  # (NB, BM, Q): the blocks of R
    hidden = _stride_permute(hidden, NB, BM, Q).to(x.dtype)
    out = tl.dot(hidden, l_t, input_precision=PRECISION)  # (NB, BM, S): the blocks of L
    # P: output feature s·NB + l holds entry s of block l.
    tl.store(
        OUT + m64[None, :, None] * (NB * S) + s[None, None, :] * NB + kk[:, None, None],
        out.to(OUT.dtype.element_ty),
        mask=rows_ok,
    )


@triton.jit
def _linear_backward_kernel(
    X,
    L,
    R,
    GRAD_OUT,
    GRAD_X,
    DL_PARTIAL,
    DR_PARTIAL,
    n_rows,
    tiles_per_program,
    NB: tl.constexpr,
    P: tl.constexpr,
    Q: tl.constexpr,
    S: tl.constexpr,
    BM: tl.constexpr,
    PRECISION: tl.constexpr,
):
    prog = tl.program_id(0)
    kk = tl.arange(0, NB)
    p = tl.arange(0, P)
    q = tl.arange(0, Q)
    s = tl.arange(0, S)
    r_t = tl.load(R + kk[:, None, None] * (Q * P) + q[None, None, :] * P + p[None, :, None])  # (NB, P, Q)
    r = tl.load(R + kk[:, None, None] * (Q * P) + q[None, :, None] * P + p[None, None, :])  # (NB, Q, P)
    left = tl.load(L + kk[:, None, None] * (S * Q) + s[None, :, None] * Q + q[None, None, :])  # (NB, S, Q)
    dl = tl.zeros([NB, S, Q], dtype=tl.float32)
    dr = tl.zeros([NB, Q, P], dtype=tl.float32)
    for step in range(0, tiles_per_program):
        m = (prog * tiles_per_program + step) * BM + tl.arange(0, BM)
        rows_ok = (m < n_rows)[None, :, None]
        m64 = m.to(tl.int64)
        x_offsets = m64[None, :, None] * (NB * P) + kk[:, None, None] * P + p[None, None, :]
        x = tl.load(X + x_offsets, mask=rows_ok, other=0.0)
        g = tl.load(
            GRAD_OUT + m64[None, :, None] * (NB * S) + s[None, None, :] * NB + kk[:, None, None],
            mask=rows_ok,
            other=0.0,
        )  # (NB, BM, S)
        hidden = _stride_permute(tl.dot(x, r_t, input_precision=PRECISION), NB, BM, Q).to(x.dtype)
        dl += tl.dot(tl.permute(g, (0, 2, 1)), hidden, input_precision=PRECISION)
        g_hidden = tl.dot(g, left, input_precision=PRECISION)  # (NB, BM, Q), permuted order
        g_hidden = _stride_unpermute(g_hidden, NB, BM, Q).to(x.dtype)
        dr += tl.dot(tl.permute(g_hidden, (0, 2, 1)), x, input_precision=PRECISION)
        grad_x = tl.dot(g_hidden, r, input_precision=PRECISION)  # (NB, BM, P)
        tl.store(GRAD_X + x_offsets, grad_x.to(GRAD_X.dtype.element_ty), mask=rows_ok)
    tl.store(
        DL_PARTIAL
        + prog * (NB * S * Q)
        + kk[:, None, None] * (S * Q)
        + s[None, :, None] * Q
        + q[None, None, :],
        dl,
    )
    tl.store(
        DR_PARTIAL
        + prog * (NB * Q * P)
        + kk[:, None, None] * (Q * P)
        + q[None, :, None] * P
        + p[None, None, :],
        dr,
    )


# ----------------------------------------------------------------------------------------------------
# monarch_linear launchers
# ----------------------------------------------------------------------------------------------------


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def linear_unsupported_reason(left_shape: torch.Size, right_shape: torch.Size) -> str | None:
    """Why the fused kernels cannot take these factor shapes, or None if they can."""
    nblocks, mid, in_block = right_shape
    out_block = left_shape[1]
    if not _is_power_of_two(nblocks):
        return f"nblocks={nblocks} is not a power of two"
    for name, size in (("in_block", in_block), ("mid", mid), ("out_block", out_block)):
        if size < 16 or not _is_power_of_two(size):
            return f"{name}={size} is not a power of two ≥ 16 (fewer, larger blocks)"
    if nblocks * max(in_block, mid, out_block) > LINEAR_MAX_FEATURES:
        return f"more than {LINEAR_MAX_FEATURES} features per row"
    if nblocks * mid * max(in_block, out_block) > LINEAR_MAX_WEIGHT_BLOCK:
        return f"a factor has more than {LINEAR_MAX_WEIGHT_BLOCK} elements (use more blocks)"
    return None


def _linear_rows(features: int) -> int:
    return max(16, min(LINEAR_CONFIG.max_rows, LINEAR_CONFIG.tile_elements // features))


def linear_forward(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """y = P L Pᵀ R x over the last axis of x."""
    nblocks, mid, in_block = right.shape
    out_block = left.shape[1]
    rows = x.reshape(-1, nblocks * in_block).contiguous()
    out = _empty((rows.shape[0], nblocks * out_block), x.dtype, x.device)
    bm = _linear_rows(nblocks * max(in_block, mid, out_block))
    _linear_forward_kernel[(triton.cdiv(rows.shape[0], bm),)](
        rows,
        left.contiguous(),
        right.contiguous(),
        out,
        rows.shape[0],
        NB=nblocks,
        P=in_block,
        Q=mid,
        S=out_block,
        BM=bm,
        PRECISION=_precision(x.dtype),
        num_warps=LINEAR_CONFIG.num_warps,
    )
    return out.reshape(*x.shape[:-1], nblocks * out_block)


def linear_backward(
    grad_out: torch.Tensor, x: torch.Tensor, left: torch.Tensor, right: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dx, dL, dR of :func:`linear_forward`."""
    nblocks, mid, in_block = right.shape
    out_block = left.shape[1]
    rows = x.reshape(-1, nblocks * in_block).contiguous()
    grad_rows = grad_out.reshape(-1, nblocks * out_block).contiguous()
    n_rows = rows.shape[0]
    bm = _linear_rows(nblocks * max(in_block, mid, out_block))
    tiles = triton.cdiv(n_rows, bm)
    programs = max(1, min(tiles, _target_programs(x.device)))
    per_program = triton.cdiv(tiles, programs)
    programs = triton.cdiv(tiles, per_program)
    grad_x = _empty(rows.shape, rows.dtype, rows.device)
    dl_partial = _empty((programs, *left.shape), torch.float32, x.device)
    dr_partial = _empty((programs, *right.shape), torch.float32, x.device)
    _linear_backward_kernel[(programs,)](
        rows,
        left.contiguous(),
        right.contiguous(),
        grad_rows,
        grad_x,
        dl_partial,
        dr_partial,
        n_rows,
        per_program,
        NB=nblocks,
        P=in_block,
        Q=mid,
        S=out_block,
        BM=bm,
        PRECISION=_precision(x.dtype),
        num_warps=LINEAR_CONFIG.num_warps,
    )
    return grad_x.reshape(x.shape), dl_partial.sum(0).to(left.dtype), dr_partial.sum(0).to(right.dtype)
