"""Triton forward and backward of Taylor linear attention (see :mod:`kernels.taylor_linear_attention`).

Notation, per (batch, head): φ(x) = [1, x, x⊗x] on the key side (unscaled, x⊗x as all d² products
x_i x_j, so no index bookkeeping for the symmetric half) and φ̃(q) = [1, q/√d, q⊗q/(2d)] on the query
side, so φ̃(q)·φ(k) = 1 + q·k/√d + (q·k)²/(2d). The state

    S = Σ_m φ(k_m) v_mᵀ  ((1 + d + d²) × D),   z = Σ_m φ(k_m)

is split into S2 (d² × D, from k⊗k), S1 (d × D) and S0 (D); the quadratic part enters every product as
one tensor-core matmul over the block of tokens, so φ is formed on-chip and never stored.

Work is split into C chunks of the sequence per (batch, head). Forward:
1. ``_state_partial_kernel``: each chunk's partial state to a buffer (no atomics);
2. ``_reduce_kernel``: the partials summed in a fixed order (deterministic), divided by the number of
   real keys c (keeps the state's magnitude O(1) for float16/bfloat16 matmul operands; eps becomes eps/c);
3. ``_output_kernel``: y = φ̃(q)ᵀŜ / (φ̃(q)ᵀẑ + eps/c).
Backward, with g = dL/dy, den = φ̃(q)ᵀẑ + eps/c, dnum = g/den, dden = -(g·y)/den:
1. ``_query_grad_kernel``: dq from dφ̃(q) = Ŝ dnum + ẑ dden, writing dnum and dden;
2. ``_state_partial_kernel`` on (q, dnum) with weights dden: the chunk's partial dŜ = Σ φ̃(q) dnumᵀ,
   dẑ = Σ φ̃(q) dden (``LaunchConfig.query_backward`` also offers both steps in one kernel, "fused");
3. ``_reduce_kernel``: dS = Σ dŜ / c, dz = Σ dẑ / c (and the scales of φ̃);
4. ``_key_grad_kernel``: dv = dSᵀ φ(k), dk from dφ(k) = dS v + dz.
The quadratic parts use the symmetry of S2, dS2 (as d × d matrices per column): the derivative of
x⊗x contracted with a symmetric G is 2 G x.

"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator

import torch
import triton
import triton.language as tl

FEATURE_PAD = 16  # d is padded to 16: the smallest matmul extent of the tensor cores.
QUAD_FEATURES = FEATURE_PAD * FEATURE_PAD
STATE_ROWS = QUAD_FEATURES + FEATURE_PAD + 1  # rows of S (and entries of z): S2, S1, S0
REDUCE_ROWS = 16


@dataclasses.dataclass(frozen=True)
class Tile:
    """Tokens per tile and warps per program of one kernel."""

    block_n: int
    num_warps: int


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """Tile sizes and variant of the kernels.

    Attributes:
        state, output, query_grad, key_grad: tiles of the four token-loop kernels.
        query_backward: the query-side backward as one kernel ("fused", tile ``query_grad``); as two
            passes of it, dq (tile ``query_dq``) then the state gradient (tile ``query_state``)
            ("two_pass"); or dq writing dnum, dden (tile ``query_dq``), then the forward's state kernel
            on (q, dnum) with weights dden (tile ``query_state``) ("state_kernel").
        num_stages: software-pipelining depth of the token loops (None: Triton's default).
        quad_mode: how x⊗x is formed on-chip: 0 = broadcast product in float32 + reshape, 1 = two matmuls
            with 0/1 selection matrices (2× slower on an H200; kept as a tested alternative).
        programs_per_sm: target programs per multiprocessor when choosing the number of chunks.
        wide_value_warps: warps of the kernels holding a (d² × D) accumulator when D > 64.
        prefetch_grads: the query- and key-gradient kernels load the next tile before the math of this
            one (Triton software-pipelines none of these loops: their loads do not feed tl.dot directly).
        state_feature_block: rows of S2 per program of the state kernels (``_state_block_kernel``, one
            more program per chunk for S1, S0, z); 0: one program holds the whole state
            (``_state_partial_kernel``). Only with quad_mode 0.
        state_transposed: the feature-block state kernel accumulates Sᵀ = vᵀ φ(k) (v as the A operand).
        state_separate_z: the feature-block state kernel computes z in one more program per chunk
            instead of a second matmul in each program.
        output_symmetric: the output kernel multiplies three of the four (d/2 × d/2) blocks of q⊗q with
            Ŝ2 (the fourth is the mirror image of one: weight 2), not all d² products (d = 16).
        z_products_tf32: with 16-bit inputs, the (tokens × d)·(d × d) float32 products with ẑ2 (output,
            query gradient) and dẑ2 (key gradient) on the tensor cores in tf32 instead of as exact
            float32 FMAs (the rest of those kernels multiplies 16-bit operands anyway).
        state_symmetric: the feature-block state kernel (state_feature_block = 64) skips one of the four
            8 × 8 blocks of products k_i k_j, the mirror image of another (S2 is symmetric).
        state_programs_per_sm: target programs per multiprocessor of the feature-block state kernel when
            choosing its number of chunks (its chunks are independent of the other kernels').
        output_prefetch: the output kernel loads the next tile's q before this tile's math.
        output_programs_per_sm: target programs per multiprocessor of the output kernel when choosing its
            number of chunks (None: ``programs_per_sm``); with ``output_max_registers`` (ptxas
            ``.maxnreg``, 16-bit inputs) 168 lets three 4-warp programs share a multiprocessor (170 at
            sm_90 leaves room for two).
        poison: fill every buffer the kernels write with NaN first (tests: proves every element is written).
    """

    # From the H200 sweeps and per-kernel profiles (benchmarks/results/kernels.md), N=32768, D=64, bf16.
    state: Tile = Tile(64, 4)
    output: Tile = Tile(64, 4)
    query_grad: Tile = Tile(64, 8)
    key_grad: Tile = Tile(64, 4)
    query_backward: str = "state_kernel"
    query_dq: Tile = Tile(128, 8)
    query_state: Tile = Tile(64, 4)
    num_stages: int | None = None
    quad_mode: int = 0
    programs_per_sm: int = 2
    wide_value_warps: int = 16
    prefetch_grads: bool = True
    # Session 4, H200 GPU time at N=32768 (benchmarks/results/kernels.md): state kernels 224 -> 206 µs
    # per fwd+bwd with symmetric 64-row feature blocks and a z program; dq pass 150 -> 124 µs and key
    # gradient 108 -> 88 µs with the z products in tf32. Slower there: z by matmul, transposed, 128-row
    # blocks, 2 programs per SM, (32, 4) tiles, the symmetric output kernel.
    state_feature_block: int = 64
    state_transposed: bool = False
    state_separate_z: bool = True
    state_symmetric: bool = True
    output_symmetric: bool = False
    z_products_tf32: bool = True
    state_programs_per_sm: int = 4
    # Session 6, H200 GPU time at N=32768 (benchmarks/results/kernels_session6.md): output kernel 64 -> 45 µs
    # with the q prefetch and three programs per SM (168 registers), forward 0.169 -> 0.150 ms.
    output_prefetch: bool = True
    output_programs_per_sm: int | None = 3
    output_max_registers: int | None = 168
    poison: bool = False

    @property
    def chunk_granularity(self) -> int:
        """Chunks are whole multiples of every kernel's tile."""
        tiles = (self.state, self.output, self.query_grad, self.key_grad, self.query_dq, self.query_state)
        return max(t.block_n for t in tiles)


_config = LaunchConfig()


def current_config() -> LaunchConfig:
    """The launch configuration in use."""
    return _config


def set_config(config: LaunchConfig) -> None:
    """Use ``config`` from now on (e.g. the result of the benchmark's tile sweep)."""
    global _config
    _config = config


def parse_overrides(args: list[str]) -> dict[str, object]:
    """``field=value`` launch-config overrides from the command line: integers, True/False, or tiles as
    BLOCKxWARPS (``state=64x4``).

    Example:
        >>> parse_overrides(["state_feature_block=64", "state=32x4", "state_symmetric=True"])
        {'state_feature_block': 64, 'state': Tile(block_n=32, num_warps=4), 'state_symmetric': True}
    """
    fields = {f.name for f in dataclasses.fields(LaunchConfig)}
    overrides: dict[str, object] = {}
    for arg in args:
        field, _, value = arg.partition("=")
        if field not in fields:
            raise ValueError(f"{arg!r}: no launch-config field {field!r}")
        if "x" in value:
            overrides[field] = Tile(*(int(part) for part in value.split("x")))
        elif value in ("True", "False"):
            overrides[field] = value == "True"
        else:
            overrides[field] = int(value) if value.lstrip("-").isdigit() else value
    return overrides


@contextlib.contextmanager
def launch_config(**overrides: object) -> Iterator[LaunchConfig]:
    """Temporarily override fields of :class:`LaunchConfig` (benchmarks and tests)."""
    global _config
    previous = _config
    _config = dataclasses.replace(_config, **overrides)
    try:
        yield _config
    finally:
        _config = previous


# ----------------------------------------------------------------------------------------------------
# On-chip helpers
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _selection(ROWS: tl.constexpr, COLS: tl.constexpr, DIVIDE: tl.constexpr, dtype: tl.constexpr):
    """0/1 matrix (ROWS=DP, COLS=DP*DP): [f // DP == i] if DIVIDE else [f % DP == i], i rows, f columns."""
    i = tl.arange(0, ROWS)[:, None]
    f = tl.arange(0, COLS)[None, :]
    hit = (f // ROWS) == i if DIVIDE else (f % ROWS) == i
    return hit.to(dtype)


@triton.jit
def _pair_products(
    a, b, BLOCK_N: tl.constexpr, DP: tl.constexpr, QUAD_MODE: tl.constexpr, PRECISION: tl.constexpr
):
    """(BLOCK_N, DP) a, b in the matmul dtype -> (BLOCK_N, DP*DP) float32, column i*DP + j = a_i b_j."""
    if QUAD_MODE == 0:
        return tl.reshape(a.to(tl.float32)[:, :, None] * b.to(tl.float32)[:, None, :], (BLOCK_N, DP * DP))
    else:
        first = tl.dot(a, _selection(DP, DP * DP, True, a.dtype), input_precision=PRECISION)
        second = tl.dot(b, _selection(DP, DP * DP, False, b.dtype), input_precision=PRECISION)
        return first * second


@triton.jit
def _pair_products_t(
    at, bt, BLOCK_N: tl.constexpr, DP: tl.constexpr, QUAD_MODE: tl.constexpr, PRECISION: tl.constexpr
):
    """(DP, BLOCK_N) a, b in the matmul dtype -> (DP*DP, BLOCK_N) float32, row i*DP + j = a_i b_j."""
    if QUAD_MODE == 0:
        return tl.reshape(at.to(tl.float32)[:, None, :] * bt.to(tl.float32)[None, :, :], (DP * DP, BLOCK_N))
    else:
        first = tl.dot(tl.trans(_selection(DP, DP * DP, True, at.dtype)), at, input_precision=PRECISION)
        second = tl.dot(tl.trans(_selection(DP, DP * DP, False, bt.dtype)), bt, input_precision=PRECISION)
        return first * second


@triton.jit
def _contract_pairs(
    g,
    x,
    BLOCK_N: tl.constexpr,
    DP: tl.constexpr,
    QUAD_MODE: tl.constexpr,
    PRECISION: tl.constexpr,
    CONTRACT_PRECISION: tl.constexpr,
):
    """c_i = Σ_j g[:, i*DP + j] x_j for g (BLOCK_N, DP*DP) float32 and x (BLOCK_N, DP) in the matmul dtype."""
    if QUAD_MODE == 0:
        g3 = tl.reshape(g, (BLOCK_N, DP, DP))
        return tl.sum(g3 * x.to(tl.float32)[:, None, :], axis=2)
    else:
        x_tiled = tl.dot(x, _selection(DP, DP * DP, False, x.dtype), input_precision=PRECISION)
        group_sum = tl.trans(_selection(DP, DP * DP, True, tl.float32))
        return tl.dot(g * x_tiled, group_sum, input_precision=CONTRACT_PRECISION)


@triton.jit
def _columns_mask(valid, cols, LIMIT, EVEN: tl.constexpr):
    """valid rows × columns < LIMIT; EVEN (LIMIT = len(cols)): the rows alone, constant along the columns,
    so that loads and stores of whole rows vectorize to 16-byte accesses."""
    return valid[:, None] if EVEN else valid[:, None] & (cols[None, :] < LIMIT)


@triton.jit
def _load_rows(base, rows, stride_n, valid, WIDTH: tl.constexpr, LIMIT, EVEN: tl.constexpr = False):
    """Tile (len(rows), WIDTH) of a row-major slab; invalid rows and columns >= LIMIT read as 0."""
    cols = tl.arange(0, WIDTH)
    mask = _columns_mask(valid, cols, LIMIT, EVEN)
    return tl.load(base + rows[:, None] * stride_n + cols[None, :], mask=mask, other=0.0)


@triton.jit
def _load_state(
    STATE,
    NORM,
    bh,
    DP: tl.constexpr,
    DV: tl.constexpr,
    R: tl.constexpr,
    dtype: tl.constexpr,
    TRANSPOSED: tl.constexpr,
):
    """Ŝ2 (DP*DP, DV), Ŝ1 (DP, DV) in the matmul dtype (transposed if asked), Ŝ0 (DV), ẑ2 (DP, DP), ẑ1, ẑ0."""
    f = tl.arange(0, DP * DP)
    i = tl.arange(0, DP)
    e = tl.arange(0, DV)
    base = STATE + bh * R * DV
    if TRANSPOSED:
        s2 = tl.load(base + f[None, :] * DV + e[:, None]).to(dtype)
        s1 = tl.load(base + (DP * DP + i[None, :]) * DV + e[:, None]).to(dtype)
    else:
        s2 = tl.load(base + f[:, None] * DV + e[None, :]).to(dtype)
        s1 = tl.load(base + (DP * DP + i[:, None]) * DV + e[None, :]).to(dtype)
    s0 = tl.load(base + (DP * DP + DP) * DV + e)
    zbase = NORM + bh * R
    z2 = tl.load(zbase + i[:, None] * DP + i[None, :])
    z1 = tl.load(zbase + DP * DP + i)
    z0 = tl.load(zbase + DP * DP + DP)
    return s2, s1, s0, z2, z1, z0


@triton.jit
def _store_partial(
    PART_S,
    PART_Z,
    slot,
    acc2,
    acc1,
    acc0,
    z2,
    z1,
    z0,
    DP: tl.constexpr,
    DV: tl.constexpr,
    R: tl.constexpr,
):
    """Write one chunk's (S2, S1, S0) and (z2, z1, z0) into the partial buffers at ``slot``."""
    f = tl.arange(0, DP * DP)
    i = tl.arange(0, DP)
    e = tl.arange(0, DV)
    base = PART_S + slot * R * DV
    tl.store(base + f[:, None] * DV + e[None, :], acc2)
    tl.store(base + (DP * DP + i[:, None]) * DV + e[None, :], acc1)
    tl.store(base + (DP * DP + DP) * DV + e, acc0)
    zbase = PART_Z + slot * R
    tl.store(zbase + i[:, None] * DP + i[None, :], z2)
    tl.store(zbase + DP * DP + i, z1)
    tl.store(zbase + DP * DP + DP, z0)


@triton.jit
def _load_key_tile(
    K_BASE,
    V_BASE,
    MASK_BASE,
    rows,
    stop,
    stride_kn,
    stride_vn,
    HAS_MASK: tl.constexpr,
    DP,
    DV,
    D_QK,
    D_V,
    EVEN_QK: tl.constexpr = False,
    EVEN_V: tl.constexpr = False,
):
    """(valid, k, v) of the tile ``rows``: rows past ``stop`` or masked out are invalid and read as 0."""
    valid = rows < stop
    if HAS_MASK:
        valid = valid & (tl.load(MASK_BASE + rows, mask=valid, other=0) != 0)
    k = _load_rows(K_BASE, rows, stride_kn, valid, DP, D_QK, EVEN_QK)
    v = _load_rows(V_BASE, rows, stride_vn, valid, DV, D_V, EVEN_V)
    return valid, k, v


# ----------------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _state_partial_kernel(
    K,
    V,
    MASK,
    WEIGHT,
    PART_S,
    PART_Z,
    N,
    H,
    rows_per_chunk,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_mb,
    D_QK,
    D_V,
    HAS_MASK: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    DP: tl.constexpr,
    DV: tl.constexpr,
    R: tl.constexpr,
    BLOCK_N: tl.constexpr,
    QUAD_MODE: tl.constexpr,
    PRECISION: tl.constexpr,
    EVEN_QK: tl.constexpr = False,
    EVEN_V: tl.constexpr = False,
):
    """Partial S = Σ φ(k) vᵀ and z = Σ w φ(k) of one chunk (w = 1 per real key, or WEIGHT (bh·N + n))."""
    bh = tl.program_id(0)
    chunk = tl.program_id(1)
    b = bh // H
    h = bh % H
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    start = chunk * rows_per_chunk
    stop = tl.minimum(start + rows_per_chunk, N)

    acc2 = tl.zeros((DP * DP, DV), tl.float32)
    acc1 = tl.zeros((DP, DV), tl.float32)
    acc0 = tl.zeros((DV,), tl.float32)
    z2 = tl.zeros((DP, DP), tl.float32)
    z1 = tl.zeros((DP,), tl.float32)
    count = tl.zeros((BLOCK_N,), tl.float32)
    mask_base = MASK + b * stride_mb
    for n0 in range(start, stop, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        valid, k, v = _load_key_tile(
            k_base, v_base, mask_base, rows, stop, stride_kn, stride_vn, HAS_MASK, DP, DV, D_QK, D_V,
            EVEN_QK, EVEN_V,
        )  # fmt: skip
        kt = tl.trans(k)
        kk_t = _pair_products_t(kt, kt, BLOCK_N, DP, QUAD_MODE, PRECISION).to(v.dtype)
        acc2 = tl.dot(kk_t, v, acc2, input_precision=PRECISION)
        acc1 = tl.dot(kt, v, acc1, input_precision=PRECISION)
        acc0 += tl.sum(v.to(tl.float32), axis=0)
        if HAS_WEIGHT:
            weight = tl.load(WEIGHT + bh * N + rows, mask=valid, other=0.0)
            k_weighted = k.to(tl.float32) * weight[:, None]
            z2 = tl.dot(tl.trans(k_weighted.to(k.dtype)), k, z2, input_precision=PRECISION)
            z1 += tl.sum(k_weighted, axis=0)
            count += weight
        else:
            z2 = tl.dot(kt, k, z2, input_precision=PRECISION)
            z1 += tl.sum(k.to(tl.float32), axis=0)
            count += valid.to(tl.float32)
    slot = bh * tl.num_programs(1) + chunk
    _store_partial(PART_S, PART_Z, slot, acc2, acc1, acc0, z2, z1, tl.sum(count, axis=0), DP, DV, R)


@triton.jit
def _block_features(
    K_BASE, k, rows, valid, stride_kn, i0, j0, D_QK,
    PAIR_I: tl.constexpr, PAIR_J: tl.constexpr, DP: tl.constexpr, LINEAR: tl.constexpr, EVEN_QK: tl.constexpr,
):  # fmt: skip
    """(BLOCK_N, PAIR_I*PAIR_J) float32 features of one feature block, column c = a*PAIR_J + b.

    Quadratic block: k_i k_j with i = i0 + a, j = j0 + b. LINEAR block (PAIR_J = DP): k_b in columns
    b < DP, 1 in column DP, 0 beyond. Factors narrower than the row are re-read from memory (an L1 hit:
    this program just loaded the row) rather than sliced out of the register tile k, which Triton cannot
    index by column.
    """
    block_n: tl.constexpr = k.shape[0]
    if LINEAR:
        c = tl.arange(0, PAIR_I * PAIR_J)
        product = tl.where(c[None, :] == DP, 1.0, 0.0) + tl.zeros((block_n, PAIR_I * PAIR_J), tl.float32)
        product = tl.reshape(product, (block_n, PAIR_I, PAIR_J))
        first = (tl.arange(0, PAIR_I) == 0)[None, :, None]
        product = tl.where(first, k.to(tl.float32)[:, None, :], product)
    else:
        cols_i = i0 + tl.arange(0, PAIR_I)
        ki = tl.load(
            K_BASE + rows[:, None] * stride_kn + cols_i[None, :],
            mask=_columns_mask(valid, cols_i, D_QK, EVEN_QK), other=0.0,
        )  # fmt: skip
        if PAIR_J == DP:
            kj = k
        else:
            cols_j = j0 + tl.arange(0, PAIR_J)
            kj = tl.load(
                K_BASE + rows[:, None] * stride_kn + cols_j[None, :],
                mask=_columns_mask(valid, cols_j, D_QK, EVEN_QK), other=0.0,
            )  # fmt: skip
        product = ki.to(tl.float32)[:, :, None] * kj.to(tl.float32)[:, None, :]
    return tl.reshape(product, (block_n, PAIR_I * PAIR_J))


@triton.jit
def _state_block_loop(
    k_base, v_base, mask_base, WEIGHT, PART_S, PART_Z, slot, i0, j0, bh, N, start, stop, stride_kn,
    stride_vn, D_QK, D_V,
    HAS_MASK: tl.constexpr, HAS_WEIGHT: tl.constexpr, DP: tl.constexpr, DV: tl.constexpr, R: tl.constexpr,
    BLOCK_N: tl.constexpr, PRECISION: tl.constexpr, PAIR_I: tl.constexpr, PAIR_J: tl.constexpr,
    LINEAR: tl.constexpr, TRANSPOSED: tl.constexpr, WITH_Z: tl.constexpr, EVEN_QK: tl.constexpr,
    EVEN_V: tl.constexpr,
):  # fmt: skip
    """One feature block (``_block_features``) of one chunk's S, and of z = Σ w φ(k) if WITH_Z, to the
    partial buffers: rows (i0 + a)·DP + j0 + b of S2, or DP² + c (S1, S0) for the LINEAR block.

    z is one more matmul, φ(k)ᵀ times w broadcast to 16 columns (w = 1 per real key, or WEIGHT)."""
    FB: tl.constexpr = PAIR_I * PAIR_J
    WCOLS: tl.constexpr = 16  # the smallest matmul extent
    if TRANSPOSED:
        acc = tl.zeros((DV, FB), tl.float32)
        acc_z = tl.zeros((WCOLS, FB), tl.float32)
    else:
        acc = tl.zeros((FB, DV), tl.float32)
        acc_z = tl.zeros((FB, WCOLS), tl.float32)
    for n0 in range(start, stop, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        valid, k, v = _load_key_tile(
            k_base, v_base, mask_base, rows, stop, stride_kn, stride_vn, HAS_MASK, DP, DV, D_QK, D_V,
            EVEN_QK, EVEN_V,
        )  # fmt: skip
        phi = _block_features(
            k_base, k, rows, valid, stride_kn, i0, j0, D_QK, PAIR_I, PAIR_J, DP, LINEAR, EVEN_QK
        ).to(v.dtype)
        if WITH_Z:
            if HAS_WEIGHT:
                weight = tl.load(WEIGHT + bh * N + rows, mask=valid, other=0.0)
            else:
                weight = valid.to(tl.float32)
            w = tl.broadcast_to(weight[:, None], (BLOCK_N, WCOLS)).to(v.dtype)
        if TRANSPOSED:
            acc = tl.dot(tl.trans(v), phi, acc, input_precision=PRECISION)
            if WITH_Z:
                acc_z = tl.dot(tl.trans(w), phi, acc_z, input_precision=PRECISION)
        else:
            phi_t = tl.trans(phi)
            acc = tl.dot(phi_t, v, acc, input_precision=PRECISION)
            if WITH_Z:
                acc_z = tl.dot(phi_t, w, acc_z, input_precision=PRECISION)
    c = tl.arange(0, FB)
    if LINEAR:
        f = DP * DP + c
        keep = c <= DP
    else:
        f = (i0 + c // PAIR_J) * DP + j0 + c % PAIR_J
        keep = c < FB
    e = tl.arange(0, DV)
    if TRANSPOSED:
        tl.store(PART_S + (slot * R + f[None, :]) * DV + e[:, None], acc, mask=keep[None, :])
        z = tl.sum(tl.where(tl.arange(0, WCOLS)[:, None] == 0, acc_z, 0.0), axis=0)
    else:
        tl.store(PART_S + (slot * R + f[:, None]) * DV + e[None, :], acc, mask=keep[:, None])
        z = tl.sum(tl.where(tl.arange(0, WCOLS)[None, :] == 0, acc_z, 0.0), axis=1)
    if WITH_Z:
        tl.store(PART_Z + slot * R + f, z, mask=keep)


@triton.jit
def _norm_loop(
    k_base, mask_base, WEIGHT, PART_Z, slot, bh, N, start, stop, stride_kn, D_QK,
    HAS_MASK: tl.constexpr, HAS_WEIGHT: tl.constexpr, DP: tl.constexpr, R: tl.constexpr,
    BLOCK_N: tl.constexpr, PRECISION: tl.constexpr, EVEN_QK: tl.constexpr,
):  # fmt: skip
    """One chunk's z = Σ w φ(k) (z2 as Σ (w k) kᵀ, z1, Σ w) to the partial buffer, from k alone."""
    z2 = tl.zeros((DP, DP), tl.float32)
    z1 = tl.zeros((DP,), tl.float32)
    count = tl.zeros((BLOCK_N,), tl.float32)
    for n0 in range(start, stop, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        valid = rows < stop
        if HAS_MASK:
            valid = valid & (tl.load(mask_base + rows, mask=valid, other=0) != 0)
        k = _load_rows(k_base, rows, stride_kn, valid, DP, D_QK, EVEN_QK)
        if HAS_WEIGHT:
            weight = tl.load(WEIGHT + bh * N + rows, mask=valid, other=0.0)
        else:
            weight = valid.to(tl.float32)
        k_weighted = k.to(tl.float32) * weight[:, None]
        z2 = tl.dot(tl.trans(k_weighted.to(k.dtype)), k, z2, input_precision=PRECISION)
        z1 += tl.sum(k_weighted, axis=0)
        count += weight
    i = tl.arange(0, DP)
    zbase = PART_Z + slot * R
    tl.store(zbase + i[:, None] * DP + i[None, :], z2)
    tl.store(zbase + DP * DP + i, z1)
    tl.store(zbase + DP * DP + DP, tl.sum(count, axis=0))


@triton.jit
def _state_block_kernel(
    K,
    V,
    MASK,
    WEIGHT,
    PART_S,
    PART_Z,
    N,
    H,
    rows_per_chunk,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_mb,
    D_QK,
    D_V,
    HAS_MASK: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    DP: tl.constexpr,
    DV: tl.constexpr,
    R: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
    FEATURE_BLOCK: tl.constexpr,
    QUAD_PROGRAMS: tl.constexpr,
    PAIR_I: tl.constexpr,
    PAIR_J: tl.constexpr,
    SYMMETRIC: tl.constexpr = False,
    TRANSPOSED: tl.constexpr = False,
    SEPARATE_Z: tl.constexpr = False,
    EVEN_QK: tl.constexpr = False,
    EVEN_V: tl.constexpr = False,
):
    """``_state_partial_kernel`` with the state's rows split over programs (grid: feature block, bh, chunk).

    Program fb accumulates rows [fb·FB, (fb+1)·FB) of S and z (FB = FEATURE_BLOCK): for fb < DP²/FB the
    products k_i k_j of a slice of i and every j (S2), for fb = DP²/FB the linear and constant features
    (S1, S0; see ``_block_features``). SYMMETRIC (FEATURE_BLOCK = DP²/4): three blocks of DP/2 × DP/2
    products k_i k_j with block(i) ≤ block(j) instead of four, since S2 is symmetric in (i, j); the
    reduction reads the rows of the fourth block from their mirror images (SWAP_BLOCK). With SEPARATE_Z,
    z comes from one more program per chunk
    (``_norm_loop``) instead of a second matmul in each. Why: one program holding the whole (DP² × DV)
    float32 accumulator and the (DP² × BLOCK_N) feature tile needs 255 registers (12.5 % occupancy); an
    (FB × DV) slice needs a fraction. The programs of one chunk are adjacent in the grid, so they run
    together and their re-reads of the same k, v tiles come from L2. TRANSPOSED accumulates Sᵀ = vᵀ φ(k)
    instead (v as the A operand).
    """
    fb = tl.program_id(0)
    bh = tl.program_id(1)
    chunk = tl.program_id(2)
    b = bh // H
    h = bh % H
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    mask_base = MASK + b * stride_mb
    start = chunk * rows_per_chunk
    stop = tl.minimum(start + rows_per_chunk, N)
    slot = bh * tl.num_programs(2) + chunk
    # Programs fb < QUAD_PROGRAMS: PAIR_I × PAIR_J products k_i k_j from (i0, j0).
    if SYMMETRIC:  # blocks (i, j) of DP/2 × DP/2 products with i ≤ j: (0, 0), (0, 1), (1, 1)
        i0 = (fb // 2) * PAIR_I
        j0 = ((fb + 1) // 2) * PAIR_J
    else:  # rows i of a slice, every j
        i0 = fb * PAIR_I
        j0 = 0
    if SEPARATE_Z and fb > QUAD_PROGRAMS:
        _norm_loop(
            k_base, mask_base, WEIGHT, PART_Z, slot, bh, N, start, stop, stride_kn, D_QK,
            HAS_MASK, HAS_WEIGHT, DP, R, BLOCK_N, PRECISION, EVEN_QK,
        )  # fmt: skip
    elif fb == QUAD_PROGRAMS:
        _state_block_loop(
            k_base, v_base, mask_base, WEIGHT, PART_S, PART_Z, slot, 0, 0, bh, N, start, stop, stride_kn,
            stride_vn, D_QK, D_V, HAS_MASK, HAS_WEIGHT, DP, DV, R, BLOCK_N, PRECISION,
            FEATURE_BLOCK // DP, DP, True, TRANSPOSED, not SEPARATE_Z, EVEN_QK, EVEN_V,
        )  # fmt: skip
    else:
        _state_block_loop(
            k_base, v_base, mask_base, WEIGHT, PART_S, PART_Z, slot, i0, j0, bh, N, start, stop, stride_kn,
            stride_vn, D_QK, D_V, HAS_MASK, HAS_WEIGHT, DP, DV, R, BLOCK_N, PRECISION,
            PAIR_I, PAIR_J, False, TRANSPOSED, not SEPARATE_Z, EVEN_QK, EVEN_V,
        )  # fmt: skip


@triton.jit
def _reduce_kernel(
    PART_S,
    PART_Z,
    STATE,
    NORM,
    INV_SCALE,
    C,
    scale_quad,
    scale_lin,
    DV: tl.constexpr,
    R: tl.constexpr,
    QUAD_ROWS: tl.constexpr,
    COUNT_ROW: tl.constexpr,
    SCALE_GIVEN: tl.constexpr,
    ROWS: tl.constexpr,
    DP: tl.constexpr = 16,
    SWAP_BLOCK: tl.constexpr = 0,
):
    """Sum the C partials of one (batch, head) in chunk order and scale by 1/c (quadratic rows also by
    scale_quad, linear rows by scale_lin). SWAP_BLOCK > 0: the partials hold the quadratic rows
    i·DP + j only for i // SWAP_BLOCK ≤ j // SWAP_BLOCK; the others are read from row j·DP + i."""
    bh = tl.program_id(0)
    rows = tl.program_id(1) * ROWS + tl.arange(0, ROWS)
    valid = rows < R
    source = rows
    if SWAP_BLOCK > 0:
        i, j = rows // DP, rows % DP
        source = tl.where((rows < QUAD_ROWS) & (i // SWAP_BLOCK > j // SWAP_BLOCK), j * DP + i, rows)
    e = tl.arange(0, DV)
    acc = tl.zeros((ROWS, DV), tl.float32)
    acc_z = tl.zeros((ROWS,), tl.float32)
    count = 0.0
    for c in range(C):
        slot = bh * C + c
        s_ptrs = PART_S + (slot * R + source[:, None]) * DV + e[None, :]
        acc += tl.load(s_ptrs, mask=valid[:, None], other=0.0)
        acc_z += tl.load(PART_Z + slot * R + source, mask=valid, other=0.0)
        if not SCALE_GIVEN:
            count += tl.load(PART_Z + slot * R + COUNT_ROW)
    if SCALE_GIVEN:
        inv_scale = tl.load(INV_SCALE + bh)
    else:
        inv_scale = 1.0 / tl.maximum(count, 1.0)
        if tl.program_id(1) == 0:
            tl.store(INV_SCALE + bh, inv_scale)
    row_scale = tl.where(rows < QUAD_ROWS, scale_quad, tl.where(rows < COUNT_ROW, scale_lin, 1.0)) * inv_scale
    tl.store(
        STATE + (bh * R + rows[:, None]) * DV + e[None, :], acc * row_scale[:, None], mask=valid[:, None]
    )
    tl.store(NORM + bh * R + rows, acc_z * row_scale, mask=valid)


@triton.jit
def _denominator(qf, z2, z1, z0, eps_hat, scale1, scale2, Z_PRECISION: tl.constexpr = "ieee"):
    """φ̃(q)ᵀẑ + eps/c (float32) and t = ẑ2 q, for q (BLOCK_N, DP) float32 (t in Z_PRECISION)."""
    t = tl.dot(qf, z2, input_precision=Z_PRECISION)
    den = z0 + scale1 * tl.sum(qf * z1[None, :], axis=1) + scale2 * tl.sum(t * qf, axis=1) + eps_hat
    return den, t


@triton.jit
def _output_kernel(
    Q,
    STATE,
    NORM,
    INV_SCALE,
    OUT,
    eps,
    scale1,
    scale2,
    N,
    H,
    rows_per_chunk,
    stride_qb,
    stride_qh,
    stride_qn,
    stride_ob,
    stride_oh,
    stride_on,
    D_QK,
    D_V,
    DP: tl.constexpr,
    DV: tl.constexpr,
    R: tl.constexpr,
    BLOCK_N: tl.constexpr,
    QUAD_MODE: tl.constexpr,
    PRECISION: tl.constexpr,
    EVEN_QK: tl.constexpr = False,
    EVEN_V: tl.constexpr = False,
    Z_PRECISION: tl.constexpr = "ieee",
    SYMMETRIC: tl.constexpr = False,
    PREFETCH: tl.constexpr = False,
):
    """y = φ̃(q)ᵀŜ / (φ̃(q)ᵀẑ + eps/c). PREFETCH: the next tile's q is loaded before this tile's math (the
    loop is not software-pipelined: q feeds elementwise math before the matmul)."""
    bh = tl.program_id(0)
    chunk = tl.program_id(1)
    b = bh // H
    h = bh % H
    q_base = Q + b * stride_qb + h * stride_qh
    o_base = OUT + b * stride_ob + h * stride_oh
    dtype = Q.dtype.element_ty
    s2, s1, s0, z2, z1, z0 = _load_state(STATE, NORM, bh, DP, DV, R, dtype, False)
    eps_hat = eps * tl.load(INV_SCALE + bh)
    start = chunk * rows_per_chunk
    stop = tl.minimum(start + rows_per_chunk, N)
    e = tl.arange(0, DV)
    if SYMMETRIC:  # Ŝ2 rows of the blocks (0, 0), (0, 1), (1, 1) of DP/2 × DP/2 products
        HALF: tl.constexpr = DP // 2
        c = tl.arange(0, HALF * HALF)
        r00 = (c // HALF) * DP + c % HALF
        s00 = tl.load(STATE + (bh * R + r00[:, None]) * DV + e[None, :]).to(dtype)
        s01 = tl.load(STATE + (bh * R + r00[:, None] + HALF) * DV + e[None, :]).to(dtype)
        s11 = tl.load(STATE + (bh * R + r00[:, None] + HALF * DP + HALF) * DV + e[None, :]).to(dtype)
    if PREFETCH:
        first = start + tl.arange(0, BLOCK_N)
        q_next = _load_rows(q_base, first, stride_qn, first < stop, DP, D_QK, EVEN_QK)
    for n0 in range(start, stop, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        valid = rows < stop
        if PREFETCH:
            q = q_next
            ahead = rows + BLOCK_N
            q_next = _load_rows(q_base, ahead, stride_qn, ahead < stop, DP, D_QK, EVEN_QK)
        else:
            q = _load_rows(q_base, rows, stride_qn, valid, DP, D_QK, EVEN_QK)
        qf = q.to(tl.float32)
        if SYMMETRIC:
            # Σ_ij q_i q_j Ŝ2_ij over i ≤ j blocks; the (1, 0) block equals the (0, 1) one: weight 2.
            lo = _load_rows(q_base, rows, stride_qn, valid, HALF, D_QK, EVEN_QK).to(tl.float32)
            hi = _load_rows(q_base + HALF, rows, stride_qn, valid, HALF, D_QK - HALF, EVEN_QK).to(tl.float32)
            p00 = tl.reshape((lo * scale2)[:, :, None] * lo[:, None, :], (BLOCK_N, HALF * HALF))
            num = tl.dot(p00.to(dtype), s00, input_precision=PRECISION)
            p01 = tl.reshape((lo * (2.0 * scale2))[:, :, None] * hi[:, None, :], (BLOCK_N, HALF * HALF))
            num = tl.dot(p01.to(dtype), s01, num, input_precision=PRECISION)
            p11 = tl.reshape((hi * scale2)[:, :, None] * hi[:, None, :], (BLOCK_N, HALF * HALF))
            num = tl.dot(p11.to(dtype), s11, num, input_precision=PRECISION)
        else:
            qq = _pair_products((qf * scale2).to(dtype), q, BLOCK_N, DP, QUAD_MODE, PRECISION).to(dtype)
            num = tl.dot(qq, s2, input_precision=PRECISION)
        num = tl.dot((qf * scale1).to(dtype), s1, num, input_precision=PRECISION)
        num += s0[None, :]
        den, _ = _denominator(qf, z2, z1, z0, eps_hat, scale1, scale2, Z_PRECISION)
        out = num / den[:, None]
        mask = _columns_mask(valid, e, D_V, EVEN_V)
        tl.store(o_base + rows[:, None] * stride_on + e[None, :], out.to(dtype), mask=mask)


# ----------------------------------------------------------------------------------------------------
# Backward
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _query_grad_kernel(
    Q,
    O,
    DO,
    STATE,
    NORM,
    INV_SCALE,
    DQ,
    PART_S,
    PART_Z,
    DNUM,
    DDEN,
    eps,
    scale1,
    scale2,
    N,
    H,
    rows_per_chunk,
    stride_qb,
    stride_qh,
    stride_qn,
    stride_ob,
    stride_oh,
    stride_on,
    stride_gb,
    stride_gh,
    stride_gn,
    stride_dqb,
    stride_dqh,
    stride_dqn,
    D_QK,
    D_V,
    DP: tl.constexpr,
    DV: tl.constexpr,
    R: tl.constexpr,
    BLOCK_N: tl.constexpr,
    QUAD_MODE: tl.constexpr,
    PRECISION: tl.constexpr,
    CONTRACT_PRECISION: tl.constexpr,
    COMPUTE_DQ: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    STORE_DNUM: tl.constexpr,
    PREFETCH: tl.constexpr = False,
    EVEN_QK: tl.constexpr = False,
    EVEN_V: tl.constexpr = False,
    Z_PRECISION: tl.constexpr = "ieee",
):
    """dq (if COMPUTE_DQ), the chunk's partial dŜ, dẑ (if ACCUMULATE), and dnum, dden to memory (if
    STORE_DNUM, for ``_state_partial_kernel`` to accumulate dŜ, dẑ instead)."""
    bh = tl.program_id(0)
    chunk = tl.program_id(1)
    b = bh // H
    h = bh % H
    q_base = Q + b * stride_qb + h * stride_qh
    o_base = O + b * stride_ob + h * stride_oh
    g_base = DO + b * stride_gb + h * stride_gh
    dq_base = DQ + b * stride_dqb + h * stride_dqh
    dtype = Q.dtype.element_ty
    s2_t, s1_t, _, z2, z1, z0 = _load_state(STATE, NORM, bh, DP, DV, R, dtype, True)
    eps_hat = eps * tl.load(INV_SCALE + bh)
    start = chunk * rows_per_chunk
    stop = tl.minimum(start + rows_per_chunk, N)
    i = tl.arange(0, DP)

    acc2 = tl.zeros((DP * DP, DV), tl.float32)
    acc1 = tl.zeros((DP, DV), tl.float32)
    acc0 = tl.zeros((DV,), tl.float32)
    dz2 = tl.zeros((DP, DP), tl.float32)
    dz1 = tl.zeros((DP,), tl.float32)
    dz0 = tl.zeros((BLOCK_N,), tl.float32)
    if PREFETCH:  # the next tile's loads are issued before this tile's math (the loop is not pipelined)
        rows = start + tl.arange(0, BLOCK_N)
        q_next = _load_rows(q_base, rows, stride_qn, rows < stop, DP, D_QK, EVEN_QK)
        grad_next = _load_rows(g_base, rows, stride_gn, rows < stop, DV, D_V, EVEN_V)
        out_next = _load_rows(o_base, rows, stride_on, rows < stop, DV, D_V, EVEN_V)
    for n0 in range(start, stop, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        valid = rows < stop
        if PREFETCH:
            q, grad, out = q_next, grad_next.to(tl.float32), out_next.to(tl.float32)
            ahead = rows + BLOCK_N
            q_next = _load_rows(q_base, ahead, stride_qn, ahead < stop, DP, D_QK, EVEN_QK)
            grad_next = _load_rows(g_base, ahead, stride_gn, ahead < stop, DV, D_V, EVEN_V)
            out_next = _load_rows(o_base, ahead, stride_on, ahead < stop, DV, D_V, EVEN_V)
        else:
            q = _load_rows(q_base, rows, stride_qn, valid, DP, D_QK, EVEN_QK)
            grad = _load_rows(g_base, rows, stride_gn, valid, DV, D_V, EVEN_V).to(tl.float32)
            out = _load_rows(o_base, rows, stride_on, valid, DV, D_V, EVEN_V).to(tl.float32)
        qf = q.to(tl.float32)
        den, t = _denominator(qf, z2, z1, z0, eps_hat, scale1, scale2, Z_PRECISION)
        inv_den = 1.0 / den
        dnum = grad * inv_den[:, None]
        dden = -tl.sum(grad * out, axis=1) * inv_den
        dnum_mm = dnum.to(dtype)
        if STORE_DNUM:
            e = tl.arange(0, DV)
            dnum_ptrs = DNUM + (bh * N + rows[:, None]) * DV + e[None, :]
            tl.store(dnum_ptrs, dnum_mm, mask=valid[:, None])
            tl.store(DDEN + bh * N + rows, dden, mask=valid)

        if COMPUTE_DQ:
            # dq = scale1 (Ŝ1 dnum + ẑ1 dden) + 2 scale2 (Σ_j (Ŝ2 dnum)_ij q_j + dden ẑ2 q)
            g1 = tl.dot(dnum_mm, s1_t, input_precision=PRECISION) + dden[:, None] * z1[None, :]
            g2 = tl.dot(dnum_mm, s2_t, input_precision=PRECISION)
            quad = _contract_pairs(g2, q, BLOCK_N, DP, QUAD_MODE, PRECISION, CONTRACT_PRECISION)
            dq = scale1 * g1 + (2.0 * scale2) * (quad + dden[:, None] * t)
            mask = _columns_mask(valid, i, D_QK, EVEN_QK)
            tl.store(dq_base + rows[:, None] * stride_dqn + i[None, :], dq.to(dtype), mask=mask)

        if ACCUMULATE:
            # dŜ = Σ φ̃(q) dnumᵀ, dẑ = Σ φ̃(q) dden
            q_t = tl.trans(q)
            qq_t = _pair_products_t(
                tl.trans((qf * scale2).to(dtype)), q_t, BLOCK_N, DP, QUAD_MODE, PRECISION
            ).to(dtype)
            acc2 = tl.dot(qq_t, dnum_mm, acc2, input_precision=PRECISION)
            acc1 = tl.dot(tl.trans((qf * scale1).to(dtype)), dnum_mm, acc1, input_precision=PRECISION)
            acc0 += tl.sum(dnum, axis=0)
            q_dden = qf * dden[:, None]
            dz2 = tl.dot(tl.trans(q_dden), qf, dz2, input_precision="ieee")
            dz1 += tl.sum(q_dden, axis=0)
            dz0 += dden
    if ACCUMULATE:
        slot = bh * tl.num_programs(1) + chunk
        _store_partial(
            PART_S, PART_Z, slot, acc2, acc1, acc0, dz2 * scale2, dz1 * scale1, tl.sum(dz0, axis=0), DP, DV, R
        )


@triton.jit
def _key_grad_kernel(
    K,
    V,
    MASK,
    DSTATE,
    DNORM,
    DK,
    DVAL,
    N,
    H,
    rows_per_chunk,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_mb,
    stride_dkb,
    stride_dkh,
    stride_dkn,
    stride_dvb,
    stride_dvh,
    stride_dvn,
    D_QK,
    D_V,
    HAS_MASK: tl.constexpr,
    DP: tl.constexpr,
    DV: tl.constexpr,
    R: tl.constexpr,
    BLOCK_N: tl.constexpr,
    QUAD_MODE: tl.constexpr,
    PRECISION: tl.constexpr,
    CONTRACT_PRECISION: tl.constexpr,
    PREFETCH: tl.constexpr = False,
    EVEN_QK: tl.constexpr = False,
    EVEN_V: tl.constexpr = False,
    Z_PRECISION: tl.constexpr = "ieee",
):
    bh = tl.program_id(0)
    chunk = tl.program_id(1)
    b = bh // H
    h = bh % H
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    dk_base = DK + b * stride_dkb + h * stride_dkh
    dv_base = DVAL + b * stride_dvb + h * stride_dvh
    dtype = K.dtype.element_ty
    ds2, ds1, ds0, dz2, dz1, _ = _load_state(DSTATE, DNORM, bh, DP, DV, R, dtype, False)
    ds2_t, ds1_t, _, _, _, _ = _load_state(DSTATE, DNORM, bh, DP, DV, R, dtype, True)
    start = chunk * rows_per_chunk
    stop = tl.minimum(start + rows_per_chunk, N)
    i = tl.arange(0, DP)
    e = tl.arange(0, DV)
    mask_base = MASK + b * stride_mb
    if PREFETCH:  # the next tile's loads are issued before this tile's math (the loop is not pipelined)
        valid_next, k_next, v_next = _load_key_tile(
            k_base, v_base, mask_base, start + tl.arange(0, BLOCK_N), stop, stride_kn, stride_vn,
            HAS_MASK, DP, DV, D_QK, D_V, EVEN_QK, EVEN_V,
        )  # fmt: skip
    for n0 in range(start, stop, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        in_range = rows < stop
        if PREFETCH:
            valid, k, v = valid_next, k_next, v_next
            valid_next, k_next, v_next = _load_key_tile(
                k_base, v_base, mask_base, rows + BLOCK_N, stop, stride_kn, stride_vn,
                HAS_MASK, DP, DV, D_QK, D_V, EVEN_QK, EVEN_V,
            )  # fmt: skip
        else:
            valid, k, v = _load_key_tile(
                k_base,
                v_base,
                mask_base,
                rows,
                stop,
                stride_kn,
                stride_vn,
                HAS_MASK,
                DP,
                DV,
                D_QK,
                D_V,
                EVEN_QK,
                EVEN_V,
            )
        kf = k.to(tl.float32)

        # dv = dS0 + dS1ᵀ k + dS2ᵀ (k⊗k)
        kk = _pair_products(k, k, BLOCK_N, DP, QUAD_MODE, PRECISION).to(dtype)
        dv = tl.dot(kk, ds2, input_precision=PRECISION)
        dv = tl.dot(k, ds1, dv, input_precision=PRECISION)
        dv += ds0[None, :]
        dv = tl.where(valid[:, None], dv, 0.0)  # padded keys take no part
        mask_v = _columns_mask(in_range, e, D_V, EVEN_V)
        tl.store(dv_base + rows[:, None] * stride_dvn + e[None, :], dv.to(dtype), mask=mask_v)

        # dk = dS1 v + dz1 + 2 (Σ_j (dS2 v)_ij k_j + dz2 k)
        g1 = tl.dot(v, ds1_t, input_precision=PRECISION) + dz1[None, :]
        g2 = tl.dot(v, ds2_t, input_precision=PRECISION)
        quad = _contract_pairs(g2, k, BLOCK_N, DP, QUAD_MODE, PRECISION, CONTRACT_PRECISION)
        quad += tl.dot(kf, dz2, input_precision=Z_PRECISION)
        dk = tl.where(valid[:, None], g1 + 2.0 * quad, 0.0)
        mask_k = _columns_mask(in_range, i, D_QK, EVEN_QK)
        tl.store(dk_base + rows[:, None] * stride_dkn + i[None, :], dk.to(dtype), mask=mask_k)


# ----------------------------------------------------------------------------------------------------
# Launchers
# ----------------------------------------------------------------------------------------------------

_SM_COUNT: dict[int, int] = {}


def _multiprocessors(device: torch.device) -> int:
    if device.type != "cuda":
        return 4  # interpreter: a few chunks, to exercise the reduction
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _SM_COUNT:
        _SM_COUNT[index] = torch.cuda.get_device_properties(index).multi_processor_count
    return _SM_COUNT[index]


def chunking(
    n: int,
    batch_heads: int,
    device: torch.device,
    chunks: int | None,
    programs_per_chunk: int = 1,
    programs_per_sm: int | None = None,
) -> tuple[int, int]:
    """(tokens per chunk, number of chunks): enough chunks that all (batch, head) pairs fill the GPU
    (``programs_per_chunk``: programs that share one chunk, the feature blocks of the state kernel)."""
    cfg = _config
    granularity = cfg.chunk_granularity
    blocks = triton.cdiv(n, granularity)
    if chunks is None:
        per_sm = cfg.programs_per_sm if programs_per_sm is None else programs_per_sm
        chunks = triton.cdiv(per_sm * _multiprocessors(device), batch_heads * programs_per_chunk)
    chunks = max(1, min(chunks, blocks))
    rows_per_chunk = triton.cdiv(blocks, chunks) * granularity
    return rows_per_chunk, triton.cdiv(n, rows_per_chunk)


def _empty(*shape: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if _config.poison:
        return torch.full(shape, float("nan"), device=device, dtype=dtype)
    return torch.empty(shape, device=device, dtype=dtype)


def _last_dim_contiguous(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _precisions(dtype: torch.dtype) -> tuple[str, str]:
    # float32 inputs: exact float32 matmuls; 16-bit inputs: 16-bit operands, and tf32 for the one float32
    # contraction of the selection variant.
    return ("ieee", "ieee") if dtype == torch.float32 else ("ieee", "tf32")


def _z_precision(dtype: torch.dtype) -> str:
    """Of the small float32 products with ẑ2, dẑ2 (``LaunchConfig.z_products_tf32``)."""
    return "tf32" if _config.z_products_tf32 and dtype != torch.float32 else "ieee"


def _even(d: int, d_v: int, dv_pad: int) -> dict[str, bool]:
    """Whether q/k and v rows fill their padded tiles (no column masks: 16-byte loads and stores)."""
    return {"EVEN_QK": d == FEATURE_PAD, "EVEN_V": d_v == dv_pad}


def _value_pad(dv: int) -> int:
    return max(16, triton.next_power_of_2(dv))


def _tile_kwargs(
    tile: Tile, dv_pad: int, dtype: torch.dtype, holds_state_accumulator: bool
) -> dict[str, int]:
    block_n, warps, stages = tile.block_n, tile.num_warps, _config.num_stages
    if holds_state_accumulator and dv_pad > 64:
        warps = max(warps, _config.wide_value_warps)
    if dtype == torch.float32:
        # float32 matmul operands (exact "ieee" products) take twice the shared memory: smaller tiles.
        block_n, stages = min(block_n, 32), 1
    kwargs = {"BLOCK_N": block_n, "num_warps": warps}
    if stages is not None:
        kwargs["num_stages"] = stages
    return kwargs


def _reduce(
    part_s,
    part_z,
    inv_scale,
    scale_given: bool,
    scale_quad: float = 1.0,
    scale_lin: float = 1.0,
    swap_block: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum the partial states (and scale, see ``_reduce_kernel``)."""
    bh, c, r, dv = part_s.shape
    state = _empty(bh, r, dv, device=part_s.device, dtype=torch.float32)
    norm = _empty(bh, r, device=part_s.device, dtype=torch.float32)
    grid = (bh, triton.cdiv(r, REDUCE_ROWS))
    _reduce_kernel[grid](
        part_s,
        part_z,
        state,
        norm,
        inv_scale,
        c,
        scale_quad,
        scale_lin,
        DV=dv,
        R=r,
        QUAD_ROWS=QUAD_FEATURES,
        COUNT_ROW=QUAD_FEATURES + FEATURE_PAD,
        SCALE_GIVEN=scale_given,
        ROWS=REDUCE_ROWS,
        DP=FEATURE_PAD,
        SWAP_BLOCK=swap_block,
        num_warps=4,
    )
    return state, norm


def _state_partials(
    k: torch.Tensor,
    v: torch.Tensor,
    v_strides: tuple[int, int, int],
    mask: torch.Tensor | None,
    stride_mb: int,
    weight: torch.Tensor | None,
    d_v: int,
    dv_pad: int,
    tile: Tile,
    chunks: int | None,
    precision: str,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Partial states Σ φ(k) vᵀ, Σ w φ(k) per chunk ((B·H, C, R, DV), (B·H, C, R)), by the whole-state
    kernel or, with ``state_feature_block``, the feature-block kernel (its own number of chunks), and
    the ``SWAP_BLOCK`` the reduction needs (``_reduce_kernel``).

    ``v`` is read through ``v_strides`` (batch, head, token); ``weight`` (B·H·N float32) replaces the
    count of real keys in z (the backward's dden)."""
    cfg = _config
    batch, heads, n, d = k.shape
    block = cfg.state_feature_block
    if block == 0 or cfg.quad_mode != 0:
        blocks, symmetric = 1, False
    else:
        # The linear block holds DP + 1 rows (S1, S0): a block of more than DP rows.
        if QUAD_FEATURES % block or block % FEATURE_PAD or block <= FEATURE_PAD:
            raise ValueError(
                f"state_feature_block {block}: a multiple of 16 above 16 dividing {QUAD_FEATURES}"
            )
        symmetric = cfg.state_symmetric
        if symmetric and block != QUAD_FEATURES // 4:
            raise ValueError(f"state_symmetric needs state_feature_block {QUAD_FEATURES // 4}, got {block}")
        quad_programs = 3 if symmetric else QUAD_FEATURES // block
        blocks = quad_programs + 1 + cfg.state_separate_z
    per_sm = cfg.state_programs_per_sm if blocks > 1 else None
    rows_per_chunk, n_chunks = chunking(n, batch * heads, k.device, chunks, blocks, per_sm)
    part_s = _empty(batch * heads, n_chunks, STATE_ROWS, dv_pad, device=k.device, dtype=torch.float32)
    part_z = _empty(batch * heads, n_chunks, STATE_ROWS, device=k.device, dtype=torch.float32)
    mask_arg = k if mask is None else mask
    args = (
        k, v, mask_arg, k if weight is None else weight, part_s, part_z, n, heads, rows_per_chunk,
        *k.stride()[:3], *v_strides, stride_mb, d, d_v,
    )  # fmt: skip
    flags = {"HAS_MASK": mask is not None, "HAS_WEIGHT": weight is not None, **_even(d, d_v, dv_pad)}
    flags |= {"DP": FEATURE_PAD, "DV": dv_pad, "R": STATE_ROWS, "PRECISION": precision}
    launch = _tile_kwargs(tile, dv_pad, k.dtype, blocks == 1)
    if blocks == 1:
        _state_partial_kernel[(batch * heads, n_chunks)](*args, QUAD_MODE=cfg.quad_mode, **flags, **launch)
    else:
        _state_block_kernel[(blocks, batch * heads, n_chunks)](
            *args,
            FEATURE_BLOCK=block,
            QUAD_PROGRAMS=quad_programs,
            PAIR_I=FEATURE_PAD // 2 if symmetric else block // FEATURE_PAD,
            PAIR_J=FEATURE_PAD // 2 if symmetric else FEATURE_PAD,
            SYMMETRIC=symmetric,
            TRANSPOSED=cfg.state_transposed,
            SEPARATE_Z=cfg.state_separate_z,
            **flags,
            **launch,
        )
    return part_s, part_z, FEATURE_PAD // 2 if symmetric else 0


def _mask_arg(mask: torch.Tensor | None, fallback: torch.Tensor) -> tuple[torch.Tensor, int]:
    if mask is None:
        return fallback, 0
    mask = mask.contiguous().view(torch.uint8)
    return mask, mask.stride(0)


def forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_padding_mask: torch.Tensor | None,
    eps: float,
    chunks: int | None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Output (B, H, N, D) and the saved normalised state (Ŝ, ẑ, 1/c) for the backward."""
    q, k, v = (_last_dim_contiguous(t) for t in (q, k, v))
    batch, heads, n, d = q.shape
    d_v = v.shape[-1]
    dv_pad = _value_pad(d_v)
    cfg = _config
    precision, _ = _precisions(q.dtype)
    even = _even(d, d_v, dv_pad)
    mask, stride_mb = _mask_arg(key_padding_mask, k)

    common = {
        "DP": FEATURE_PAD,
        "DV": dv_pad,
        "R": STATE_ROWS,
        "QUAD_MODE": cfg.quad_mode,
        "PRECISION": precision,
    }
    part_s, part_z, swap = _state_partials(
        k, v, v.stride()[:3], None if key_padding_mask is None else mask, stride_mb, None, d_v, dv_pad,
        cfg.state, chunks, precision,
    )  # fmt: skip
    inv_scale = _empty(batch * heads, device=q.device, dtype=torch.float32)
    state, norm = _reduce(part_s, part_z, inv_scale, scale_given=False, swap_block=swap)

    out = _empty(batch, heads, n, d_v, device=q.device, dtype=q.dtype)
    # The output kernel's chunks are its own (the state was reduced over all of them).
    out_rows, out_chunks = chunking(n, batch * heads, q.device, chunks, 1, cfg.output_programs_per_sm)
    launch = _tile_kwargs(cfg.output, dv_pad, q.dtype, False)
    if cfg.output_max_registers is not None and q.dtype != torch.float32 and q.is_cuda:
        launch["maxnreg"] = cfg.output_max_registers
    _output_kernel[(batch * heads, out_chunks)](
        q, state, norm, inv_scale, out, eps, 1.0 / math.sqrt(d), 1.0 / (2 * d), n, heads, out_rows,
        *q.stride()[:3], *out.stride()[:3], d, d_v, **even, Z_PRECISION=_z_precision(q.dtype),
        SYMMETRIC=cfg.output_symmetric and cfg.quad_mode == 0, PREFETCH=cfg.output_prefetch,
        **common, **launch,
    )  # fmt: skip
    return out, (state, norm, inv_scale)


def backward(
    grad_out: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    key_padding_mask: torch.Tensor | None,
    saved: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | list[torch.Tensor],
    eps: float,
    chunks: int | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients (dq, dk, dv) of the forward above."""
    state, norm, inv_scale = saved
    q, k, v, out, grad_out = (_last_dim_contiguous(t) for t in (q, k, v, out, grad_out))
    batch, heads, n, d = q.shape
    d_v = v.shape[-1]
    dv_pad = state.shape[-1]
    cfg = _config
    rows_per_chunk, n_chunks = chunking(n, batch * heads, q.device, chunks)
    precision, contract_precision = _precisions(q.dtype)
    even = _even(d, d_v, dv_pad)
    mask, stride_mb = _mask_arg(key_padding_mask, k)
    common = {
        "DP": FEATURE_PAD,
        "DV": dv_pad,
        "R": STATE_ROWS,
        "QUAD_MODE": cfg.quad_mode,
        "PRECISION": precision,
        "CONTRACT_PRECISION": contract_precision,
    }
    grid = (batch * heads, n_chunks)

    dq = _empty(*q.shape, device=q.device, dtype=q.dtype)
    scale1, scale2 = 1.0 / math.sqrt(d), 1.0 / (2 * d)
    mode = cfg.query_backward
    if mode not in ("fused", "two_pass", "state_kernel"):
        raise ValueError(f"unknown query_backward {mode!r}")
    if mode == "state_kernel":  # the query kernel accumulates nothing: placeholders
        part_s = part_z = inv_scale
    else:
        part_s = _empty(batch * heads, n_chunks, STATE_ROWS, dv_pad, device=q.device, dtype=torch.float32)
        part_z = _empty(batch * heads, n_chunks, STATE_ROWS, device=q.device, dtype=torch.float32)
    passes = {
        "fused": [(True, True, False, cfg.query_grad)],
        "two_pass": [(True, False, False, cfg.query_dq), (False, True, False, cfg.query_state)],
        "state_kernel": [(True, False, True, cfg.query_dq)],
    }[mode]
    dnum = dden = dq  # placeholders when not stored
    if mode == "state_kernel":
        dnum = _empty(batch * heads, n, dv_pad, device=q.device, dtype=q.dtype)
        dden = _empty(batch * heads, n, device=q.device, dtype=torch.float32)
    for compute_dq, accumulate, store_dnum, tile in passes:
        _query_grad_kernel[grid](
            q, out, grad_out, state, norm, inv_scale, dq, part_s, part_z, dnum, dden,
            eps, scale1, scale2, n, heads, rows_per_chunk,
            *q.stride()[:3], *out.stride()[:3], *grad_out.stride()[:3], *dq.stride()[:3], d, d_v,
            COMPUTE_DQ=compute_dq, ACCUMULATE=accumulate, STORE_DNUM=store_dnum, PREFETCH=cfg.prefetch_grads,
            Z_PRECISION=_z_precision(q.dtype), **even,
            **common,
            **_tile_kwargs(tile, dv_pad, q.dtype, accumulate),
        )  # fmt: skip
    if mode == "state_kernel":
        # dŜ = Σ φ̃(q) dnumᵀ, dẑ = Σ φ̃(q) dden: the forward's state kernel on (q, dnum), weights dden;
        # the feature scales of φ̃ are applied in the reduction.
        dnum_strides = (heads * dnum.stride(0), dnum.stride(0), dnum.stride(1))
        part_s, part_z, swap = _state_partials(
            q, dnum, dnum_strides, None, 0, dden, d_v, dv_pad, cfg.query_state, chunks, precision
        )
        dstate, dnorm = _reduce(part_s, part_z, inv_scale, True, scale2, scale1, swap_block=swap)
    else:
        dstate, dnorm = _reduce(part_s, part_z, inv_scale, scale_given=True)

    dk = _empty(*k.shape, device=k.device, dtype=k.dtype)
    dval = _empty(*v.shape, device=v.device, dtype=v.dtype)
    _key_grad_kernel[grid](
        k, v, mask, dstate, dnorm, dk, dval, n, heads, rows_per_chunk,
        *k.stride()[:3], *v.stride()[:3], stride_mb, *dk.stride()[:3], *dval.stride()[:3], d, d_v,
        HAS_MASK=key_padding_mask is not None, PREFETCH=cfg.prefetch_grads, **even,
        Z_PRECISION=_z_precision(q.dtype),
        **common, **_tile_kwargs(cfg.key_grad, dv_pad, q.dtype, False),
    )  # fmt: skip
    return dq, dk, dval
