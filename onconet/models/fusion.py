"""The paired-exam response model: a siamese backbone, JRT-style prefix fusion, difference pooling, a head.

One backbone (shared weights) turns the baseline and the follow-up exam into tokens. The fusion then
runs non-causal Taylor linear attention over the concatenation baseline ⊕ follow-up and keeps the
follow-up positions: every follow-up token reads the linear-attention state built from the tokens of
both exams (JRT's prefix linear attention, with the baseline as the prefix). A learned timepoint
embedding tells the two exams apart. Next to it, difference pooling compares the exams directly (mean
and max over tokens, follow-up minus baseline; the max is the model's analogue of SUVmax). With
``suvmax_head`` (the default), a small head reads each exam's pooled tokens and predicts log(1 + SUVmax of
the exam's hottest lesion): the quantity the reports state and the response criteria are computed from
(DESIGN.md), trained against the values the report parser extracts (an auxiliary loss in
:mod:`onconet.models.module`). The two predictions and their difference join the pooled features, so the
classifier can follow the clinical rule (the change of the hottest lesion) directly. With
``local_change_window``, local change pooling (:func:`local_change_pool`) adds what appeared or vanished
somewhere between the exams, tolerant of a small misregistration: a new lesion that is not the hottest
changes neither the mean nor the max of the tokens. A small MLP maps the pooled features to three logits
in the order of ``onconet.classes.RESPONSE_CLASSES``.

Example:
    >>> import torch
    >>> from onconet.models.backbones import create_backbone
    >>> model = PairedResponseModel(create_backbone("based3d", image_size=16, dim=32, depth=1, heads=2))
    >>> baseline, followup = torch.randn(2, 2, 16, 16, 16), torch.randn(2, 2, 16, 16, 16)
    >>> model(baseline, followup).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from onconet.classes import RESPONSE_CLASSES
from onconet.errors import ConfigError
from onconet.models.backbones.based3d import merge_heads, split_heads


def check_local_change_window(window: int) -> None:
    """Raise ConfigError unless ``window`` is a positive odd number of tokens."""
    if window < 1 or window % 2 == 0:
        raise ConfigError(f"model.local_change_window must be 0 (off) or a positive odd number, got {window}")


def local_change_pool(
    baseline: torch.Tensor, followup: torch.Tensor, grid: tuple[int, int, int], window: int
) -> torch.Tensor:
    """What appeared and what vanished between two exams' tokens, allowing for misregistration.

    For each channel, ``new`` is the largest excess of a follow-up token over the maximum of the baseline
    tokens within a ``window``³ neighbourhood of its position, and ``gone`` the same with the exams
    swapped. An unchanged structure moved by up to ``window // 2`` tokens contributes nothing; a lesion
    present in one exam only contributes its full value, however small it is against the hottest one.

    Args:
        baseline, followup: (B, N, D) tokens on ``grid`` (row-major, z fastest).
        grid: the token grid (X, Y, Z), X·Y·Z = N.
        window: odd neighbourhood size in tokens (1: token by token).

    Returns:
        (B, 2·D): ``new`` then ``gone``.

    Example:
        >>> base = torch.zeros(1, 125, 1); base[0, 62] = 5.0  # a lesion at the centre of a 5x5x5 grid
        >>> follow = torch.zeros(1, 125, 1); follow[0, 63] = 5.0  # the same, one token further along z
        >>> follow[0, 0] = 3.0  # and a new, cooler lesion in a corner
        >>> local_change_pool(base, follow, (5, 5, 5), window=3).tolist()
        [[3.0, 0.0]]
        >>> local_change_pool(base, follow, (5, 5, 5), window=1).tolist()  # no tolerance: all is change
        [[5.0, 5.0]]
    """
    check_local_change_window(window)
    batch, _, dim = baseline.shape
    volumes = [t.transpose(1, 2).reshape(batch, dim, *grid) for t in (baseline, followup)]
    nearby = [F.max_pool3d(v, window, stride=1, padding=window // 2) for v in volumes]
    new = (volumes[1] - nearby[0]).amax(dim=(2, 3, 4))
    gone = (volumes[0] - nearby[1]).amax(dim=(2, 3, 4))
    return torch.cat([new, gone], dim=-1)


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


class ExamSuvmaxHead(nn.Module):
    """An exam's tokens and SUV channel -> (B,) predicted log(1 + SUVmax of its hottest lesion).

    Each token scores how lesion-like its patch is; the softmax of the scores over the exam weighs the
    patches' highest SUV-channel values (the SUV channel max-pooled onto the token grid). The prediction
    is the SUV the model reads at the lesions it finds, as a reader does: the backbone only has to find
    the lesion, the value comes from the image, which a normalised token can only carry approximately.
    A learned affine map turns the SUV channel's scale (``log1p(SUV) / log1p(suv_max)``) into log(1 + SUV).

    Example:
        >>> head = ExamSuvmaxHead(8)
        >>> head(torch.randn(2, 4 * 4 * 2, 8), (4, 4, 2), torch.rand(2, 1, 16, 16, 8)).shape
        torch.Size([2])
    """

    def __init__(self, dim: int, scale: float = math.log1p(20.0)) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.shift = nn.Parameter(torch.tensor(0.0))

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int, int], suv: torch.Tensor) -> torch.Tensor:
        """(B, N, D) tokens on ``grid``, (B, 1, X, Y, Z) SUV channel -> (B,)."""
        patch_max = F.adaptive_max_pool3d(suv.float(), grid).flatten(1)  # token order: x, y, z
        weights = torch.softmax(self.score(tokens).squeeze(-1).float(), dim=1)
        return self.scale * (weights * patch_max).sum(dim=1) + self.shift


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
        suvmax_head: predict each exam's log(1 + hottest-lesion SUVmax) and feed it to the classifier.
        local_change_window: with an odd size (in tokens), also pool what appeared and what vanished
            between the exams (:func:`local_change_pool`); 0: off.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = len(RESPONSE_CLASSES),
        fusion_heads: int = 4,
        fusion_feature_dim: int = 16,
        head_hidden: int = 128,
        dropout: float = 0.1,
        suvmax_head: bool = True,
        local_change_window: int = 0,
    ) -> None:
        super().__init__()
        if local_change_window:
            check_local_change_window(local_change_window)
        self.backbone = backbone
        self.local_change_window = local_change_window
        dim = backbone.out_dim
        self.fusion = PrefixLinearAttentionFusion(dim, fusion_heads, fusion_feature_dim)
        self.suvmax_head = ExamSuvmaxHead(dim) if suvmax_head else None
        features = (5 if local_change_window else 3) * dim + (3 if suvmax_head else 0)
        self.head = nn.Sequential(
            nn.LayerNorm(features),
            nn.Dropout(dropout),
            nn.Linear(features, head_hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, num_classes),
        )

    def pair_features(
        self, baseline: torch.Tensor, followup: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, X, Y, Z) exams -> the classifier's (B, F) features and the (B, 2) SUVmax predictions.

        Features: fused follow-up mean, mean difference, max difference (each of the token width), with
        ``local_change_window`` the new and gone features of :func:`local_change_pool`, then, with the
        SUVmax head, the predicted log(1 + SUVmax) of baseline and follow-up and their difference.
        The SUVmax predictions are ``None`` without the head.
        """
        if baseline.shape != followup.shape:
            raise ConfigError(
                f"baseline {tuple(baseline.shape)} and follow-up {tuple(followup.shape)} volumes must have "
                "one shape; crop or pad both to data.spatial_size"
            )
        # One pass over both exams with the shared weights: the same as two calls for batch-independent
        # backbones (and for BatchNorm in eval mode).
        volumes = torch.cat([baseline, followup])
        tokens, grid = self.backbone(volumes)
        base_tokens, follow_tokens = tokens.chunk(2)
        fused = self.fusion(base_tokens, follow_tokens)
        features = [
            fused.mean(dim=1),
            follow_tokens.mean(dim=1) - base_tokens.mean(dim=1),
            follow_tokens.amax(dim=1) - base_tokens.amax(dim=1),
        ]
        if self.local_change_window:
            features.append(local_change_pool(base_tokens, follow_tokens, grid, self.local_change_window))
        if self.suvmax_head is None:
            return torch.cat(features, dim=-1), None
        suvmax = self.suvmax_head(tokens, grid, volumes[:, :1]).view(2, -1).T  # (B, 2): baseline, follow-up
        change = (suvmax[:, 1] - suvmax[:, 0]).unsqueeze(-1)
        return torch.cat(
            [*features, suvmax.to(features[0].dtype), change.to(features[0].dtype)], dim=-1
        ), suvmax

    def forward_with_suvmax(
        self, baseline: torch.Tensor, followup: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, num_classes) and the predicted log(1 + SUVmax) (B, 2) of each exam (or ``None``)."""
        features, suvmax = self.pair_features(baseline, followup)
        return self.head(features), suvmax

    def forward(self, baseline: torch.Tensor, followup: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) for pairs of exams (B, C, X, Y, Z)."""
        return self.forward_with_suvmax(baseline, followup)[0]
