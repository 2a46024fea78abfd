"""Non-causal linear attention with the second-order Taylor feature map (BASED-style).

    y_n = φ(q_n)ᵀ S / (φ(q_n)ᵀ z + eps),   S = Σ_m φ(k_m) v_mᵀ,   z = Σ_m φ(k_m)

with φ(x) = [1, x/d^¼, vec_sym(x xᵀ)/(√2·√d)] (1 + d + d(d+1)/2 features), so that
φ(q)·φ(k) = 1 + q·k/√d + (q·k)²/(2d). The weights are positive, so the denominator never vanishes.

This module holds the float64-capable PyTorch reference (also the CPU path), the one autograd Function
around the Triton kernels of :mod:`kernels._taylor_triton`, and the dispatcher.

Example:
    >>> import torch
    >>> q, k = torch.randn(1, 2, 10, 4), torch.randn(1, 2, 10, 4)
    >>> v = torch.randn(1, 2, 10, 8)
    >>> taylor_linear_attention(q, k, v).shape
    torch.Size([1, 2, 10, 8])
    >>> phi_q, phi_k = taylor_feature_map(q), taylor_feature_map(k)
    >>> phi_q.shape[-1]  # 1 + 4 + 4*5/2
    15
    >>> dots = q @ k.transpose(-1, -2) / 2.0  # q·k/√d with d = 4
    >>> torch.allclose(phi_q @ phi_k.transpose(-1, -2), 1 + dots + dots**2 / 2, atol=1e-5)
    True
"""

from __future__ import annotations

import math

import torch

from kernels.dispatch import KernelError, check_same_dtype, opaque_to_compiler, resolve_backend

MAX_FEATURE_DIM = 16
MAX_VALUE_DIM = 128
TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
REFERENCE_DTYPES = (*TRITON_DTYPES, torch.float64)


def taylor_feature_count(d: int) -> int:
    """Number of features of the symmetric second-order Taylor map: 1 + d + d(d+1)/2."""
    return 1 + d + d * (d + 1) // 2


