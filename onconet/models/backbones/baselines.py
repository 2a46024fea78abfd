"""Baselines for every comparison table: MONAI DenseNet121-3D and a ViT with full softmax attention (SDPA).

Example:
    >>> import torch
    >>> vit = VitSdpa(image_size=16, dim=32, depth=1, heads=2, patch_size=4)
    >>> vit(torch.randn(1, 2, 16, 16, 16)).tokens.shape
    torch.Size([1, 64, 32])
    >>> cnn = DenseNet3d(image_size=16, dim=32, init_features=8, growth_rate=4, block_config=(2, 2))
    >>> out = cnn(torch.randn(1, 2, 16, 16, 16))
    >>> out.tokens.shape, out.grid
    (torch.Size([1, 8, 32]), (2, 2, 2))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets import DenseNet121
from torch import nn
from torch.utils.checkpoint import checkpoint_sequential

from onconet.errors import ConfigError
from onconet.models.backbones.based3d import merge_heads, split_heads
from onconet.models.backbones.layers import Grid, Mlp, TokenBackbone, TokenGrid, as_triple, token_grid
from onconet.models.backbones.registry import register_backbone


class SdpaAttention(nn.Module):
    """Full softmax self-attention over all tokens (``torch.nn.functional.scaled_dot_product_attention``)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"ViT-SDPA: dim={dim} must be a multiple of heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        return self.out(merge_heads(F.scaled_dot_product_attention(q, k, v)))


class VitBlock(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm_attn, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SdpaAttention(dim, heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, grid: Grid | None = None) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm_attn(x)))
        return x + self.mlp(self.norm_mlp(x))


@register_backbone("vit_sdpa")
class VitSdpa(TokenBackbone):
    """ViT with full softmax attention (quadratic in the tokens): the attention baseline.

    Args:
        in_channels: image channels (SUV, CT).
        image_size: input volume size; must be a multiple of the patch size.
        dim, depth, heads, patch_size, mlp_ratio, dropout, patch_max: as for BASED-3D.
    """

    def __init__(
        self,
        in_channels: int = 2,
        image_size: int | Sequence[int] = 64,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        patch_size: int | Sequence[int] = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        patch_max: bool = False,
    ) -> None:
        super().__init__(in_channels, dim, patch_size, patch_max=patch_max)
        token_grid(image_size, patch_size)
        self.blocks.extend(VitBlock(dim, heads, mlp_ratio, dropout) for _ in range(depth))


@register_backbone("densenet121")
class DenseNet3d(nn.Module):
    """MONAI DenseNet121 (3D) feature extractor; its last feature map becomes tokens of width ``dim``.

    Args:
        in_channels: image channels (SUV, CT).
        image_size: input volume size; each side must survive the downsampling (factor 2^(2+blocks-1)).
        dim: token width after a linear projection of the DenseNet features.
        init_features, growth_rate, block_config: DenseNet sizes (DenseNet121: 64, 32, (6, 12, 24, 16)).
        dropout: DenseNet's dropout probability.
    """

    def __init__(
        self,
        in_channels: int = 2,
        image_size: int | Sequence[int] = 64,
        dim: int = 64,
        init_features: int = 64,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        downsampling = 2 ** (2 + len(block_config) - 1)  # stem conv + pool, one pooling per transition
        size = as_triple(image_size, "image_size")
        if any(s % downsampling for s in size):
            raise ConfigError(
                f"DenseNet121-3D downsamples by {downsampling}; image size {size} must be a multiple of it "
                "(data.spatial_size)"
            )
        net = DenseNet121(
            spatial_dims=3,
            in_channels=in_channels,
            out_channels=1,
            init_features=init_features,
            growth_rate=growth_rate,
            block_config=tuple(block_config),
            dropout_prob=dropout,
        )
        self.features = net.features  # ends with the final BatchNorm; the classifier is dropped
        for module in self.features.modules():
            if isinstance(module, nn.ReLU):
                module.inplace = False  # in-place ReLUs break recomputation under checkpointing
        width = self.features[-1].num_features
        self.proj = nn.Linear(width, dim)
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute the feature layers in the backward pass (BatchNorm statistics then update twice)."""
        self.grad_checkpointing = enabled

    def forward(self, x: torch.Tensor) -> TokenGrid:
        """(B, C, X, Y, Z) -> tokens (B, X/s · Y/s · Z/s, dim), s the downsampling factor."""
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            features = checkpoint_sequential(self.features, len(self.features), x, use_reentrant=False)
        else:
            features = self.features(x)
        grid = tuple(features.shape[2:])
        tokens = self.proj(F.relu(features).flatten(2).transpose(1, 2))
        return TokenGrid(self.norm(tokens), grid)  # type: ignore[arg-type]
