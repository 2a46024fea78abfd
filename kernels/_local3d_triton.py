"""Triton forward and backward of local 3D attention (see :mod:`kernels.local_attention_3d`).

Each program owns a brick of the token grid (a ``tile`` of tx × ty × tz tokens, up to 128) for one
(batch, head). The windows of a brick's queries cover a brick of keys of at most (tx + wx - 1) ×
(ty + wy - 1) × (tz + wz - 1) tokens (borders clamped, so it never leaves the grid); the program walks it
in inner blocks of ``ky`` rows along y × ``kz`` tokens along z at one x (rows of z are contiguous in
memory), masks each (query, key) pair to the query's own window, and runs a flash-attention step on the
tensor cores. Forward: online softmax in float32, the output and the log-sum-exp (base 2, of the scaled
scores) stored. Backward, with Δ = rowsum(dO ∘ O) from a small kernel:
- ``_query_grad_kernel`` (query bricks, as the forward): dQ = scale · Σ P∘(dP − Δ) K;
- ``_key_value_grad_kernel`` (key bricks): the queries whose windows contain a key form an interval per
  axis (``_first_query`` .. ``_last_query``), walked the same way: dV = Σ Pᵀ dO, dK = scale · Σ dSᵀ Q.
No atomics: every output element is written once, so results are deterministic.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
import triton
import triton.language as tl

LOG2_E = 1.4426950408889634


@dataclasses.dataclass(frozen=True)
class Tiles:
    """The brick of tokens one program owns, the inner block it walks, and its launch parameters.

    Attributes:
        tile: (tx, ty, tz) tokens of the program's brick (powers of two).
        block: (ky, kz) rows along y × tokens along z of each inner block (powers of two).
        num_warps, num_stages: Triton launch parameters.
    """

    tile: tuple[int, int, int]
    block: tuple[int, int]
    num_warps: int = 4
    num_stages: int = 2

    @property
    def block_m(self) -> int:
        return math.prod(self.tile)

    @property
    def block_n(self) -> int:
        return math.prod(self.block)


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """Tiles of the three token-loop kernels; ``poison`` fills every output with NaN first (tests)."""

    # Fastest of the sweep in benchmarks/kernels_mixers.py on an H200 (7³ window, 32³ grid, D=64, bf16).
    forward: Tiles = Tiles((4, 4, 8), (4, 16), num_warps=4, num_stages=3)
    query_grad: Tiles = Tiles((4, 4, 8), (2, 16), num_warps=4, num_stages=3)
    key_value_grad: Tiles = Tiles((4, 4, 8), (2, 16), num_warps=4, num_stages=3)
    poison: bool = False


DEFAULT_CONFIG = LaunchConfig()


def _dot_precision(dtype: torch.dtype) -> str:
    # float32 inputs keep float32 products (tests at 1e-5); half types use the tensor cores natively.
    return "ieee" if dtype == torch.float32 else "tf32"


def _tile_count(grid: Sequence[int], tile: Sequence[int]) -> int:
    return math.prod(triton.cdiv(size, t) for size, t in zip(grid, tile, strict=True))


# ----------------------------------------------------------------------------------------------------
# Index helpers
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _window_start(pos, size, WIN: tl.constexpr):
    """First key of the window of position ``pos`` along an axis: clamp(pos - WIN // 2, 0, size - WIN)."""
    return tl.minimum(tl.maximum(pos - WIN // 2, 0), size - WIN)


@triton.jit
def _first_query(key, WIN: tl.constexpr):
    """Smallest position whose window contains ``key``."""
    return tl.where(key >= WIN, key - WIN // 2, 0)


@triton.jit
def _last_query(key, size, WIN: tl.constexpr):
    """Largest position whose window contains ``key``."""
    return tl.where(key >= size - WIN, size - 1, key + WIN // 2)


@triton.jit
def _brick_origin(tile, size_y, size_z, TX: tl.constexpr, TY: tl.constexpr, TZ: tl.constexpr):
    tiles_z = tl.cdiv(size_z, TZ)
    tiles_y = tl.cdiv(size_y, TY)
    return (tile // (tiles_y * tiles_z)) * TX, ((tile // tiles_z) % tiles_y) * TY, (tile % tiles_z) * TZ


# ----------------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _forward_kernel(
    Q,
    K,
    V,
    O,
    LSE,
    size_x,
    size_y,
    size_z,
    n_tokens,
    scale_log2,
    HEAD_DIM: tl.constexpr,
    VALUE_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    WX: tl.constexpr,
    WY: tl.constexpr,
    WZ: tl.constexpr,
    TX: tl.constexpr,
    TY: tl.constexpr,
    TZ: tl.constexpr,
    KY: tl.constexpr,
    KZ: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
):
    bh = tl.program_id(1).to(tl.int64)
    x0, y0, z0 = _brick_origin(tl.program_id(0), size_y, size_z, TX, TY, TZ)
    rows = tl.arange(0, BLOCK_M)
    qx = x0 + rows // (TY * TZ)
    qy = y0 + (rows // TZ) % TY
    qz = z0 + rows % TZ
    q_valid = (qx < size_x) & (qy < size_y) & (qz < size_z)
    q_tok = (qx * size_y + qy) * size_z + qz
    sx = _window_start(qx, size_x, WX)
    sy = _window_start(qy, size_y, WY)
    sz = _window_start(qz, size_z, WZ)
    # Keys any query of the brick can see: [first window start, last window start + W) per axis.
    ux0 = _window_start(x0, size_x, WX)
    uy0 = _window_start(y0, size_y, WY)
    uz0 = _window_start(z0, size_z, WZ)
    ux1 = _window_start(tl.minimum(x0 + TX - 1, size_x - 1), size_x, WX) + WX
    uy1 = _window_start(tl.minimum(y0 + TY - 1, size_y - 1), size_y, WY) + WY
    uz1 = _window_start(tl.minimum(z0 + TZ - 1, size_z - 1), size_z, WZ) + WZ
    blocks_y = tl.cdiv(uy1 - uy0, KY)
    blocks_z = tl.cdiv(uz1 - uz0, KZ)
    n_steps = (ux1 - ux0) * blocks_y * blocks_z

    d = tl.arange(0, BLOCK_D)
    dv = tl.arange(0, BLOCK_DV)
    qk_base = bh * n_tokens * HEAD_DIM
    v_base = bh * n_tokens * VALUE_DIM
    q = tl.load(
        Q + qk_base + q_tok[:, None] * HEAD_DIM + d[None, :],
        mask=q_valid[:, None] & (d[None, :] < HEAD_DIM),
        other=0.0,
    )
    cols = tl.arange(0, BLOCK_N)
    col_y = cols // KZ
    col_z = cols % KZ

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_DV], dtype=tl.float32)
    for step in range(0, n_steps):
        rest = step // blocks_z
        kx = ux0 + rest // blocks_y
        ky = uy0 + (rest % blocks_y) * KY + col_y
        kz = uz0 + (step % blocks_z) * KZ + col_z
        k_valid = (ky < uy1) & (kz < uz1)
        k_tok = (kx * size_y + ky) * size_z + kz
        k = tl.load(
            K + qk_base + k_tok[:, None] * HEAD_DIM + d[None, :],
            mask=k_valid[:, None] & (d[None, :] < HEAD_DIM),
            other=0.0,
        )
        v = tl.load(
            V + v_base + k_tok[:, None] * VALUE_DIM + dv[None, :],
            mask=k_valid[:, None] & (dv[None, :] < VALUE_DIM),
            other=0.0,
        )
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale_log2
        # Keys past the brick's key range lie outside every window of the brick, so this mask also
        # removes the padding of the inner block.
        in_x = (sx <= kx) & (kx < sx + WX)
        in_y = (sy[:, None] <= ky[None, :]) & (ky[None, :] < sy[:, None] + WY)
        in_z = (sz[:, None] <= kz[None, :]) & (kz[None, :] < sz[:, None] + WZ)
        s = tl.where(in_x[:, None] & in_y & in_z, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with no key yet stay at zero
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new

    l_safe = tl.where(l_i > 0.0, l_i, 1.0)
    out = acc / l_safe[:, None]
    tl.store(
        O + v_base + q_tok[:, None] * VALUE_DIM + dv[None, :],
        out.to(O.dtype.element_ty),
        mask=q_valid[:, None] & (dv[None, :] < VALUE_DIM),
    )
    tl.store(LSE + bh * n_tokens + q_tok, m_i + tl.log2(l_safe), mask=q_valid)


@triton.jit
def _delta_kernel(O, DO, DELTA, n_rows, VALUE_DIM: tl.constexpr, BLOCK_DV: tl.constexpr, BLOCK: tl.constexpr):
    """Δ = rowsum(dO ∘ O) in float32, one value per (batch, head, token)."""
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    dv = tl.arange(0, BLOCK_DV)
    mask = (rows[:, None] < n_rows) & (dv[None, :] < VALUE_DIM)
    offsets = rows.to(tl.int64)[:, None] * VALUE_DIM + dv[None, :]
    o = tl.load(O + offsets, mask=mask, other=0.0).to(tl.float32)
    do = tl.load(DO + offsets, mask=mask, other=0.0).to(tl.float32)
    tl.store(DELTA + rows, tl.sum(o * do, 1), mask=rows < n_rows)


@triton.jit
def _query_grad_kernel(
    Q,
    K,
    V,
    DO,
    LSE,
    DELTA,
    DQ,
    size_x,
    size_y,
    size_z,
    n_tokens,
    scale,
    scale_log2,
    HEAD_DIM: tl.constexpr,
    VALUE_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    WX: tl.constexpr,
    WY: tl.constexpr,
    WZ: tl.constexpr,
    TX: tl.constexpr,
    TY: tl.constexpr,
    TZ: tl.constexpr,
    KY: tl.constexpr,
    KZ: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
):
    bh = tl.program_id(1).to(tl.int64)
    x0, y0, z0 = _brick_origin(tl.program_id(0), size_y, size_z, TX, TY, TZ)
    rows = tl.arange(0, BLOCK_M)
    qx = x0 + rows // (TY * TZ)
    qy = y0 + (rows // TZ) % TY
    qz = z0 + rows % TZ
    q_valid = (qx < size_x) & (qy < size_y) & (qz < size_z)
    q_tok = (qx * size_y + qy) * size_z + qz
    sx = _window_start(qx, size_x, WX)
    sy = _window_start(qy, size_y, WY)
    sz = _window_start(qz, size_z, WZ)
    ux0 = _window_start(x0, size_x, WX)
    uy0 = _window_start(y0, size_y, WY)
    uz0 = _window_start(z0, size_z, WZ)
    ux1 = _window_start(tl.minimum(x0 + TX - 1, size_x - 1), size_x, WX) + WX
    uy1 = _window_start(tl.minimum(y0 + TY - 1, size_y - 1), size_y, WY) + WY
    uz1 = _window_start(tl.minimum(z0 + TZ - 1, size_z - 1), size_z, WZ) + WZ
    blocks_y = tl.cdiv(uy1 - uy0, KY)
    blocks_z = tl.cdiv(uz1 - uz0, KZ)
    n_steps = (ux1 - ux0) * blocks_y * blocks_z

    d = tl.arange(0, BLOCK_D)
    dv = tl.arange(0, BLOCK_DV)
    qk_base = bh * n_tokens * HEAD_DIM
    v_base = bh * n_tokens * VALUE_DIM
    d_mask = d[None, :] < HEAD_DIM
    q = tl.load(
        Q + qk_base + q_tok[:, None] * HEAD_DIM + d[None, :], mask=q_valid[:, None] & d_mask, other=0.0
    )
    do = tl.load(
        DO + v_base + q_tok[:, None] * VALUE_DIM + dv[None, :],
        mask=q_valid[:, None] & (dv[None, :] < VALUE_DIM),
        other=0.0,
    )
    lse = tl.load(LSE + bh * n_tokens + q_tok, mask=q_valid, other=0.0)
    delta = tl.load(DELTA + bh * n_tokens + q_tok, mask=q_valid, other=0.0)
    cols = tl.arange(0, BLOCK_N)
    col_y = cols // KZ
    col_z = cols % KZ

    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    for step in range(0, n_steps):
        rest = step // blocks_z
        kx = ux0 + rest // blocks_y
        ky = uy0 + (rest % blocks_y) * KY + col_y
        kz = uz0 + (step % blocks_z) * KZ + col_z
        k_valid = (ky < uy1) & (kz < uz1)
        k_tok = (kx * size_y + ky) * size_z + kz
        k = tl.load(
            K + qk_base + k_tok[:, None] * HEAD_DIM + d[None, :], mask=k_valid[:, None] & d_mask, other=0.0
        )
        v = tl.load(
            V + v_base + k_tok[:, None] * VALUE_DIM + dv[None, :],
            mask=k_valid[:, None] & (dv[None, :] < VALUE_DIM),
            other=0.0,
        )
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale_log2
        in_x = (sx <= kx) & (kx < sx + WX)
        in_y = (sy[:, None] <= ky[None, :]) & (ky[None, :] < sy[:, None] + WY)
        in_z = (sz[:, None] <= kz[None, :]) & (kz[None, :] < sz[:, None] + WZ)
        p = tl.where(in_x[:, None] & in_y & in_z, tl.exp2(s - lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)

    tl.store(
        DQ + qk_base + q_tok[:, None] * HEAD_DIM + d[None, :],
        (dq * scale).to(DQ.dtype.element_ty),
        mask=q_valid[:, None] & d_mask,
    )


@triton.jit
def _key_value_grad_kernel(
    Q,
    K,
    V,
    DO,
    LSE,
    DELTA,
    DK,
    DV,
    size_x,
    size_y,
    size_z,
    n_tokens,
    scale,
    scale_log2,
    HEAD_DIM: tl.constexpr,
    VALUE_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    WX: tl.constexpr,
    WY: tl.constexpr,
    WZ: tl.constexpr,
    TX: tl.constexpr,
    TY: tl.constexpr,
    TZ: tl.constexpr,
    KY: tl.constexpr,
    KZ: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
):
    bh = tl.program_id(1).to(tl.int64)
    x0, y0, z0 = _brick_origin(tl.program_id(0), size_y, size_z, TX, TY, TZ)
    rows = tl.arange(0, BLOCK_M)
    kx = x0 + rows // (TY * TZ)
    ky = y0 + (rows // TZ) % TY
    kz = z0 + rows % TZ
    k_valid = (kx < size_x) & (ky < size_y) & (kz < size_z)
    k_tok = (kx * size_y + ky) * size_z + kz
    # Queries whose windows contain some key of the brick: an interval per axis.
    ux0 = _first_query(x0, WX)
    uy0 = _first_query(y0, WY)
    uz0 = _first_query(z0, WZ)
    ux1 = _last_query(tl.minimum(x0 + TX - 1, size_x - 1), size_x, WX) + 1
    uy1 = _last_query(tl.minimum(y0 + TY - 1, size_y - 1), size_y, WY) + 1
    uz1 = _last_query(tl.minimum(z0 + TZ - 1, size_z - 1), size_z, WZ) + 1
    blocks_y = tl.cdiv(uy1 - uy0, KY)
    blocks_z = tl.cdiv(uz1 - uz0, KZ)
    n_steps = (ux1 - ux0) * blocks_y * blocks_z

    d = tl.arange(0, BLOCK_D)
    dv = tl.arange(0, BLOCK_DV)
    qk_base = bh * n_tokens * HEAD_DIM
    v_base = bh * n_tokens * VALUE_DIM
    d_mask = d[None, :] < HEAD_DIM
    dv_mask = dv[None, :] < VALUE_DIM
    k = tl.load(
        K + qk_base + k_tok[:, None] * HEAD_DIM + d[None, :], mask=k_valid[:, None] & d_mask, other=0.0
    )
    v = tl.load(
        V + v_base + k_tok[:, None] * VALUE_DIM + dv[None, :], mask=k_valid[:, None] & dv_mask, other=0.0
    )
    cols = tl.arange(0, BLOCK_N)
    col_y = cols // KZ
    col_z = cols % KZ

    dk = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    dv_acc = tl.zeros([BLOCK_M, BLOCK_DV], dtype=tl.float32)
    for step in range(0, n_steps):
        rest = step // blocks_z
        qx = ux0 + rest // blocks_y
        qy = uy0 + (rest % blocks_y) * KY + col_y
        qz = uz0 + (step % blocks_z) * KZ + col_z
        q_in = (qy < uy1) & (qz < uz1)
        q_tok = (qx * size_y + qy) * size_z + qz
        q = tl.load(
            Q + qk_base + q_tok[:, None] * HEAD_DIM + d[None, :], mask=q_in[:, None] & d_mask, other=0.0
        )
        do = tl.load(
            DO + v_base + q_tok[:, None] * VALUE_DIM + dv[None, :], mask=q_in[:, None] & dv_mask, other=0.0
        )
        lse = tl.load(LSE + bh * n_tokens + q_tok, mask=q_in, other=0.0)
        delta = tl.load(DELTA + bh * n_tokens + q_tok, mask=q_in, other=0.0)
        sx = _window_start(qx, size_x, WX)
        sy = _window_start(qy, size_y, WY)
        sz = _window_start(qz, size_z, WZ)
        in_x = (sx <= kx) & (kx < sx + WX)
        in_y = (sy[None, :] <= ky[:, None]) & (ky[:, None] < sy[None, :] + WY)
        in_z = (sz[None, :] <= kz[:, None]) & (kz[:, None] < sz[None, :] + WZ)
        allowed = in_x[:, None] & in_y & in_z & q_in[None, :]
        s_t = tl.dot(k, tl.trans(q), input_precision=PRECISION) * scale_log2  # (keys, queries)
        p_t = tl.where(allowed, tl.exp2(s_t - lse[None, :]), 0.0)
        dv_acc += tl.dot(p_t.to(do.dtype), do, input_precision=PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += tl.dot(ds_t.to(q.dtype), q, input_precision=PRECISION)

    tl.store(
        DK + qk_base + k_tok[:, None] * HEAD_DIM + d[None, :],
        (dk * scale).to(DK.dtype.element_ty),
        mask=k_valid[:, None] & d_mask,
    )
    tl.store(
        DV + v_base + k_tok[:, None] * VALUE_DIM + dv[None, :],
        dv_acc.to(DV.dtype.element_ty),
        mask=k_valid[:, None] & dv_mask,
    )


# ----------------------------------------------------------------------------------------------------
# Launchers
# ----------------------------------------------------------------------------------------------------


def _block_dim(dim: int) -> int:
    return max(16, triton.next_power_of_2(dim))  # 16: the smallest matmul extent of the tensor cores


def _constexprs(q: torch.Tensor, v: torch.Tensor, window: Sequence[int], tiles: Tiles) -> dict:
    (tx, ty, tz), (ky, kz) = tiles.tile, tiles.block
    wx, wy, wz = window
    return {
        "HEAD_DIM": q.shape[-1],
        "VALUE_DIM": v.shape[-1],
        "BLOCK_D": _block_dim(q.shape[-1]),
        "BLOCK_DV": _block_dim(v.shape[-1]),
        "WX": wx,
        "WY": wy,
        "WZ": wz,
        "TX": tx,
        "TY": ty,
        "TZ": tz,
        "KY": ky,
        "KZ": kz,
        "BLOCK_M": tiles.block_m,
        "BLOCK_N": tiles.block_n,
        "PRECISION": _dot_precision(q.dtype),
        "num_warps": tiles.num_warps,
        "num_stages": tiles.num_stages,
    }


def _new_output(shape: Sequence[int], like: torch.Tensor, dtype: torch.dtype, poison: bool) -> torch.Tensor:
    out = torch.empty(shape, dtype=dtype, device=like.device)
    return out.fill_(float("nan")) if poison else out


def forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    grid: Sequence[int],
    window: Sequence[int],
    config: LaunchConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Output (B, H, N, Dv) and the float32 log-sum-exp (B, H, N) (base 2, of the scaled scores)."""
    config = config or DEFAULT_CONFIG
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    batch, heads, n, dim = q.shape
    out = _new_output((batch, heads, n, v.shape[-1]), q, q.dtype, config.poison)
    lse = _new_output((batch, heads, n), q, torch.float32, config.poison)
    tiles = config.forward
    launch = (_tile_count(grid, tiles.tile), batch * heads)
    _forward_kernel[launch](
        q, k, v, out, lse, *grid, n, LOG2_E / math.sqrt(dim), **_constexprs(q, v, window, tiles)
    )
    return out, lse


def backward(
    grad_out: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    grid: Sequence[int],
    window: Sequence[int],
    config: LaunchConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dQ, dK, dV of the local attention given dO, recomputing the probabilities from the log-sum-exp."""
    config = config or DEFAULT_CONFIG
    q, k, v, grad_out = q.contiguous(), k.contiguous(), v.contiguous(), grad_out.contiguous()
    batch, heads, n, dim = q.shape
    value_dim = v.shape[-1]
    delta = _new_output((batch, heads, n), q, torch.float32, config.poison)
    rows = batch * heads * n
    delta_block = 64
    _delta_kernel[(triton.cdiv(rows, delta_block),)](
        out, grad_out, delta, rows, VALUE_DIM=value_dim, BLOCK_DV=_block_dim(value_dim), BLOCK=delta_block
    )
    dq = _new_output(q.shape, q, q.dtype, config.poison)
    dk = _new_output(k.shape, k, k.dtype, config.poison)
    dv = _new_output(v.shape, v, v.dtype, config.poison)
    scale = 1.0 / math.sqrt(dim)
    scalars = (*grid, n, scale, scale * LOG2_E)
    tiles = config.query_grad
    _query_grad_kernel[(_tile_count(grid, tiles.tile), batch * heads)](
        q, k, v, grad_out, lse, delta, dq, *scalars, **_constexprs(q, v, window, tiles)
    )
    tiles = config.key_value_grad
    _key_value_grad_kernel[(_tile_count(grid, tiles.tile), batch * heads)](
        q, k, v, grad_out, lse, delta, dk, dv, *scalars, **_constexprs(q, v, window, tiles)
    )
    return dq, dk, dv
