"""The paired-exam model: prefix linear-attention fusion, batch independence, timepoint order."""

from __future__ import annotations

import doctest

import pytest
import torch

import kernels
from onconet.errors import ConfigError
from onconet.models import fusion
from onconet.models.backbones import create_backbone
from onconet.models.fusion import PairedResponseModel, PrefixLinearAttentionFusion

SIZE = (16, 16, 8)
SMALL = {
    "based3d": {"dim": 32, "depth": 1, "heads": 2, "feature_dim": 8, "patch_size": 4},
    "monarch3d": {"dim": 32, "depth": 1, "heads": 2, "nblocks": 4, "patch_size": 4},
    "vit_sdpa": {"dim": 32, "depth": 1, "heads": 2, "patch_size": 4},
    "densenet121": {"dim": 32, "init_features": 8, "growth_rate": 4, "block_config": (2, 2)},
}


def build(name: str) -> PairedResponseModel:
    torch.manual_seed(0)
    backbone = create_backbone(name, image_size=SIZE, **SMALL[name])
    return PairedResponseModel(backbone, fusion_heads=2, fusion_feature_dim=8, head_hidden=16)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_prediction_of_a_pair_does_not_depend_on_the_rest_of_the_batch(name: str) -> None:
    model = build(name).eval()
    torch.manual_seed(1)
    baseline, followup = torch.randn(4, 2, *SIZE), torch.randn(4, 2, *SIZE)
    with torch.no_grad():
        batched = model(baseline, followup)
        alone = torch.cat([model(baseline[i : i + 1], followup[i : i + 1]) for i in range(4)])
        reordered = model(baseline.flip(0), followup.flip(0)).flip(0)
    assert batched.shape == (4, 3)
    torch.testing.assert_close(alone, batched, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(reordered, batched, rtol=1e-4, atol=1e-5)


def test_follow_up_tokens_read_the_state_of_both_exams() -> None:
    # Slicing the follow-up rows out of one pass over baseline ⊕ follow-up must equal attention of the
    # follow-up queries over the keys and values of both exams, written out with the Taylor feature map.
    torch.manual_seed(0)
    layer = PrefixLinearAttentionFusion(dim=16, heads=2, feature_dim=4).double()
    base, follow = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 7, 16, dtype=torch.float64)
    out = layer(base, follow)

    sequence = layer.norm(torch.cat([base + layer.timepoint[0], follow + layer.timepoint[1]], dim=1))
    q, k = layer.qk(sequence).chunk(2, dim=-1)
    v = layer.v(sequence)
    expected_heads = []
    for h in range(2):
        phi_q = kernels.taylor_feature_map(q[:, 5:, 4 * h : 4 * h + 4])  # follow-up queries only
        phi_k = kernels.taylor_feature_map(k[..., 4 * h : 4 * h + 4])  # keys of both exams
        values = v[..., 8 * h : 8 * h + 8]
        weights = phi_q @ phi_k.transpose(1, 2)  # (B, Nf, Nb + Nf), all positive
        expected_heads.append((weights @ values) / (weights.sum(-1, keepdim=True) + 1e-6))
    expected = follow + layer.out(torch.cat(expected_heads, dim=-1))
    torch.testing.assert_close(out, expected)

    changed = layer(base + torch.randn_like(base), follow)
    assert not torch.allclose(changed, out)  # the baseline is read


def test_the_model_knows_which_exam_is_the_baseline() -> None:
    model = build("based3d").eval()
    torch.manual_seed(2)
    a, b = torch.randn(2, 2, *SIZE), torch.randn(2, 2, *SIZE)
    with torch.no_grad():
        assert not torch.allclose(model(a, b), model(b, a), atol=1e-4)


def test_gradients_reach_the_backbone_through_both_exams() -> None:
    model = build("based3d")
    baseline = torch.randn(2, 2, *SIZE, requires_grad=True)
    followup = torch.randn(2, 2, *SIZE, requires_grad=True)
    model(baseline, followup).logsumexp(dim=1).sum().backward()
    assert baseline.grad.abs().sum() > 0 and followup.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_exams_of_different_shapes_are_refused() -> None:
    model = build("vit_sdpa")
    with pytest.raises(ConfigError, match="one shape"):
        model(torch.randn(1, 2, *SIZE), torch.randn(1, 2, 16, 16, 16))


def test_docstring_example() -> None:
    result = doctest.testmod(fusion)
    assert result.attempted > 0 and result.failed == 0


