"""BASED-3D: global Taylor linear attention + local 3D window attention + MLP per block.

The global mixer (``kernels.taylor_linear_attention``) recalls across the whole body in time and memory
linear in the number of tokens; the local mixer (``kernels.local_attention_3d``) does exact softmax
attention within a small 3D neighbourhood, where precise shape matters. Both run on Triton for CUDA
tensors and on the PyTorch references on the CPU.

Example:
    >>> import torch
    >>> net = Based3d(image_size=16, dim=32, depth=1, heads=2, patch_size=4)
    >>> out = net(torch.randn(2, 2, 16, 16, 16))
    >>> out.tokens.shape, out.grid
    (torch.Size([2, 64, 32]), (4, 4, 4))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from onconet.errors import ConfigError
from onconet.models.backbones.layers import (
    AutocastLayerNorm,
    Grid,
    Mlp,
    TokenBackbone,
    as_triple,
    token_grid,
)
from onconet.models.backbones.registry import register_backbone


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, H·d) -> (B, H, N, d)."""
    batch, n, width = x.shape
    return x.reshape(batch, n, heads, width // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, d) -> (B, N, H·d)."""
    batch, heads, n, width = x.shape
    return x.transpose(1, 2).reshape(batch, n, heads * width)


class _PackedHeads(torch.autograd.Function):
    """Packed projections (B, N, Σ H·dᵢ) -> one (B, H, N, dᵢ) tensor per part, and back in the backward.

    Autograd's own path (split, reshape, transpose) returns each part's gradient through a reshape copy
    and then a ``cat`` of all parts: two passes. Here each part's gradient is written straight into its
    place in the packed gradient: one pass, no cat. The forward returns strided views (``copy=False``,
    for ops that read strided heads) or contiguous copies (``copy=True``, for ops that would copy anyway:
    copying here also makes the tensors they save for their backward contiguous).
    """

    @staticmethod
    def forward(ctx, packed, widths, heads, copy):  # type: ignore[override]
        ctx.shape, ctx.widths, ctx.heads = packed.shape, widths, heads
        parts = [split_heads(part, heads) for part in packed.split(widths, dim=-1)]
        return tuple(part.contiguous() if copy else part for part in parts)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        batch, n, _ = ctx.shape
        grad = grads[0].new_empty(ctx.shape) if any(g is not None for g in grads) else None
        if grad is None:
            return None, None, None, None
        for part, part_grad in zip(grad.split(ctx.widths, dim=-1), grads, strict=True):
            target = part.view(batch, n, ctx.heads, -1)
            if part_grad is None:
                target.zero_()
            else:
                target.copy_(part_grad.transpose(1, 2))
        return grad, None, None, None


def packed_heads(
    packed: torch.Tensor, widths: Sequence[int], heads: int, copy: bool = False
) -> tuple[torch.Tensor, ...]:
    """Split (B, N, Σ wᵢ) packed projections into (B, H, N, wᵢ / H) heads per part.

    Same values as ``split_heads`` of each ``packed.split(widths, -1)`` part; the backward writes the
    gradients into the packed layout in one pass. ``copy``: return contiguous tensors instead of views.
    """
    return _PackedHeads.apply(packed, tuple(widths), heads, copy)


class TaylorAttention(nn.Module):
    """Global non-causal linear attention with the 2nd-order Taylor feature map (q, k projected to d ≤ 16)."""

    def __init__(self, dim: int, heads: int, feature_dim: int = 16, eps: float = 1e-6) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"BASED-3D: dim={dim} must be a multiple of heads={heads}")
        self.heads, self.eps = heads, eps
        self.qk = nn.Linear(dim, 2 * heads * feature_dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, grid: Grid | None = None) -> torch.Tensor:
        # One matmul for q, k and v (the weights stay two parameters): x is read, and under autocast cast,
        # once. The Taylor kernels read the strided heads of the packed result without copies.
        weight = torch.cat([self.qk.weight, self.v.weight])
        qk_width = self.qk.out_features // 2
        q, k, v = packed_heads(F.linear(x, weight), (qk_width, qk_width, self.v.out_features), self.heads)
        return self.out(merge_heads(kernels.taylor_linear_attention(q, k, v, eps=self.eps)))


class LocalAttention3d(nn.Module):
    """Softmax attention within a (wx, wy, wz) window around each token (shrunk to fit small grids)."""

    def __init__(self, dim: int, heads: int, window: int | Sequence[int] = 3) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"BASED-3D: dim={dim} must be a multiple of heads={heads}")
        self.window = as_triple(window, "window")
        if any(w % 2 == 0 for w in self.window):
            raise ConfigError(f"BASED-3D: window {self.window} must be odd along every axis")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def fitted_window(self, grid: Grid) -> Grid:
        """The window, each side cut to the largest odd size that fits the grid."""
        return tuple(min(w, n if n % 2 else n - 1) for w, n in zip(self.window, grid, strict=True))  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        width = self.qkv.out_features // 3
        # The kernel takes contiguous heads: copy once here, so that it neither copies again nor saves
        # strided views that its backward would copy a second time.
        q, k, v = packed_heads(self.qkv(x), (width,) * 3, self.heads, copy=True)
        mixed = kernels.local_attention_3d(q, k, v, grid=grid, window=self.fitted_window(grid))
        return self.out(merge_heads(mixed))


class Based3dBlock(nn.Module):
    """Pre-norm residual block: Taylor linear attention, local 3D attention, MLP."""

    def __init__(
        self, dim: int, heads: int, feature_dim: int, window: Sequence[int], mlp_ratio: float, dropout: float
    ) -> None:
        super().__init__()
        self.norm_global, self.norm_local, self.norm_mlp = (AutocastLayerNorm(dim) for _ in range(3))
        self.global_mixer = TaylorAttention(dim, heads, feature_dim)
        self.local_mixer = LocalAttention3d(dim, heads, window)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        x = x + self.dropout(self.global_mixer(self.norm_global(x)))
        x = x + self.dropout(self.local_mixer(self.norm_local(x), grid))
        return x + self.mlp(self.norm_mlp(x))


@register_backbone("based3d")
class Based3d(TokenBackbone):
    """BASED-3D backbone.

    Args:
        in_channels: image channels (SUV, CT).
        image_size: input volume size (x, y, z); must be a multiple of the patch size.
        dim: token width.
        depth: number of blocks.
        heads: attention heads (dim / heads ≤ 128).
        feature_dim: q/k width of the Taylor attention per head (≤ 16; 153 features at 16).
        window: local attention window (odd sizes).
        patch_size: 3D patch size (4 -> a 128³ volume is 32,768 tokens).
        mlp_ratio: MLP hidden width / dim.
        dropout: dropout on the residual branches.
        patch_max: the SUV channel also enters through its maximum over each patch (the SUVmax a reader
            measures; :class:`~onconet.models.backbones.layers.PatchEmbed3d`).
    """

    def __init__(
        self,
        in_channels: int = 2,
        image_size: int | Sequence[int] = 64,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        feature_dim: int = 16,
        window: int | Sequence[int] = 3,
        patch_size: int | Sequence[int] = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        patch_max: bool = False,
    ) -> None:
        super().__init__(in_channels, dim, patch_size, lean_glue=True, patch_max=patch_max)
        token_grid(image_size, patch_size)  # fail at build time, not in the first step
        window = as_triple(window, "window")
        self.blocks.extend(
            Based3dBlock(dim, heads, feature_dim, window, mlp_ratio, dropout) for _ in range(depth)
        )
