"""Causal Taylor linear attention, ours, in plain PyTorch (no Triton kernel for the causal form yet).

``kernels.taylor_linear_attention`` is non-causal: every token reads the state built from the whole
sequence. A language model on MQAR may only read the past, so here is the causal form, with the same
feature map and normalisation as the kernel (DESIGN.md, "Backbones"):

    φ(x) = [1, x/d^¼, x_i x_j/(√2·√d) (i = j), x_i x_j/√d (i < j)],   φ(q)·φ(k) = 1 + s + s²/2,  s = q·k/√d
    y_i = φ(q_i) S_i / (φ(q_i)·z_i + eps),   S_i = Σ_{j≤i} φ(k_j) v_jᵀ,   z_i = Σ_{j≤i} φ(k_j)

The feature map is the kernel package's own (``kernels.taylor_feature_map``); the causal accumulation
is ours. ``causal_taylor_linear_attention`` computes it as a cumulative sum of the recurrent state
over chunks of the sequence (exact within a chunk, the state carried between chunks), so memory and
time grow linearly with the length. ``causal_taylor_linear_attention_quadratic`` is the masked N×N
form, written from the kernel 1 + s + s²/2 without the feature map; the tests hold the two equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels import taylor_feature_map


def taylor_feature_dim(head_dim: int) -> int:
    """Width of ``kernels.taylor_feature_map`` for ``head_dim``-dimensional keys: 1 + d + d(d+1)/2.

    Example:
        >>> taylor_feature_dim(16)
        153
    """
    return 1 + head_dim + head_dim * (head_dim + 1) // 2


def causal_taylor_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float = 1e-6, chunk_size: int = 64
) -> torch.Tensor:
    """Causal Taylor linear attention by chunk-wise cumulative sums of the state (linear in N).

    Args:
        q: (B, H, N, d) queries.
        k: (B, H, N, d) keys.
        v: (B, H, N, D) values.
        eps: added to the normaliser (as in ``kernels.taylor_linear_attention``).
        chunk_size: tokens per chunk; 1 is the token-by-token recurrence, N the quadratic form.

    Returns:
        (B, H, N, D); position i reads tokens 0..i only.
    """
    batch, heads, n, _ = q.shape
    pad = (-n) % chunk_size
    fq, fk = taylor_feature_map(q), taylor_feature_map(k)
    if pad:  # zero features of padded keys add nothing to the state
        fq, fk, v = (F.pad(t, (0, 0, 0, pad)) for t in (fq, fk, v))
    chunks = (n + pad) // chunk_size
    fq = fq.reshape(batch, heads, chunks, chunk_size, -1)
    fk = fk.reshape(batch, heads, chunks, chunk_size, -1)
    v = v.reshape(batch, heads, chunks, chunk_size, -1)

    # State of each chunk alone, then the exclusive cumulative sum: what the chunks before it built.
    chunk_state = fk.transpose(-1, -2) @ v  # (B, H, C, f, D)
    chunk_norm = fk.sum(dim=-2)  # (B, H, C, f)
    state_before = torch.cumsum(chunk_state, dim=2) - chunk_state
    norm_before = torch.cumsum(chunk_norm, dim=2) - chunk_norm

    # Within a chunk: the masked quadratic form on the features.
    scores = (fq @ fk.transpose(-1, -2)).tril()
    numerator = fq @ state_before + scores @ v
    denominator = (fq * norm_before[..., None, :]).sum(-1) + scores.sum(-1)
    out = numerator / (denominator[..., None] + eps)
    return out.reshape(batch, heads, chunks * chunk_size, -1)[:, :, :n]


def causal_taylor_linear_attention_quadratic(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """The masked quadratic reference: weights 1 + s + s²/2 (s = q·k/√d) on j ≤ i, normalised.

    Same arguments and result as ``causal_taylor_linear_attention``; O(N²) memory, for tests.
    """
    n, d = q.shape[-2], q.shape[-1]
    s = q @ k.transpose(-1, -2) / d**0.5
    causal = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
    weights = torch.where(causal, 1.0 + s + s * s / 2.0, torch.zeros_like(s))
    return (weights @ v) / (weights.sum(-1, keepdim=True) + eps)
