"""Monarch mixing: dense mixing along each axis of a 3D token grid; the block-diagonal Monarch linear layer.

``monarch_mix_3d(x, w_x, w_y, w_z)``, x (B, X, Y, Z, C), mixes the tokens with the order-3 Monarch matrix
w_x ⊗ w_y ⊗ w_z without forming it:

    y[b, i, j, k, c] = Σ_{a, e, f} w_x[i, a] · w_y[j, e] · w_z[k, f] · x[b, a, e, f, c].

``monarch_linear(x, L, R)`` mixes the channels with M = P L Pᵀ R: R (nblocks, mid, in/nblocks) and
L (nblocks, out/nblocks, mid) block-diagonal, P the stride permutation (the nblocks·mid intermediate read
as a (mid, nblocks) matrix and transposed, so that block l of L sees entry l of every block of R).

The PyTorch references are also the CPU path; CUDA tensors go to the Triton kernels of
:mod:`kernels._monarch_triton` through one autograd Function per op.

Example:
    >>> import torch
    >>> x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    >>> w_x, w_y, w_z = torch.randn(3, 3), torch.randn(4, 4), torch.randn(5, 5)
    >>> w_x, w_y, w_z = w_x.double(), w_y.double(), w_z.double()
    >>> dense = torch.kron(torch.kron(w_x, w_y), w_z)  # the (N × N) token mixing matrix
    >>> expected = (dense @ x.reshape(2, 60, 6)).reshape(x.shape)
    >>> torch.allclose(monarch_mix_3d(x, w_x, w_y, w_z), expected)
    True
    >>> layer = MonarchLinear(64, 32, nblocks=4)
    >>> layer(torch.randn(5, 64)).shape
    torch.Size([5, 32])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kernels.dispatch import KernelError, check_same_dtype, opaque_to_compiler, resolve_backend

TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
REFERENCE_DTYPES = (*TRITON_DTYPES, torch.float64)


# ----------------------------------------------------------------------------------------------------
# monarch_mix_3d: mixing along the axes of the token grid
# ----------------------------------------------------------------------------------------------------


def _validate_mix(x: torch.Tensor, w_x: torch.Tensor, w_y: torch.Tensor, w_z: torch.Tensor) -> None:
    if x.dim() != 5:
        raise KernelError(f"monarch_mix_3d: x must be (B, X, Y, Z, C), got shape {tuple(x.shape)}")
    for axis, size, w in zip("xyz", x.shape[1:4], (w_x, w_y, w_z), strict=True):
        if w.shape != (size, size):
            raise KernelError(
                f"monarch_mix_3d: w_{axis} must be ({size}, {size}) for grid size {size} along {axis}, "
                f"got {tuple(w.shape)}"
            )


def monarch_mix_3d_reference(
    x: torch.Tensor, w_x: torch.Tensor, w_y: torch.Tensor, w_z: torch.Tensor
) -> torch.Tensor:
    """Three batched matrix products, one per grid axis (plain autograd).

    Args:
        x: (B, X, Y, Z, C).
        w_x, w_y, w_z: (X, X), (Y, Y), (Z, Z) mixing matrices (output index first).

    Returns:
        (B, X, Y, Z, C) tensor in the dtype of x.
    """
    _validate_mix(x, w_x, w_y, w_z)
    check_same_dtype(("x", "w_x", "w_y", "w_z"), (x, w_x, w_y, w_z), REFERENCE_DTYPES)
    batch, size_x, size_y, size_z, channels = x.shape
    mixed = w_x @ x.reshape(batch, size_x, size_y * size_z * channels)
    mixed = w_y @ mixed.reshape(batch * size_x, size_y, size_z * channels)
    mixed = w_z @ mixed.reshape(batch * size_x * size_y, size_z, channels)
    return mixed.reshape(x.shape)


class MonarchMix3dFunction(torch.autograd.Function):
    """Triton forward and backward of :func:`monarch_mix_3d` (see :mod:`kernels._monarch_triton`)."""

    @staticmethod
    def forward(ctx, x, w_x, w_y, w_z):  # type: ignore[override]
        from kernels import _monarch_triton

        config = _monarch_triton.MIX_CONFIG  # the backward uses the forward's choices
        out, saved = _monarch_triton.mix3d_forward(x, w_x, w_y, w_z, config)
        ctx.save_for_backward(x, w_x, w_y, w_z, *saved)
        ctx.config = config
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        from kernels import _monarch_triton

        x, w_x, w_y, w_z, *saved = ctx.saved_tensors
        return _monarch_triton.mix3d_backward(grad_out, x, w_x, w_y, w_z, tuple(saved), ctx.config)


_MONARCH_MIX3D_APPLY = opaque_to_compiler(MonarchMix3dFunction.apply)


def monarch_mix_3d(
    x: torch.Tensor,
    w_x: torch.Tensor,
    w_y: torch.Tensor,
    w_z: torch.Tensor,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """Mix the tokens of a 3D grid along each axis: y = x ×₁ w_x ×₂ w_y ×₃ w_z.

    The Triton kernels take X, Y, Z ≤ 128; larger grids use the reference on CUDA too,
    unless Triton is forced.

    Args:
        x: (B, X, Y, Z, C) features on the token grid.
        w_x, w_y, w_z: (X, X), (Y, Y), (Z, Z) mixing matrices (output index first), dtype of x.
        backend: ``"triton"``, ``"reference"`` or ``None`` (CUDA → Triton, CPU → reference).

    Returns:
        (B, X, Y, Z, C) tensor in the dtype of x.
    """
    _validate_mix(x, w_x, w_y, w_z)
    choice = resolve_backend(x, w_x, w_y, w_z, backend=backend)
    if choice == "triton":
        from kernels import _monarch_triton

        reason = _monarch_triton.mix3d_unsupported_reason(x.shape)
        if reason is not None:
            if backend == "triton":
                raise KernelError(f"monarch_mix_3d: the Triton kernels cannot take this grid: {reason}")
            choice = "reference"
    if choice == "reference":
        return monarch_mix_3d_reference(x, w_x, w_y, w_z)
    check_same_dtype(("x", "w_x", "w_y", "w_z"), (x, w_x, w_y, w_z), TRITON_DTYPES)
    return _MONARCH_MIX3D_APPLY(x, w_x, w_y, w_z)


# ----------------------------------------------------------------------------------------------------
# monarch_linear: M = P L Pᵀ R on the channels
# ----------------------------------------------------------------------------------------------------


def _validate_linear(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> None:
    if left.dim() != 3 or right.dim() != 3:
        raise KernelError(
            "monarch_linear: L must be (nblocks, out_block, mid) and R (nblocks, mid, in_block); got "
            f"L {tuple(left.shape)}, R {tuple(right.shape)}"
        )
    nblocks, mid, in_block = right.shape
    if left.shape[0] != nblocks or left.shape[2] != mid:
        raise KernelError(
            f"monarch_linear: L {tuple(left.shape)} must be (nblocks={nblocks}, out_block, mid={mid}) "
            f"to match R {tuple(right.shape)}"
        )
    if x.dim() < 1 or x.shape[-1] != nblocks * in_block:
        raise KernelError(
            f"monarch_linear: x has {x.shape[-1] if x.dim() else 0} features in its last axis; R "
            f"{tuple(right.shape)} takes nblocks·in_block = {nblocks * in_block}"
        )


def monarch_linear_reference(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """M = P L Pᵀ R applied to the last axis of x with batched matrix products (plain autograd).

    Args:
        x: (..., nblocks·in_block).
        left: L, (nblocks, out_block, mid).
        right: R, (nblocks, mid, in_block).

    Returns:
        (..., nblocks·out_block) tensor in the dtype of x.
    """
    _validate_linear(x, left, right)
    check_same_dtype(("x", "L", "R"), (x, left, right), REFERENCE_DTYPES)
    nblocks, mid, in_block = right.shape
    out_block = left.shape[1]
    rows = x.reshape(-1, nblocks, in_block).transpose(0, 1)  # (nblocks, M, in_block)
    hidden = torch.bmm(rows, right.transpose(1, 2))  # (nblocks, M, mid): R
    # Pᵀ: the flat (nblocks, mid) intermediate read as (mid, nblocks); block l takes column l.
    hidden = hidden.transpose(0, 1).reshape(-1, mid, nblocks).permute(2, 0, 1)  # (nblocks, M, mid)
    out = torch.bmm(hidden, left.transpose(1, 2))  # (nblocks, M, out_block): L
    # P: output feature s·nblocks + l holds entry s of block l.
    return out.permute(1, 2, 0).reshape(*x.shape[:-1], out_block * nblocks)


def monarch_dense_matrix(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """The dense (out, in) matrix M = P L Pᵀ R (for tests and inspection).

    Example:
        >>> L, R = torch.randn(4, 3, 2), torch.randn(4, 2, 5)
        >>> x = torch.randn(7, 20)
        >>> torch.allclose(monarch_linear(x, L, R), x @ monarch_dense_matrix(L, R).T, atol=1e-5)
        True
    """
    nblocks, _, in_block = right.shape
    eye = torch.eye(nblocks * in_block, dtype=right.dtype, device=right.device)
    return monarch_linear_reference(eye, left, right).T


class MonarchLinearFunction(torch.autograd.Function):
    """Fused Triton forward and backward of :func:`monarch_linear` (see :mod:`kernels._monarch_triton`)."""

    @staticmethod
    def forward(ctx, x, left, right):  # type: ignore[override]
        from kernels import _monarch_triton

        ctx.save_for_backward(x, left, right)
        return _monarch_triton.linear_forward(x, left, right)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        from kernels import _monarch_triton

        x, left, right = ctx.saved_tensors
        return _monarch_triton.linear_backward(grad_out, x, left, right)


_MONARCH_LINEAR_APPLY = opaque_to_compiler(MonarchLinearFunction.apply)


def monarch_linear(
    x: torch.Tensor, left: torch.Tensor, right: torch.Tensor, *, backend: str | None = None
) -> torch.Tensor:
    """Block-diagonal Monarch channel mixing y = M x with M = P L Pᵀ R (no bias).

    The Triton kernel keeps the intermediate on-chip; it takes power-of-two block sizes of at least 16
    (and 1..1024 features). Other shapes use the reference on CUDA too, unless Triton is forced.

    Args:
        x: (..., nblocks·in_block).
        left: L, (nblocks, out_block, mid).
        right: R, (nblocks, mid, in_block).
        backend: ``"triton"``, ``"reference"`` or ``None`` (CUDA → Triton, CPU → reference).

    Returns:
        (..., nblocks·out_block) tensor in the dtype of x.
    """
    _validate_linear(x, left, right)
    choice = resolve_backend(x, left, right, backend=backend)
    if choice == "triton":
        from kernels import _monarch_triton

        reason = _monarch_triton.linear_unsupported_reason(left.shape, right.shape)
        if reason is not None:
            if backend == "triton":
                raise KernelError(f"monarch_linear: the Triton kernel cannot take this shape: {reason}")
            choice = "reference"
    if choice == "reference":
        return monarch_linear_reference(x, left, right)
    check_same_dtype(("x", "L", "R"), (x, left, right), TRITON_DTYPES)
    return _MONARCH_LINEAR_APPLY(x, left, right)


class MonarchLinear(nn.Module):
    """Linear layer with a Monarch weight M = P L Pᵀ R (nblocks blocks each) and an optional bias.

    Parameters: nblocks·(mid·in/nblocks + out/nblocks·mid) with mid = min(in, out)/nblocks, instead of
    in·out. Each factor is initialised like ``nn.Linear`` over its own fan-in.

    Args:
        in_features, out_features: multiples of nblocks.
        nblocks: number of diagonal blocks of L and R.
        bias: add a learnable bias.

    Example:
        >>> layer = MonarchLinear(256, 256, nblocks=16)
        >>> sum(p.numel() for p in layer.parameters()) < 256 * 256 // 4
        True
    """

    def __init__(self, in_features: int, out_features: int, nblocks: int = 4, bias: bool = True) -> None:
        super().__init__()
        if nblocks < 1 or in_features % nblocks or out_features % nblocks:
            raise KernelError(
                f"MonarchLinear: in_features={in_features} and out_features={out_features} must be "
                f"multiples of nblocks={nblocks}"
            )
        self.in_features, self.out_features, self.nblocks = in_features, out_features, nblocks
        in_block, out_block = in_features // nblocks, out_features // nblocks
        mid = min(in_block, out_block)
        self.right = nn.Parameter(torch.empty(nblocks, mid, in_block))
        self.left = nn.Parameter(torch.empty(nblocks, out_block, mid))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Linear's default init per factor: U(-1/√fan_in, 1/√fan_in)."""
        for factor in (self.right, self.left):
            bound = 1.0 / math.sqrt(factor.shape[-1])
            nn.init.uniform_(factor, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -1.0 / math.sqrt(self.in_features), 1.0 / math.sqrt(self.in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y = M x + b over the last axis; factors cast to the dtype of x (autocast-friendly)."""
        out = monarch_linear(x, self.left.to(x.dtype), self.right.to(x.dtype))
        return out if self.bias is None else out + self.bias.to(out.dtype)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, nblocks={self.nblocks}, "
            f"bias={self.bias is not None}"
        )
