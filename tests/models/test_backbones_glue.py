"""The backbones' leaner glue computes what the plain formulation computed.

BASED-3D and Monarch-3D blocks route their heads through custom autograd Functions (packed projections,
gated heads) and normalise with :class:`AutocastLayerNorm`. Here each block is compared, in float64, with
the straightforward formulation it replaced (split/chunk/stack/sigmoid and ``nn.LayerNorm``): outputs,
input gradients and parameter gradients. The Functions pass ``gradcheck``, also when only some of their
outputs are used, and the op counter of ``benchmarks/profile_step.py`` shows the glue that was removed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import kernels
from onconet.models.backbones.based3d import Based3dBlock, merge_heads, packed_heads, split_heads
from onconet.models.backbones.layers import AutocastLayerNorm, to_autocast_dtype
from onconet.models.backbones.monarch3d import Monarch3dBlock, _GatedHeads, _GateMerge

REPO_ROOT = Path(__file__).resolve().parents[2]
GRID = (4, 4, 2)


def plain_layer_norm(norm: torch.nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def plain_based3d_block(block: Based3dBlock, x: torch.Tensor, grid) -> torch.Tensor:
    """The block as written before: two projections for the Taylor mixer, chunk + split_heads."""
    glob, local = block.global_mixer, block.local_mixer
    h = plain_layer_norm(block.norm_global, x)
    q, k = (split_heads(t, glob.heads) for t in glob.qk(h).chunk(2, dim=-1))
    v = split_heads(glob.v(h), glob.heads)
    x = x + glob.out(merge_heads(kernels.taylor_linear_attention(q, k, v, eps=glob.eps)))
    h = plain_layer_norm(block.norm_local, x)
    q, k, v = (split_heads(t, local.heads) for t in local.qkv(h).chunk(3, dim=-1))
    window = local.fitted_window(grid)
    x = x + local.out(merge_heads(kernels.local_attention_3d(q, k, v, grid=grid, window=window)))
    return x + block.mlp(plain_layer_norm(block.norm_mlp, x))


def plain_monarch3d_block(block: Monarch3dBlock, x: torch.Tensor, grid) -> torch.Tensor:
    """The block as written before: per-head select + contiguous, stack, sigmoid gate."""
    mixer = block.mixer
    h = plain_layer_norm(block.norm_mix, x)
    batch, n, dim = h.shape
    u, gate = mixer.proj_in(to_autocast_dtype(h)).chunk(2, dim=-1)
    u = u.reshape(batch, *grid, mixer.heads, dim // mixer.heads)
    weights = [[w[i].to(u.dtype) for w in (mixer.w_x, mixer.w_y, mixer.w_z)] for i in range(mixer.heads)]
    mixed = [kernels.monarch_mix_3d(u[..., i, :].contiguous(), *w) for i, w in enumerate(weights)]
    mixed = torch.stack(mixed, dim=-2).reshape(batch, n, dim)
    x = x + mixer.proj_out(mixed * torch.sigmoid(gate))
    return x + block.mlp(plain_layer_norm(block.norm_mlp, x))


def outputs_and_gradients(block: torch.nn.Module, forward, x: torch.Tensor):
    block.zero_grad()
    x = x.detach().requires_grad_(True)
    y = forward(x)
    weights = torch.linspace(-1.0, 1.0, y.numel(), dtype=y.dtype, device=y.device).reshape(y.shape)
    (y * weights).sum().backward()
    return y.detach(), x.grad, {name: p.grad.clone() for name, p in block.named_parameters()}


@pytest.mark.parametrize(
    ("name", "build", "plain"),
    [
        ("based3d", lambda: Based3dBlock(32, 2, 8, (3, 3, 3), 2.0, 0.0), plain_based3d_block),
        ("monarch3d", lambda: Monarch3dBlock(32, GRID, 2, 4, 2.0, 0.0), plain_monarch3d_block),
    ],
)
def test_block_equals_the_plain_formulation_in_float64(name: str, build, plain) -> None:
    torch.manual_seed(0)
    block = build().double()
    x = torch.randn(2, 32, 32, dtype=torch.float64)
    new = outputs_and_gradients(block, lambda t: block(t, GRID), x)
    old = outputs_and_gradients(block, lambda t: plain(block, t, GRID), x)
    torch.testing.assert_close(new[0], old[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(new[1], old[1], rtol=1e-12, atol=1e-12)
    assert new[2].keys() == old[2].keys()
    for param in new[2]:
        torch.testing.assert_close(new[2][param], old[2][param], rtol=1e-12, atol=1e-12, msg=param)
        assert new[2][param].abs().sum() > 0, f"{name}: no gradient reaches {param}"


@pytest.mark.parametrize("copy", [False, True])
def test_packed_heads_values_and_gradients(copy: bool) -> None:
    torch.manual_seed(0)
    packed = torch.randn(2, 5, 4 + 4 + 6, dtype=torch.float64, requires_grad=True)
    parts = packed_heads(packed, (4, 4, 6), 2, copy=copy)
    expected = [split_heads(t, 2) for t in packed.split((4, 4, 6), dim=-1)]
    for part, reference in zip(parts, expected, strict=True):
        torch.testing.assert_close(part, reference, rtol=0, atol=0)
        if copy:
            assert part.is_contiguous()
        else:  # a view into the packed projections: no copy
            assert part.untyped_storage().data_ptr() == packed.untyped_storage().data_ptr()
    assert torch.autograd.gradcheck(lambda t: packed_heads(t, (4, 4, 6), 2, copy=copy), (packed,))
    # an unused part gets a zero gradient (the packed gradient is allocated uninitialised)
    assert torch.autograd.gradcheck(lambda t: packed_heads(t, (4, 4, 6), 2, copy=copy)[1], (packed,))


def test_gated_heads_and_gate_merge_values_and_gradients() -> None:
    torch.manual_seed(0)
    packed = torch.randn(2, 5, 2 * 6, dtype=torch.float64, requires_grad=True)
    *heads, gate = _GatedHeads.apply(packed, 3)
    u, g = packed.split(6, dim=-1)
    for h, head in enumerate(heads):
        assert head.is_contiguous()
        torch.testing.assert_close(head, u[..., 2 * h : 2 * h + 2], rtol=0, atol=0)
    torch.testing.assert_close(gate, torch.sigmoid(g), rtol=0, atol=0)
    mixed = [torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    merged = _GateMerge.apply(gate, *mixed)
    torch.testing.assert_close(merged, torch.cat(mixed, dim=-1) * gate, rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda t: _GatedHeads.apply(t, 3), (packed,))
    assert torch.autograd.gradcheck(lambda t: _GatedHeads.apply(t, 3)[0], (packed,))  # gate unused
    assert torch.autograd.gradcheck(lambda t: _GatedHeads.apply(t, 3)[-1], (packed,))  # heads unused
    gate_in = torch.rand(2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, *m: _GateMerge.apply(s, *m), (gate_in, *mixed))


def test_autocast_layer_norm_is_layer_norm_without_autocast_and_bf16_under_it() -> None:
    torch.manual_seed(0)
    norm = AutocastLayerNorm(16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(3, 7, 16) * 3 + 1
    torch.testing.assert_close(norm(x), plain_layer_norm(norm, x), rtol=0, atol=0)
    x16 = x.to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = norm(x16)
    assert out.dtype == torch.bfloat16
    # the statistics come from the same bf16 values, computed in float32: only the rounding differs
    reference = plain_layer_norm(norm, x16.detach().float())
    torch.testing.assert_close(out.float(), reference, rtol=2e-2, atol=2e-2)
    out.float().square().sum().backward()
    assert norm.weight.grad is not None and norm.weight.grad.dtype == torch.float32
    assert x16.grad is not None and torch.isfinite(x16.grad).all()


def _load_profile_step():
    spec = importlib.util.spec_from_file_location(
        "profile_step", REPO_ROOT / "benchmarks" / "profile_step.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_glue_counter_sees_the_copies_the_plain_formulation_makes() -> None:
    # The counter that benchmarks/profile_step.py --count uses: the plain Monarch block's per-head
    # selects leave select_backward (full-size zero tensors) and a cat of the u and gate gradients, and
    # it stacks the heads; the block does none of these (its only stacks are the axis-matrix gradients).
    counter_class = _load_profile_step().GlueCounter
    torch.manual_seed(0)
    block = Monarch3dBlock(32, GRID, 2, 4, 2.0, 0.0)
    x = torch.randn(2, 32, 32, requires_grad=True)
    counters = {}
    for label, forward in (("plain", lambda t: plain_monarch3d_block(block, t, GRID)), ("block", None)):
        block.zero_grad()
        counters[label] = counter = counter_class()
        with counter:
            y = forward(x) if forward else block(x, GRID)
            y.square().sum().backward()
    plain, new = counters["plain"], counters["block"]
    assert plain.calls["select_backward"] > 0 and plain.calls["cat"] > 0
    assert plain.bytes["stack"] >= 2 * x.numel() * x.element_size()  # the mixed heads, read and written
    assert "select_backward" not in new.calls and "cat" not in new.calls
    assert new.bytes["stack"] < x.numel() * x.element_size() // 4


COUNT_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("profile_step", "benchmarks/profile_step.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
for backbone in ("based3d", "monarch3d"):
    module.main(["--backbone", backbone, "--size", "32", "--count"])
"""