def test_suvmax_head_predicts_one_value_per_exam_and_feeds_the_classifier() -> None:
    model = build("based3d").eval()
    torch.manual_seed(2)
    baseline, followup = torch.randn(3, 2, *SIZE), torch.randn(3, 2, *SIZE)
    logits, suvmax = model.forward_with_suvmax(baseline, followup)
    assert logits.shape == (3, 3) and suvmax.shape == (3, 2)
    with torch.no_grad():  # column 0 is the baseline's prediction, column 1 the follow-up's
        swapped = model.forward_with_suvmax(followup, baseline)[1]
    torch.testing.assert_close(swapped, suvmax.flip(1).detach(), rtol=1e-4, atol=1e-5)
    features, _ = model.pair_features(baseline, followup)
    width = model.backbone.out_dim
    torch.testing.assert_close(features[:, 3 * width : 3 * width + 2], suvmax.detach())
    torch.testing.assert_close(features[:, -1], (suvmax[:, 1] - suvmax[:, 0]).detach())
    logits.sum().backward()  # the classifier's gradient reaches the SUVmax head through its features
    assert model.suvmax_head.score.weight.grad.abs().sum() > 0 and model.suvmax_head.scale.grad != 0


def test_without_the_suvmax_head_the_features_are_the_pooled_tokens_only() -> None:
    torch.manual_seed(0)
    backbone = create_backbone("based3d", image_size=SIZE, **SMALL["based3d"])
    model = PairedResponseModel(backbone, fusion_heads=2, fusion_feature_dim=8, suvmax_head=False)
    features, suvmax = model.pair_features(torch.randn(2, 2, *SIZE), torch.randn(2, 2, *SIZE))
    assert suvmax is None and features.shape == (2, 3 * backbone.out_dim)


def naive_local_change(baseline: torch.Tensor, followup: torch.Tensor, grid, window: int) -> torch.Tensor:
    """local_change_pool by loops over positions and neighbours (borders clamped)."""
    sizes, half = grid, window // 2
    batch, _, dim = baseline.shape
    b, f = baseline.reshape(batch, *sizes, dim), followup.reshape(batch, *sizes, dim)

    def excess(a: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        best = torch.full((batch, dim), -torch.inf, dtype=a.dtype)
        for x in range(sizes[0]):
            for y in range(sizes[1]):
                for z in range(sizes[2]):
                    near = other[
                        :,
                        max(0, x - half) : x + half + 1,
                        max(0, y - half) : y + half + 1,
                        max(0, z - half) : z + half + 1,
                    ].amax(dim=(1, 2, 3))
                    best = torch.maximum(best, a[:, x, y, z] - near)
        return best

    return torch.cat([excess(f, b), excess(b, f)], dim=-1)


@pytest.mark.parametrize("window", [1, 3, 5])
def test_local_change_pool_matches_the_loops(window: int) -> None:
    generator = torch.Generator().manual_seed(window)
    grid = (3, 4, 5)
    baseline = torch.randn(2, 60, 3, generator=generator, dtype=torch.float64)
    followup = torch.randn(2, 60, 3, generator=generator, dtype=torch.float64)
    expected = naive_local_change(baseline, followup, grid, window)
    torch.testing.assert_close(fusion.local_change_pool(baseline, followup, grid, window), expected)


def test_local_change_pool_ignores_a_shift_and_sees_a_new_lesion() -> None:
    generator = torch.Generator().manual_seed(0)
    grid = (6, 5, 4)
    baseline = torch.rand(1, *grid, 2, generator=generator)
    followup = torch.cat([baseline[:, :1], baseline[:, :-1]], dim=1)  # moved one token along x
    flat = [t.reshape(1, -1, 2) for t in (baseline, followup)]
    assert torch.all(fusion.local_change_pool(*flat, grid, window=3)[:, :2] <= 0)  # nothing new
    followup[0, 3, 2, 1, 1] = 4.0  # a new lesion in channel 1
    flat[1] = followup.reshape(1, -1, 2)
    new = fusion.local_change_pool(*flat, grid, window=3)[0, :2]
    assert new[0] <= 0 and new[1] > 2.9  # 4 minus at most the baseline's largest value (< 1)


def test_local_change_features_join_the_classifier() -> None:
    torch.manual_seed(0)
    backbone = create_backbone("based3d", image_size=SIZE, **SMALL["based3d"])
    model = PairedResponseModel(backbone, fusion_heads=2, fusion_feature_dim=8, local_change_window=3)
    baseline, followup = torch.randn(2, 2, *SIZE), torch.randn(2, 2, *SIZE)
    features, _ = model.pair_features(baseline, followup)
    assert features.shape == (2, 5 * backbone.out_dim + 3)
    model(baseline, followup).sum().backward()
    assert backbone.patch_embed.proj.weight.grad.abs().sum() > 0
    for bad in (2, -1):
        with pytest.raises(ConfigError, match="local_change_window"):
            PairedResponseModel(backbone, local_change_window=bad)
