"""Backbones on the CPU (kernels' PyTorch references): shapes, gradient flow, global mixing, registry."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

from onconet.errors import ConfigError
from onconet.models.backbones import create_backbone, list_backbones

SIZE = (16, 16, 8)
SMALL = {
    "based3d": {"dim": 32, "depth": 2, "heads": 2, "feature_dim": 8, "window": 3, "patch_size": 4},
    "monarch3d": {"dim": 32, "depth": 2, "heads": 2, "nblocks": 4, "patch_size": 4},
    "vit_sdpa": {"dim": 32, "depth": 2, "heads": 2, "patch_size": 4},
    "densenet121": {"dim": 32, "init_features": 8, "growth_rate": 4, "block_config": (2, 2)},
}
#: token grid of a SIZE volume: 4³ patches, or DenseNet's /8 with two dense blocks
GRIDS = {"based3d": (4, 4, 2), "monarch3d": (4, 4, 2), "vit_sdpa": (4, 4, 2), "densenet121": (2, 2, 1)}


def build(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_backbone(name, in_channels=2, image_size=SIZE, **{**SMALL[name], **overrides})


def test_registry_lists_the_four_backbones() -> None:
    assert list_backbones() == ["based3d", "densenet121", "monarch3d", "vit_sdpa"]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_output_shape_and_grid(name: str) -> None:
    net = build(name)
    out = net(torch.randn(3, 2, *SIZE))
    n_tokens = GRIDS[name][0] * GRIDS[name][1] * GRIDS[name][2]
    assert out.grid == GRIDS[name]
    assert out.tokens.shape == (3, n_tokens, net.out_dim) == (3, n_tokens, 32)
    assert torch.isfinite(out.tokens).all()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_gradients_reach_every_parameter_and_the_input(name: str) -> None:
    net = build(name)
    x = torch.randn(2, 2, *SIZE, requires_grad=True)
    tokens = net(x).tokens
    (tokens * torch.randn_like(tokens)).sum().backward()
    for param_name, param in net.named_parameters():
        assert param.grad is not None, f"{name}: no gradient for {param_name}"
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, f"{name}: zero gradient for {param_name}"
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["based3d", "monarch3d", "vit_sdpa"])
def test_global_mixers_carry_information_across_the_whole_volume(name: str) -> None:
    # Change one corner patch: the token of the opposite corner must change (global sequence mixing).
    # With the local window of 3 alone, BASED-3D could not reach 3 patches away in one block.
    net = build(name, depth=1).eval()
    x = torch.randn(1, 2, *SIZE)
    x_changed = x.clone()
    x_changed[..., :4, :4, :4] += 5.0
    with torch.no_grad():
        far = net(x).tokens[0, -1], net(x_changed).tokens[0, -1]
    assert not torch.allclose(*far, atol=1e-6)


def test_based3d_local_window_shrinks_to_fit_a_small_grid() -> None:
    net = create_backbone("based3d", image_size=(8, 8, 4), dim=16, depth=1, heads=2, window=(5, 5, 3))
    assert net.blocks[0].local_mixer.fitted_window((2, 2, 1)) == (1, 1, 1)
    assert net(torch.randn(1, 2, 8, 8, 4)).tokens.shape == (1, 4, 16)


@pytest.mark.parametrize("name", ["based3d", "monarch3d", "densenet121"])
def test_gradient_checkpointing_gives_the_same_gradients(name: str) -> None:
    x = torch.randn(2, 2, *SIZE)
    grads = []
    for enabled in (False, True):
        net = build(name)
        net.set_grad_checkpointing(enabled)
        net(x).tokens.square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_monarch3d_refuses_a_grid_it_was_not_built_for() -> None:
    net = build("monarch3d")
    with pytest.raises(ConfigError, match="token grid"):
        net(torch.randn(1, 2, 16, 16, 16))


def test_unknown_backbone_and_unknown_option_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'resnet'"):
        create_backbone("resnet")
    with pytest.raises(ConfigError, match="does not take depht"):
        create_backbone("vit_sdpa", image_size=SIZE, depht=2)


@pytest.mark.parametrize(
    ("name", "size", "message"),
    [("vit_sdpa", (18, 16, 16), "multiple of the patch size"), ("densenet121", (20, 16, 16), "downsamples")],
)
def test_image_sizes_the_backbone_cannot_take_fail_at_build_time(name: str, size, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_backbone(name, image_size=size, **SMALL[name])


@pytest.mark.parametrize(
    "module",
    [
        "onconet.models.backbones",
        "onconet.models.backbones.registry",
        "onconet.models.backbones.layers",
        "onconet.models.backbones.based3d",
        "onconet.models.backbones.monarch3d",
        "onconet.models.backbones.baselines",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def _peak_and_spread(value: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two volumes whose SUV channel has the same sum in patch 0: one hot voxel, or that sum spread out."""
    peak, spread = torch.zeros(1, 2, *SIZE), torch.zeros(1, 2, *SIZE)
    peak[0, 0, 1, 2, 3] = value
    spread[0, 0, :4, :4, :4] = value / 64
    return peak, spread


def test_patch_embedding_sees_the_patch_maximum_only_with_patch_max() -> None:
    from onconet.models.backbones.layers import PatchEmbed3d

    peak, spread = _peak_and_spread()
    plain, with_max = PatchEmbed3d(2, 8, 4), PatchEmbed3d(2, 8, 4, max_channels=1)
    for embed in (plain, with_max):
        with torch.no_grad():  # an averaging convolution: blind to where in the patch the SUV lies
            embed.proj.weight.fill_(1 / 64)
    torch.testing.assert_close(plain(peak).tokens, plain(spread).tokens)
    difference = with_max(peak).tokens - with_max(spread).tokens
    # only the first token moves, by the learned map of the maximum's change (8 - 1/8)
    expected = with_max.max_proj.weight[:, 0].detach() * (8.0 - 8.0 / 64)
    torch.testing.assert_close(difference[0, 0], expected)
    assert difference[0, 1:].abs().max() == 0


@pytest.mark.parametrize("name", ["based3d", "monarch3d", "vit_sdpa"])
def test_patch_max_option_reaches_the_tokens_and_trains(name: str) -> None:
    net = build(name, patch_max=True)
    assert net.patch_embed.max_channels == 1
    peak, _ = _peak_and_spread()
    tokens = net(peak).tokens
    (tokens * torch.randn_like(tokens)).sum().backward()
    assert net.patch_embed.max_proj.weight.grad.abs().sum() > 0
    with torch.no_grad():  # the same network without its patch-maximum path
        net.patch_embed.max_proj.weight.zero_()
        net.patch_embed.max_proj.bias.zero_()
        assert (net(peak).tokens - tokens).abs().max() > 1e-3


def test_patch_max_on_more_channels_than_the_input_is_a_config_error() -> None:
    from onconet.models.backbones.layers import PatchEmbed3d

    with pytest.raises(ConfigError, match="patch maximum of 3 channels"):
        PatchEmbed3d(2, 8, 4, max_channels=3)
