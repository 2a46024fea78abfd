"""Pieces every token backbone shares: 3D patch embedding, position code, MLP, the block runner.

Tokens are the cells of an (X, Y, Z) grid flattened row-major with z fastest, the layout the ``kernels``
ops expect (token index = (x·Y + y)·Z + z).

Example:
    >>> import torch
    >>> embed = PatchEmbed3d(in_channels=2, dim=8, patch_size=4)
    >>> tokens, grid = embed(torch.randn(1, 2, 8, 12, 16))
    >>> tokens.shape, grid
    (torch.Size([1, 24, 8]), (2, 3, 4))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from onconet.errors import ConfigError

Grid = tuple[int, int, int]


class TokenGrid(NamedTuple):
    """A backbone's output: ``tokens`` (B, N, D) on the token ``grid`` (X, Y, Z), N = X·Y·Z."""

    tokens: torch.Tensor
    grid: Grid


def as_triple(value: int | Sequence[int], name: str) -> Grid:
    """``value`` as an (x, y, z) triple of positive ints; a single int is used for every axis."""
    triple = (value,) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(triple) != 3 or min(triple) < 1:
        raise ConfigError(f"{name} must be a positive int or three positive ints (x, y, z), got {value!r}")
    return triple  # type: ignore[return-value]


def token_grid(image_size: int | Sequence[int], patch_size: int | Sequence[int]) -> Grid:
    """The token grid of an image cut into patches; raises ConfigError unless the patches tile it."""
    size, patch = as_triple(image_size, "image_size"), as_triple(patch_size, "patch_size")
    if any(s % p for s, p in zip(size, patch, strict=True)):
        raise ConfigError(
            f"image size {size} is not a multiple of the patch size {patch}; change data.spatial_size "
            "or model.backbone_kwargs.patch_size"
        )
    return tuple(s // p for s, p in zip(size, patch, strict=True))  # type: ignore[return-value]


class PatchEmbed3d(nn.Module):
    """Non-overlapping 3D patches (a strided convolution) -> tokens (B, N, dim) and their grid.

    ``contiguous``: return the tokens as a contiguous (B, N, dim) tensor, not a transposed view of the
    convolution's (B, dim, N) output.

    ``max_channels``: the first ``max_channels`` input channels also enter through their maximum over each
    patch (a learned linear map of it is added to the token). A convolution can only average the voxels
    of a patch, so it carries a small lesion's peak only blurred by the lesion's size and position in the
    patch; the patch maximum is the SUVmax a reader measures, and the quantity the response criteria use
    (DESIGN.md). The SUV channel's scaling is monotone (``log1p``), so the maximum of the scaled channel
    is the scaled SUVmax.
    """

    def __init__(
        self,
        in_channels: int,
        dim: int,
        patch_size: int | Sequence[int] = 4,
        contiguous: bool = False,
        max_channels: int = 0,
    ) -> None:
        super().__init__()
        if not 0 <= max_channels <= in_channels:
            raise ConfigError(f"patch maximum of {max_channels} channels, but the input has {in_channels}")
        self.contiguous = contiguous
        self.patch_size = as_triple(patch_size, "patch_size")
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.max_channels = max_channels
        self.max_proj = nn.Linear(max_channels, dim) if max_channels else None

    def forward(self, x: torch.Tensor) -> TokenGrid:
        """(B, C, X, Y, Z) -> tokens (B, X/px · Y/py · Z/pz, dim)."""
        token_grid(tuple(x.shape[2:]), self.patch_size)  # clear error for sizes the patches do not tile
        features = self.proj(x)  # (B, dim, X', Y', Z')
        grid = tuple(features.shape[2:])
        tokens = features.flatten(2).transpose(1, 2)
        if self.max_proj is not None:
            peaks = F.max_pool3d(x[:, : self.max_channels], self.patch_size, self.patch_size)
            tokens = tokens + self.max_proj(peaks.flatten(2).transpose(1, 2))
        # contiguous: the transposed view makes the whole residual stream channel-major (elementwise ops
        # keep their first input's layout), so that every norm and matmul copies it again.
        return TokenGrid(tokens.contiguous() if self.contiguous else tokens, grid)  # type: ignore[arg-type]


def sincos_position_3d(grid: Grid, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """A fixed (N, dim) sine-cosine code of each token's (x, y, z) position; works for any grid size.

    Each axis gets ``2·(dim // 6)`` channels (sines and cosines of geometric frequencies); leftover
    channels stay zero.
    """
    per_axis = dim // 6
    code = torch.zeros(math.prod(grid), dim, device=device)
    if per_axis == 0:
        return code
    frequencies = 1.0 / (100.0 ** (torch.arange(per_axis, device=device) / per_axis))
    axes = torch.meshgrid(*(torch.arange(n, device=device, dtype=torch.float32) for n in grid), indexing="ij")
    for i, coordinate in enumerate(axes):
        angles = coordinate.reshape(-1, 1) * frequencies  # (N, per_axis)
        code[:, 2 * i * per_axis : (2 * i + 1) * per_axis] = torch.sin(angles)
        code[:, (2 * i + 1) * per_axis : (2 * i + 2) * per_axis] = torch.cos(angles)
    return code


def to_autocast_dtype(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the autocast dtype when autocast is on for its device (for ops autocast does not cover).

    The Monarch ops are custom autograd Functions, which autocast leaves in the dtype they get (float32
    after a LayerNorm); without this cast they would run in float32 while the other mixers run in bfloat16.
    """
    if torch.is_autocast_enabled(x.device.type):
        return x.to(torch.get_autocast_dtype(x.device.type))
    return x


class AutocastLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` that, under autocast, normalises in the autocast dtype instead of in float32.

    CUDA autocast runs layer_norm in float32: the bfloat16 residual stream would be upcast (a copy),
    normalised in float32, and cast back to bfloat16 by the next matmul (another copy), and the same again
    in the backward pass. PyTorch's 16-bit layer norm kernels already compute mean, variance and the
    normalisation in float32 internally, so normalising the bfloat16 tensor directly gives the same values
    up to the rounding of weight, bias and output to bfloat16, with a third of the memory traffic. Without
    autocast (CPU, float32/float64) it is exactly ``nn.LayerNorm``; parameters stay float32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if not torch.is_autocast_enabled(device):
            return super().forward(x)
        dtype = torch.get_autocast_dtype(device)
        weight = None if self.weight is None else self.weight.to(dtype)
        bias = None if self.bias is None else self.bias.to(dtype)
        with torch.autocast(device, enabled=False):
            return F.layer_norm(x.to(dtype), self.normalized_shape, weight, bias, self.eps)


class Mlp(nn.Module):
    """Two dense layers with GELU: dim -> hidden -> dim."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(x)))))


class TokenBackbone(nn.Module):
    """Patch embedding + position code + a stack of blocks ``block(x, grid)`` + final LayerNorm.

    Subclasses fill ``self.blocks``. ``set_grad_checkpointing(True)`` recomputes each block in the
    backward pass instead of keeping its activations (memory for time).

    ``patch_max``: the SUV channel (channel 0) also enters through its maximum over each patch
    (:class:`PatchEmbed3d`).

    ``lean_glue`` (BASED-3D, Monarch-3D): contiguous tokens (a token-major residual stream) and the
    position code built once. Off, as the ViT-SDPA baseline was measured: a channel-major residual
    stream and a position code built each step.
    """

    def __init__(
        self,
        in_channels: int,
        dim: int,
        patch_size: int | Sequence[int],
        lean_glue: bool = False,
        patch_max: bool = False,
    ) -> None:
        super().__init__()
        self.out_dim = dim
        self.lean_glue = lean_glue
        # patch_max: the SUV channel (the first) also enters through its maximum over each patch
        self.patch_embed = PatchEmbed3d(
            in_channels, dim, patch_size, contiguous=lean_glue, max_channels=1 if patch_max else 0
        )
        self.blocks = nn.ModuleList()
        self.norm = nn.LayerNorm(dim)
        self.grad_checkpointing = False

    def position_code(self, grid: Grid, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The fixed (N, dim) position code of ``grid``, built once per grid, device and dtype.

        A constant: building it every step took a dozen small launches. Not a buffer, so checkpoints
        and ``state_dict`` stay as they were.
        """
        key = (tuple(grid), str(device), dtype)
        cache = self.__dict__.setdefault("_position_codes", {})
        if key not in cache:
            # a normal tensor even when first built under inference_mode (validation before training)
            with torch.inference_mode(False), torch.no_grad():
                cache[key] = sincos_position_3d(grid, self.out_dim, device).to(dtype)
        return cache[key]

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute blocks in the backward pass (activation checkpointing)."""
        self.grad_checkpointing = enabled

    def forward(self, x: torch.Tensor) -> TokenGrid:
        """(B, C, X, Y, Z) volumes -> tokens (B, N, dim) on their grid."""
        tokens, grid = self.patch_embed(x)
        if self.lean_glue:
            tokens = tokens + self.position_code(grid, tokens.device, tokens.dtype)
        else:
            tokens = tokens + sincos_position_3d(grid, self.out_dim, tokens.device).to(tokens.dtype)
        for block in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, grid, use_reentrant=False)
            else:
                tokens = block(tokens, grid)
        return TokenGrid(self.norm(tokens), grid)
