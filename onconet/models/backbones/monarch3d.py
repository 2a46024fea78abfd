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
from onconet.models.backbones.layers import (
    AutocastLayerNorm,
    Grid,
    TokenBackbone,
    to_autocast_dtype,
    token_grid,
)
from onconet.models.backbones.registry import register_backbone


def _axis_matrix(size: int, heads: int) -> nn.Parameter:
    # Near the identity: each layer starts close to "no token mixing" and learns its reach.
    noise = torch.randn(heads, size, size) * (0.1 / size**0.5)
    return nn.Parameter(torch.eye(size).expand(heads, size, size) + noise)


class _GatedHeads(torch.autograd.Function):
    """[u, g] (B, N, 2·H·d) -> H contiguous heads u_h (B, N, d) and σ(g) (B, N, H·d).

    Autograd's path (``u[..., h, :].contiguous()`` per head, ``sigmoid``) would return each head's
    gradient as a full-size zero tensor with one slice filled, sum the H of them, and ``cat`` the u and g
    gradients; here every gradient is written once into its place in the packed [du, dg].
    """

    @staticmethod
    def forward(ctx, packed, heads):  # type: ignore[override]
        batch, n, width = packed.shape
        u, gate = packed.split(width // 2, dim=-1)
        u = u.view(batch, n, heads, -1)
        gate = torch.sigmoid(gate)
        ctx.save_for_backward(gate)
        ctx.heads = heads
        return (*(u[:, :, h].contiguous() for h in range(heads)), gate)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        (gate,) = ctx.saved_tensors
        *head_grads, gate_grad = grads
        batch, n, dim = gate.shape
        grad = gate.new_empty(batch, n, 2 * dim)
        grad_u, grad_gate = grad.split(dim, dim=-1)
        grad_u = grad_u.view(batch, n, ctx.heads, -1)
        for h, head_grad in enumerate(head_grads):
            if head_grad is None:
                grad_u[:, :, h].zero_()
            else:
                grad_u[:, :, h].copy_(head_grad)
        if gate_grad is None:
            grad_gate.zero_()
        else:
            torch.ops.aten.sigmoid_backward.grad_input(gate_grad, gate, grad_input=grad_gate)
        return grad, None


class _GateMerge(torch.autograd.Function):
    """H heads m_h (B, N, d) and a gate σ (B, N, H·d) -> [m_1, ..., m_H] ⊙ σ (B, N, H·d), without a stack."""

    @staticmethod
    def forward(ctx, gate, *mixed):  # type: ignore[override]
        batch, n, dim = gate.shape
        out = gate.new_empty(batch, n, dim)
        out_heads, gate_heads = out.view(batch, n, len(mixed), -1), gate.view(batch, n, len(mixed), -1)
        for h, head in enumerate(mixed):
            torch.mul(head, gate_heads[:, :, h], out=out_heads[:, :, h])
        ctx.save_for_backward(gate, *mixed)
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        gate, *mixed = ctx.saved_tensors
        batch, n, _ = gate.shape
        heads = len(mixed)
        grad_heads, gate_heads = grad.view(batch, n, heads, -1), gate.view(batch, n, heads, -1)
        grad_gate = torch.empty_like(gate)
        grad_gate_heads = grad_gate.view(batch, n, heads, -1)
        grad_mixed = []
        for h, head in enumerate(mixed):
            grad_mixed.append((grad_heads[:, :, h] * gate_heads[:, :, h]).contiguous())
            torch.mul(grad_heads[:, :, h], head, out=grad_gate_heads[:, :, h])
        return grad_gate, *grad_mixed


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
        batch, n, _ = x.shape
        *heads, gate = _GatedHeads.apply(self.proj_in(to_autocast_dtype(x)), self.heads)
        # One cast per axis matrix stack, not one per head (fewer launches, one gradient cast back).
        w_x, w_y, w_z = (w.to(gate.dtype).unbind(0) for w in (self.w_x, self.w_y, self.w_z))
        mixed = [
            kernels.monarch_mix_3d(u.view(batch, *grid, -1), w_x[h], w_y[h], w_z[h]).view(batch, n, -1)
            for h, u in enumerate(heads)
        ]
        return self.proj_out(_GateMerge.apply(gate, *mixed))


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
        self.norm_mix, self.norm_mlp = AutocastLayerNorm(dim), AutocastLayerNorm(dim)
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
        patch_max: as for BASED-3D.
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
        patch_max: bool = False,
    ) -> None:
        super().__init__(in_channels, dim, patch_size, lean_glue=True, patch_max=patch_max)
        grid = token_grid(image_size, patch_size)
        hidden = int(dim * mlp_ratio)
        if dim % nblocks or hidden % nblocks:
            raise ConfigError(
                f"Monarch-3D: dim={dim} and dim·mlp_ratio={hidden} must be multiples of nblocks={nblocks}"
            )
        self.blocks.extend(
            Monarch3dBlock(dim, grid, heads, nblocks, mlp_ratio, dropout) for _ in range(depth)
        )