def taylor_feature_map(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = [1, x/d^¼, vec_sym(x xᵀ)/(√2·√d)] along the last axis (off-diagonal terms counted twice).

    Args:
        x: (..., d) tensor.

    Returns:
        (..., 1 + d + d(d+1)/2) tensor of the same dtype.
    """
    d = x.shape[-1]
    rows, cols = torch.triu_indices(d, d, device=x.device)
    # x_i x_j for i<j stands for both (i,j) and (j,i), hence √2·x_i x_j/√(2d) = x_i x_j/√d.
    off_diagonal = torch.full(rows.shape, 1.0 / math.sqrt(d), dtype=x.dtype, device=x.device)
    scale = torch.where(rows == cols, 1.0 / math.sqrt(2 * d), off_diagonal)
    quadratic = x[..., rows] * x[..., cols] * scale
    ones = torch.ones_like(x[..., :1])
    return torch.cat([ones, x / d**0.25, quadratic], dim=-1)


def _validate(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor | None, eps: float
) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise KernelError(
                f"taylor_linear_attention: {name} must be (B, H, N, dim), got shape {tuple(t.shape)}"
            )
    if q.shape != k.shape:
        raise KernelError(f"taylor_linear_attention: q {tuple(q.shape)} and k {tuple(k.shape)} must match")
    if v.shape[:3] != k.shape[:3]:
        raise KernelError(
            f"taylor_linear_attention: v {tuple(v.shape)} must share (B, H, N) with k {tuple(k.shape)}"
        )
    d, dv = q.shape[-1], v.shape[-1]
    if not 1 <= d <= MAX_FEATURE_DIM:
        raise KernelError(
            f"taylor_linear_attention: feature dim d={d} of q/k must be in 1..{MAX_FEATURE_DIM}; "
            "project q and k to fewer features"
        )
    if not 1 <= dv <= MAX_VALUE_DIM:
        raise KernelError(
            f"taylor_linear_attention: value dim D={dv} must be in 1..{MAX_VALUE_DIM}; "
            "split v into more heads"
        )
    if key_padding_mask is not None:
        batch, _, n, _ = k.shape
        if key_padding_mask.shape != (batch, n) or key_padding_mask.dtype != torch.bool:
            raise KernelError(
                "taylor_linear_attention: key_padding_mask must be a bool (B, N) tensor, True = real token; "
                f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)} for B={batch}, N={n}"
            )
    if not eps > 0:
        raise KernelError(f"taylor_linear_attention: eps must be > 0, got {eps}")


def taylor_linear_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    eps: float = 1e-6,
    key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Naive PyTorch Taylor linear attention: materialises φ(q), φ(k) (N × 153 for d = 16).

    Computes in float32 (float64 for float64 inputs) and returns the input dtype. Differentiable
    through plain autograd.

    Args:
        q, k: (B, H, N, d) queries and keys, d ≤ 16.
        v: (B, H, N, D) values, D ≤ 128.
        eps: added to the normaliser.
        key_padding_mask: optional (B, N) bool, True = real token; padded keys are left out of the sums.

    Returns:
        (B, H, N, D) tensor.
    """
    _validate(q, k, v, key_padding_mask, eps)
    check_same_dtype(("q", "k", "v"), (q, k, v), REFERENCE_DTYPES)
    compute = torch.float64 if q.dtype == torch.float64 else torch.float32
    phi_q = taylor_feature_map(q.to(compute))
    phi_k = taylor_feature_map(k.to(compute))
    if key_padding_mask is not None:
        phi_k = phi_k * key_padding_mask[:, None, :, None].to(compute)
    state = phi_k.transpose(-1, -2) @ v.to(compute)  # (B, H, F, D)
    normaliser = phi_k.sum(dim=-2)  # (B, H, F)
    numerator = phi_q @ state
    denominator = (phi_q @ normaliser.unsqueeze(-1)) + eps
    return (numerator / denominator).to(q.dtype)


class TaylorLinearAttentionFunction(torch.autograd.Function):
    """Triton forward and backward (see :mod:`kernels._taylor_triton`)."""

    @staticmethod
    def forward(ctx, q, k, v, key_padding_mask, eps, chunks):  # type: ignore[override]
        from kernels import _taylor_triton

        out, saved = _taylor_triton.forward(q, k, v, key_padding_mask, eps, chunks)
        ctx.save_for_backward(q, k, v, out, key_padding_mask, *saved)
        ctx.eps, ctx.chunks = eps, chunks
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        from kernels import _taylor_triton

        q, k, v, out, key_padding_mask, *saved = ctx.saved_tensors
        dq, dk, dv = _taylor_triton.backward(
            grad_out, q, k, v, out, key_padding_mask, saved, ctx.eps, ctx.chunks
        )
        return dq, dk, dv, None, None, None


_TAYLOR_LINEAR_ATTENTION_APPLY = opaque_to_compiler(TaylorLinearAttentionFunction.apply)


def taylor_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    eps: float = 1e-6,
    key_padding_mask: torch.Tensor | None = None,
    *,
    backend: str | None = None,
    chunks: int | None = None,
) -> torch.Tensor:
    """Taylor linear attention, non-causal: φ(q)(φ(k)ᵀv) / (φ(q)·Σφ(k) + eps).

    Args:
        q, k: (B, H, N, d) queries and keys, d ≤ 16.
        v: (B, H, N, D) values, D ≤ 128.
        eps: added to the normaliser.
        key_padding_mask: optional (B, N) bool, True = real token (volumes of different sizes in a batch).
        backend: ``"triton"``, ``"reference"`` or ``None`` (CUDA → Triton, CPU → reference; see
            :func:`kernels.dispatch.resolve_backend`).
        chunks: Triton only: blocks each (B, H) sequence is split into (default: enough to fill the GPU).

    Returns:
        (B, H, N, D) tensor in the dtype of the inputs.
    """
    _validate(q, k, v, key_padding_mask, eps)
    if resolve_backend(q, k, v, key_padding_mask, backend=backend) == "reference":
        return taylor_linear_attention_reference(q, k, v, eps, key_padding_mask)
    check_same_dtype(("q", "k", "v"), (q, k, v), TRITON_DTYPES)
    if chunks is not None and chunks < 1:
        raise KernelError(f"taylor_linear_attention: chunks must be >= 1, got {chunks}")
    return _TAYLOR_LINEAR_ATTENTION_APPLY(q, k, v, key_padding_mask, float(eps), chunks)