def test_count_mode_runs_the_gpu_path_glue_without_a_gpu() -> None:
    # A fresh process: --count switches Triton's interpreter on and skips the kernel launches.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", COUNT_SCRIPT]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [s["backbone"] for s in summaries] == ["based3d", "monarch3d"]
    for summary in summaries:
        # Before the glue was cut: 167,700 (BASED-3D) and 141,388 (Monarch-3D) bytes per token at 32³,
        # with 152 and 312 casts; after: 94,397 and 90,052.
        assert summary["glue_bytes_per_token"] < 110_000, summary
        assert summary["calls"] > 100, summary


def test_position_code_is_built_once_and_trains_after_an_inference_mode_call() -> None:
    from onconet.models.backbones import create_backbone
    from onconet.models.backbones.layers import sincos_position_3d

    net = create_backbone("based3d", image_size=16, dim=32, depth=1, heads=2, feature_dim=8)
    x = torch.randn(2, 2, 16, 16, 16)
    with torch.inference_mode():  # e.g. Lightning's sanity-check validation before the first step
        first = net(x).tokens
    code = net.position_code((4, 4, 4), x.device, x.dtype)
    assert net.position_code((4, 4, 4), x.device, x.dtype) is code
    assert not torch.is_inference(code)
    torch.testing.assert_close(code, sincos_position_3d((4, 4, 4), 32), rtol=0, atol=0)
    tokens = net(x).tokens
    tokens.square().sum().backward()
    torch.testing.assert_close(tokens.detach(), first, rtol=0, atol=0)
    assert net.patch_embed.proj.weight.grad.abs().sum() > 0
    assert not any("position" in key for key in net.state_dict())


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("based3d", {"dim": 32, "depth": 2, "heads": 2, "feature_dim": 8}),
        ("monarch3d", {"dim": 32, "depth": 2, "heads": 2, "nblocks": 4}),
    ],
)
def test_residual_stream_is_token_major(name: str, options: dict) -> None:
    # The patch embedding's (B, dim, N) output transposed is channel-major; every block must see
    # contiguous (B, N, dim) tokens, or each add runs strided and each norm copies its input.
    from onconet.models.backbones import create_backbone

    net = create_backbone(name, image_size=16, **options)
    seen = []
    for block in net.blocks:
        block.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    net(torch.randn(2, 2, 16, 16, 16))
    assert seen == [True, True]


