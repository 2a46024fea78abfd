"""The paired-exam response model: a siamese backbone, JRT-style prefix fusion, difference pooling, a head.

One backbone (shared weights) turns the baseline and the follow-up exam into tokens. The fusion then
runs non-causal Taylor linear attention over the concatenation baseline ⊕ follow-up and keeps the
follow-up positions: every follow-up token reads the linear-attention state built from the tokens of
both exams (JRT's prefix linear attention, with the baseline as the prefix). A learned timepoint
embedding tells the two exams apart. Next to it, difference pooling compares the exams directly (mean
and max over tokens, follow-up minus baseline; the max is the model's analogue of SUVmax). A small MLP
maps the pooled features to three logits in the order of ``onconet.classes.RESPONSE_CLASSES``.

Example:
    >>> import torch
    >>> from onconet.models.backbones import create_backbone
    >>> model = PairedResponseModel(create_backbone("based3d", image_size=16, dim=32, depth=1, heads=2))
    >>> baseline, followup = torch.randn(2, 2, 16, 16, 16), torch.randn(2, 2, 16, 16, 16)
    >>> model(baseline, followup).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import torch
from torch import nn

import kernels
from onconet.classes import RESPONSE_CLASSES
from onconet.errors import ConfigError
from onconet.models.backbones.based3d import merge_heads, split_heads


class PrefixLinearAttentionFusion(nn.Module):
    """Follow-up tokens attend (Taylor linear attention) to the keys and values of baseline ⊕ follow-up.

    Args:
        dim: token width.
        heads: attention heads (dim / heads ≤ 128).
        feature_dim: q/k width per head (≤ 16).
    """

    def __init__(self, dim: int, heads: int = 4, feature_dim: int = 16) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"fusion: token width {dim} must be a multiple of model.fusion_heads={heads}")
        self.heads = heads
        self.timepoint = nn.Parameter(torch.randn(2, dim) * 0.02)  # baseline, follow-up
        self.norm = nn.LayerNorm(dim)
        self.qk = nn.Linear(dim, 2 * heads * feature_dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, baseline: torch.Tensor, followup: torch.Tensor) -> torch.Tensor:
        """(B, Nb, D), (B, Nf, D) tokens -> (B, Nf, D) fused follow-up tokens (residual)."""
        sequence = torch.cat([baseline + self.timepoint[0], followup + self.timepoint[1]], dim=1)
        sequence = self.norm(sequence)
        q, k = (split_heads(t, self.heads) for t in self.qk(sequence).chunk(2, dim=-1))
        v = split_heads(self.v(sequence), self.heads).to(q.dtype)
        # One non-causal pass over the whole sequence; only the follow-up queries are kept. Their outputs
        # equal attending to the prefix + follow-up keys, since every query sees the same summed state.
        mixed = kernels.taylor_linear_attention(q, k, v)[:, :, baseline.shape[1] :]
        return followup + self.out(merge_heads(mixed))


class PairedResponseModel(nn.Module):
    """Siamese backbone + prefix-linear-attention fusion + difference pooling + 3-class head.

    Args:
        backbone: a backbone from :func:`onconet.models.backbones.create_backbone` (``out_dim`` attribute,
            returns :class:`~onconet.models.backbones.TokenGrid`).
        num_classes: logits (3: response, stable, progression).
        fusion_heads: heads of the fusion attention.
        fusion_feature_dim: q/k width per fusion head (≤ 16).
        head_hidden: hidden width of the classification MLP.
        dropout: dropout before and inside the head.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = len(RESPONSE_CLASSES),
        fusion_heads: int = 4,
        fusion_feature_dim: int = 16,
        head_hidden: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        dim = backbone.out_dim
        self.fusion = PrefixLinearAttentionFusion(dim, fusion_heads, fusion_feature_dim)
        self.head = nn.Sequential(
            nn.LayerNorm(3 * dim),
            nn.Dropout(dropout),
            nn.Linear(3 * dim, head_hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, num_classes),
        )

    def pair_features(self, baseline: torch.Tensor, followup: torch.Tensor) -> torch.Tensor:
        """(B, C, X, Y, Z) exams -> (B, 3·dim): fused follow-up mean, mean difference, max difference."""
        if baseline.shape != followup.shape:
            raise ConfigError(
                f"baseline {tuple(baseline.shape)} and follow-up {tuple(followup.shape)} volumes must have "
                "one shape; crop or pad both to data.spatial_size"
            )
        # One pass over both exams with the shared weights: the same as two calls for batch-independent
        # backbones (and for BatchNorm in eval mode).
        tokens = self.backbone(torch.cat([baseline, followup])).tokens
        base_tokens, follow_tokens = tokens.chunk(2)
        fused = self.fusion(base_tokens, follow_tokens)
        return torch.cat(
            [
                fused.mean(dim=1),
                follow_tokens.mean(dim=1) - base_tokens.mean(dim=1),
                follow_tokens.amax(dim=1) - base_tokens.amax(dim=1),
            ],
            dim=-1,
        )

    def forward(self, baseline: torch.Tensor, followup: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) for pairs of exams (B, C, X, Y, Z)."""
        return self.head(self.pair_features(baseline, followup))
