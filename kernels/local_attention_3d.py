"""Local (neighbourhood) softmax attention on a 3D token grid, NATTEN-style with clamped borders.

Tokens are the cells of an (X, Y, Z) grid in row-major order (z fastest), N = X·Y·Z. Each query attends,
with scale 1/√D, to the keys of a wx × wy × wz window (odd sizes) centred on it and shifted inward at the
borders, so that every query sees exactly wx·wy·wz keys. Along one axis of size S with window w the
window of position i starts at ``clamp(i - w // 2, 0, S - w)``.

This module holds the float64-capable PyTorch reference (also the CPU path), the one autograd Function
around the Triton kernels of :mod:`kernels._local3d_triton`, and the dispatcher.

Example:
    >>> import torch
    >>> q, k, v = (torch.randn(1, 2, 4 * 5 * 6, 8) for _ in range(3))
    >>> local_attention_3d(q, k, v, grid=(4, 5, 6), window=(3, 3, 5)).shape
    torch.Size([1, 2, 120, 8])
    >>> window_starts(5, 3).tolist()  # borders shifted inward: every window lies inside the axis
    [0, 0, 1, 2, 2]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from kernels.dispatch import KernelError, check_same_dtype, opaque_to_compiler, resolve_backend

MAX_HEAD_DIM = 128
TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
REFERENCE_DTYPES = (*TRITON_DTYPES, torch.float64)
# Gathered key/value elements per chunk of queries in the reference: bounds its memory, not its result.
_REFERENCE_CHUNK_ELEMENTS = 1 << 24


def window_starts(size: int, window: int, device: torch.device | str | None = None) -> torch.Tensor:
    """First index of each position's window along one axis: ``clamp(i - window // 2, 0, size - window)``."""
    positions = torch.arange(size, device=device)
    return (positions - window // 2).clamp(min=0, max=size - window)


def neighbourhood_index(
    grid: Sequence[int], window: Sequence[int], device: torch.device | str | None = None
) -> torch.Tensor:
    """(N, wx·wy·wz) token indices of every query's window, keys in row-major window order.

    Example:
        >>> neighbourhood_index((1, 1, 4), (1, 1, 3)).tolist()
        [[0, 1, 2], [0, 1, 2], [1, 2, 3], [1, 2, 3]]
    """
    (size_x, size_y, size_z), (wx, wy, wz) = grid, window
    nx = window_starts(size_x, wx, device)[:, None] + torch.arange(wx, device=device)  # (X, wx)
    ny = window_starts(size_y, wy, device)[:, None] + torch.arange(wy, device=device)
    nz = window_starts(size_z, wz, device)[:, None] + torch.arange(wz, device=device)
    index = (nx[:, None, None, :, None, None] * size_y + ny[None, :, None, None, :, None]) * size_z + nz[
        None, None, :, None, None, :
    ]
    return index.reshape(size_x * size_y * size_z, wx * wy * wz)


def _validate(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grid: Sequence[int], window: Sequence[int]
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise KernelError(f"local_attention_3d: {name} must be (B, H, N, D), got shape {tuple(t.shape)}")
    if q.shape != k.shape:
        raise KernelError(f"local_attention_3d: q {tuple(q.shape)} and k {tuple(k.shape)} must match")
    if v.shape[:3] != k.shape[:3]:
        raise KernelError(
            f"local_attention_3d: v {tuple(v.shape)} must share (B, H, N) with k {tuple(k.shape)}"
        )
    if len(grid) != 3 or len(window) != 3:
        raise KernelError(
            f"local_attention_3d: grid {grid} and window {window} must have 3 entries (x, y, z)"
        )
    grid_t = tuple(int(g) for g in grid)
    window_t = tuple(int(w) for w in window)
    if math.prod(grid_t) != q.shape[2]:
        raise KernelError(
            f"local_attention_3d: grid {grid_t} holds {math.prod(grid_t)} tokens but q has N={q.shape[2]}; "
            "pass the token grid the sequence was flattened from (row-major, z fastest)"
        )
    for axis, size, w in zip("xyz", grid_t, window_t, strict=True):
        if w < 1 or w % 2 == 0 or w > size:
            raise KernelError(
                f"local_attention_3d: window along {axis} is {w}; it must be odd and in 1..{size} "
                f"(the grid size along {axis})"
            )
    for name, dim in (("q/k", q.shape[-1]), ("v", v.shape[-1])):
        if not 1 <= dim <= MAX_HEAD_DIM:
            raise KernelError(
                f"local_attention_3d: head dim of {name} is {dim}; it must be in 1..{MAX_HEAD_DIM} "
                "(use more heads)"
            )
    return grid_t, window_t  # type: ignore[return-value]


def local_attention_3d_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    grid: Sequence[int],
    window: Sequence[int],
) -> torch.Tensor:
    """Gather-based PyTorch local 3D attention; differentiable through plain autograd.

    Computes in float32 (float64 for float64 inputs) and returns the input dtype. Queries are processed
    in chunks so that the gathered keys stay within a fixed memory budget.

    Args:
        q, k: (B, H, N, D) queries and keys, N = X·Y·Z in row-major (x, y, z) order.
        v: (B, H, N, Dv) values.
        grid: (X, Y, Z) token grid.
        window: (wx, wy, wz) odd window sizes, each ≤ the grid size along its axis.

    Returns:
        (B, H, N, Dv) tensor.
    """
    grid_t, window_t = _validate(q, k, v, grid, window)
    check_same_dtype(("q", "k", "v"), (q, k, v), REFERENCE_DTYPES)
    compute = torch.float64 if q.dtype == torch.float64 else torch.float32
    batch, heads, n, dim = q.shape
    neighbours = neighbourhood_index(grid_t, window_t, q.device)  # (N, W)
    window_size = neighbours.shape[1]
    chunk = max(1, _REFERENCE_CHUNK_ELEMENTS // (batch * heads * window_size * (dim + v.shape[-1])))
    qc, kc, vc = q.to(compute), k.to(compute), v.to(compute)
    outputs = []
    for start in range(0, n, chunk):
        index = neighbours[start : start + chunk]  # (n_chunk, W)
        keys = kc[:, :, index]  # (B, H, n_chunk, W, D)
        scores = torch.einsum("bhnd,bhnwd->bhnw", qc[:, :, start : start + chunk], keys) / math.sqrt(dim)
        weights = torch.softmax(scores, dim=-1)
        outputs.append(torch.einsum("bhnw,bhnwe->bhne", weights, vc[:, :, index]))
    return torch.cat(outputs, dim=2).to(q.dtype)


class LocalAttention3dFunction(torch.autograd.Function):
    """Triton forward (online softmax, saves the log-sum-exp) and backward; see kernels._local3d_triton."""

    @staticmethod
    def forward(ctx, q, k, v, grid, window, config):  # type: ignore[override]
        from kernels import _local3d_triton

        out, lse = _local3d_triton.forward(q, k, v, grid, window, config)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.grid, ctx.window, ctx.config = grid, window, config
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        from kernels import _local3d_triton

        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = _local3d_triton.backward(grad_out, q, k, v, out, lse, ctx.grid, ctx.window, ctx.config)
        return dq, dk, dv, None, None, None


_LOCAL_ATTENTION3D_APPLY = opaque_to_compiler(LocalAttention3dFunction.apply)


def local_attention_3d(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    grid: Sequence[int],
    window: Sequence[int],
    *,
    backend: str | None = None,
    config: object | None = None,
) -> torch.Tensor:
    """Softmax attention of every token to its clamped 3D window of neighbours (scale 1/√D).

    Args:
        q, k: (B, H, N, D) queries and keys, D ≤ 128, N = X·Y·Z in row-major (x, y, z) order.
        v: (B, H, N, Dv) values, Dv ≤ 128.
        grid: (X, Y, Z) token grid.
        window: (wx, wy, wz) odd window sizes, each ≤ the grid size along its axis.
        backend: ``"triton"``, ``"reference"`` or ``None`` (CUDA → Triton, CPU → reference; see
            :func:`kernels.dispatch.resolve_backend`).
        config: Triton only: a :class:`kernels._local3d_triton.LaunchConfig` (tile shapes; tests and
            benchmarks), default: the tuned tiles.

    Returns:
        (B, H, N, Dv) tensor in the dtype of the inputs.
    """
    grid_t, window_t = _validate(q, k, v, grid, window)
    if resolve_backend(q, k, v, backend=backend) == "reference":
        return local_attention_3d_reference(q, k, v, grid_t, window_t)
    check_same_dtype(("q", "k", "v"), (q, k, v), TRITON_DTYPES)
    return _LOCAL_ATTENTION3D_APPLY(q, k, v, grid_t, window_t, config)