def compare_with_the_plain_formulation(build, plain, device: str) -> None:
    """Float32: outputs and gradients to summation order. bf16 autocast: to bf16 rounding (outputs by
    their largest value; gradients by direction, as bias gradients are sums that largely cancel)."""
    torch.manual_seed(0)
    block, grid = build().to(device), (8, 8, 8)
    x = torch.randn(2, 512, 128, device=device)
    new = outputs_and_gradients(block, lambda t: block(t, grid), x)
    old = outputs_and_gradients(block, lambda t: plain(block, t, grid), x)
    for a, b in zip((new[0], new[1], *new[2].values()), (old[0], old[1], *old[2].values()), strict=True):
        assert (a - b).abs().max() <= 1e-4 * b.abs().max()
    with torch.autocast(device, dtype=torch.bfloat16):
        new = outputs_and_gradients(block, lambda t: block(t, grid), x.bfloat16())
        old = outputs_and_gradients(block, lambda t: plain(block, t, grid), x.bfloat16())
    assert (new[0].float() - old[0].float()).abs().max() <= 5e-2 * old[0].float().abs().max()
    for a, b in zip((new[1], *new[2].values()), (old[1], *old[2].values()), strict=True):
        assert F.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0) > 0.99


#: The blocks at the configs' width and heads, each with its plain formulation.
CONFIG_WIDTH_BLOCKS = [
    (lambda: Based3dBlock(128, 4, 16, (5, 5, 5), 2.0, 0.0), plain_based3d_block),
    (lambda: Monarch3dBlock(128, (8, 8, 8), 4, 4, 2.0, 0.0), plain_monarch3d_block),
]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (the Triton kernels compiled)")
@pytest.mark.parametrize(("build", "plain"), CONFIG_WIDTH_BLOCKS)
def test_block_equals_the_plain_formulation_on_the_gpu(build, plain) -> None:
    # The GPU path: Triton kernels reading the packed/strided heads, bf16 layer norms under autocast.
    compare_with_the_plain_formulation(build, plain, "cuda")


@pytest.mark.parametrize(("build", "plain"), CONFIG_WIDTH_BLOCKS)
def test_block_equals_the_plain_formulation_at_the_config_width_on_the_cpu(build, plain) -> None:
    # The configs' width and heads, float32 and CPU bf16 autocast (CPU autocast keeps layer norms in
    # bf16 in both formulations; the GPU test above covers CUDA's float32 layer-norm policy).
    compare_with_the_plain_formulation(build, plain, "cpu")
