"""Monarch-3D (M2-style): token mixing by an order-3 Monarch matrix, channel mixing by Monarch MLPs.

The sequence mixer multiplies the token grid along x, y and z by learned dense (X, X), (Y, Y), (Z, Z)
matrices — the Kronecker product w_x ⊗ w_y ⊗ w_z, an order-3 Monarch matrix over all N = X·Y·Z tokens,
applied in O(N·(X+Y+Z)) by ``kernels.monarch_mix_3d`` — gated like M2's sequence mixer; each head has
its own three matrices. Channels are mixed by block-diagonal Monarch layers (``kernels.MonarchLinear``).
The axis matrices fix the token grid, so the backbone is built for one image size.

Example:
    >>> import torch
    >>> net = Monarch3d(image_size=(16, 16, 8), dim=32, depth=1, heads=2, patch_size=4, nblocks=4)
    >>> out = net(torch.randn(2, 2, 16, 16, 8))
    >>> out.tokens.shape, out.grid
    (torch.Size([2, 32, 32]), (4, 4, 2))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from onconet.errors import ConfigError
from onconet.models.backbones.layers import Grid, TokenBackbone, to_autocast_dtype, token_grid
from onconet.models.backbones.registry import register_backbone


def _axis_matrix(size: int, heads: int) -> nn.Parameter:
    # Near the identity: each layer starts close to "no token mixing" and learns its reach.
    noise = torch.randn(heads, size, size) * (0.1 / size**0.5)
    return nn.Parameter(torch.eye(size).expand(heads, size, size) + noise)


class MonarchSequenceMixer(nn.Module):
    """y = out(mix(u) ⊙ σ(g)), [u, g] = in(x); mix = per-head w_x ⊗ w_y ⊗ w_z on the token grid."""

    def __init__(self, dim: int, grid: Grid, heads: int, nblocks: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"Monarch-3D: dim={dim} must be a multiple of heads={heads}")
        self.grid, self.heads = grid, heads
        self.proj_in = kernels.MonarchLinear(dim, 2 * dim, nblocks)
        self.proj_out = kernels.MonarchLinear(dim, dim, nblocks)
        self.w_x, self.w_y, self.w_z = (_axis_matrix(n, heads) for n in grid)

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        if tuple(grid) != self.grid:
            raise ConfigError(
                f"Monarch-3D was built for the token grid {self.grid} (model.image_size / patch_size) but "
                f"got {tuple(grid)}; set data.spatial_size to the size the model was built for"
            )
        batch, n, dim = x.shape
        u, gate = self.proj_in(to_autocast_dtype(x)).chunk(2, dim=-1)
        u = u.reshape(batch, *grid, self.heads, dim // self.heads)
        mixed = [
            kernels.monarch_mix_3d(
                u[..., h, :].contiguous(),
                self.w_x[h].to(u.dtype),
                self.w_y[h].to(u.dtype),
                self.w_z[h].to(u.dtype),
            )
            for h in range(self.heads)
        ]
        mixed = torch.stack(mixed, dim=-2).reshape(batch, n, dim)
        return self.proj_out(mixed * torch.sigmoid(gate))


class MonarchMlp(nn.Module):
    """Channel mixing with two block-diagonal Monarch layers: dim -> hidden -> dim."""

    def __init__(self, dim: int, hidden: int, nblocks: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = kernels.MonarchLinear(dim, hidden, nblocks)
        self.fc2 = kernels.MonarchLinear(hidden, dim, nblocks)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(to_autocast_dtype(x))))))


class Monarch3dBlock(nn.Module):
    """Pre-norm residual block: Monarch sequence mixer, Monarch MLP."""

    def __init__(self, dim: int, grid: Grid, heads: int, nblocks: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm_mix, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mixer = MonarchSequenceMixer(dim, grid, heads, nblocks)
        self.mlp = MonarchMlp(dim, int(dim * mlp_ratio), nblocks, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        x = x + self.dropout(self.mixer(self.norm_mix(x), grid))
        return x + self.mlp(self.norm_mlp(x))


@register_backbone("monarch3d")
class Monarch3d(TokenBackbone):
    """Monarch-3D backbone.

    Args:
        in_channels: image channels (SUV, CT).
        image_size: input volume size (x, y, z); fixes the token grid of the mixing matrices.
        dim: token width (a multiple of nblocks and heads).
        depth: number of blocks.
        heads: groups of channels with their own axis matrices.
        nblocks: diagonal blocks of the Monarch channel layers (block width = dim / nblocks).
        patch_size: 3D patch size.
        mlp_ratio: MLP hidden width / dim (hidden width a multiple of nblocks).
        dropout: dropout on the residual branches.
    """

    def __init__(
        self,
        in_channels: int = 2,
        image_size: int | Sequence[int] = 64,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        nblocks: int = 4,
        patch_size: int | Sequence[int] = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_channels, dim, patch_size)
        grid = token_grid(image_size, patch_size)
        hidden = int(dim * mlp_ratio)
        if dim % nblocks or hidden % nblocks:
            raise ConfigError(
                f"Monarch-3D: dim={dim} and dim·mlp_ratio={hidden} must be multiples of nblocks={nblocks}"
            )
        self.blocks.extend(
            Monarch3dBlock(dim, grid, heads, nblocks, mlp_ratio, dropout) for _ in range(depth)
        )
