"""Taylor linear attention: the reference against the attention weights, dispatch, and the Triton kernels
against the float64 reference (forward and every gradient)."""

from __future__ import annotations

import math

import pytest
import torch

from kernels import (
    KernelError,
    taylor_feature_map,
    taylor_linear_attention,
    taylor_linear_attention_reference,
)
from kernels.dispatch import resolve_backend


def _random_qkv(generator, batch, heads, n, d, dv, dtype=torch.float64):
    shapes = ((batch, heads, n, d), (batch, heads, n, d), (batch, heads, n, dv))
    return [torch.randn(s, generator=generator, dtype=torch.float64).to(dtype) for s in shapes]


def _explicit_attention(q, k, v, eps, mask=None):
    """The same op written as an N×N attention with weights 1 + s + s²/2, s = q·k/√d."""
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    weights = 1 + s + s**2 / 2
    if mask is not None:
        weights = weights * mask[:, None, None, :].to(weights.dtype)
    return (weights @ v) / (weights.sum(-1, keepdim=True) + eps)


@pytest.mark.parametrize("d", [1, 5, 16])
def test_feature_map_reproduces_taylor_kernel(seeded_generator, d):
    x, y = torch.randn(2, 7, d, generator=seeded_generator, dtype=torch.float64).unbind(0)
    phi_x, phi_y = taylor_feature_map(x), taylor_feature_map(y)
    assert phi_x.shape == (7, 1 + d + d * (d + 1) // 2)
    s = x @ y.T / math.sqrt(d)
    torch.testing.assert_close(phi_x @ phi_y.T, 1 + s + s**2 / 2, rtol=1e-12, atol=1e-12)


def test_reference_equals_explicit_attention_with_padding(seeded_generator):
    q, k, v = _random_qkv(seeded_generator, 2, 3, 37, 16, 24)
    mask = torch.rand(2, 37, generator=seeded_generator) > 0.3
    out = taylor_linear_attention_reference(q, k, v, eps=1e-3, key_padding_mask=mask)
    torch.testing.assert_close(out, _explicit_attention(q, k, v, 1e-3, mask), rtol=1e-12, atol=1e-12)


def test_padded_keys_do_not_change_outputs(seeded_generator):
    q, k, v = _random_qkv(seeded_generator, 1, 2, 20, 8, 12)
    mask = torch.ones(1, 20, dtype=torch.bool)
    mask[:, 13:] = False
    padded = taylor_linear_attention(q, k, v, key_padding_mask=mask)
    trimmed = _explicit_attention(q, k[:, :, :13], v[:, :, :13], 1e-6)
    torch.testing.assert_close(padded, trimmed, rtol=1e-12, atol=1e-12)
    k[:, :, 13:], v[:, :, 13:] = 1e3, -1e3
    torch.testing.assert_close(taylor_linear_attention(q, k, v, key_padding_mask=mask), padded)


def test_reference_keeps_low_precision_dtype(seeded_generator):
    q, k, v = _random_qkv(seeded_generator, 1, 1, 9, 4, 8, dtype=torch.bfloat16)
    assert taylor_linear_attention(q, k, v).dtype == torch.bfloat16


def test_cpu_tensors_dispatch_to_reference_unless_forced(monkeypatch):
    x = torch.zeros(3)
    monkeypatch.delenv("KERNELS_BACKEND", raising=False)
    assert resolve_backend(x) == "reference"
    monkeypatch.setenv("KERNELS_BACKEND", "reference")
    assert resolve_backend(x) == "reference"
    monkeypatch.setenv("KERNELS_BACKEND", "cudnn")
    with pytest.raises(KernelError, match="unknown kernel backend"):
        resolve_backend(x)
    assert resolve_backend(x, backend="reference") == "reference"


def test_triton_forced_on_cpu_without_interpreter_is_refused(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(KernelError, match="TRITON_INTERPRET"):
        resolve_backend(torch.zeros(3), backend="triton")


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((1, 2, 5, 17), (1, 2, 5, 17), (1, 2, 5, 8)), "feature dim"),
        (((1, 2, 5, 4), (1, 2, 5, 4), (1, 2, 5, 129)), "value dim"),
        (((1, 2, 5, 4), (1, 2, 6, 4), (1, 2, 5, 8)), "must match"),
        (((2, 5, 4), (2, 5, 4), (2, 5, 8)), r"\(B, H, N, dim\)"),
    ],
)
def test_bad_shapes_are_refused(shapes, message):
    q, k, v = (torch.zeros(s) for s in shapes)
    with pytest.raises(KernelError, match=message):
        taylor_linear_attention(q, k, v)


def test_bad_mask_is_refused():
    q = torch.zeros(1, 1, 4, 2)
    with pytest.raises(KernelError, match="key_padding_mask"):
        taylor_linear_attention(q, q, q, key_padding_mask=torch.ones(1, 4))


# ------------------------------------------------------------------------------------------------
# Triton kernels (CPU interpreter without a GPU) against the float64 reference
# ------------------------------------------------------------------------------------------------

# Small tiles so that short sequences still span several tiles and chunks; the real tiles on a GPU.
SMALL_TILES = {
    "state": (32, 4),
    "output": (16, 4),
    "query_grad": (16, 4),
    "key_grad": (32, 4),
    "query_dq": (16, 4),
    "query_state": (32, 4),
}


def _triton_config(**overrides):
    from kernels import _taylor_triton

    tiles = {} if torch.cuda.is_available() else {k: _taylor_triton.Tile(*v) for k, v in SMALL_TILES.items()}
    return _taylor_triton.launch_config(poison=True, **tiles, **overrides)


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    assert torch.isfinite(value).all(), "non-finite values (unwritten, poisoned element?)"
    return ((value.double() - reference).norm() / reference.norm()).item()


def _compare_with_reference(q, k, v, mask, dtype, device, tolerance, chunks=None, eps=1e-6):
    """Run the Triton path on (q, k, v) cast to dtype and compare output and all gradients in float64."""
    inputs = [t.to(device=device, dtype=dtype).requires_grad_() for t in (q, k, v)]
    mask_dev = None if mask is None else mask.to(device)
    out = taylor_linear_attention(
        *inputs, eps=eps, key_padding_mask=mask_dev, backend="triton", chunks=chunks
    )
    grad = torch.randn(out.shape, dtype=torch.float64)
    out.backward(grad.to(device=device, dtype=dtype))

    ref_inputs = [t.detach().double().cpu().requires_grad_() for t in inputs]
    ref = taylor_linear_attention_reference(*ref_inputs, eps=eps, key_padding_mask=mask)
    ref.backward(grad)
    errors = {"out": _relative_error(out.detach().cpu(), ref.detach())}
    for name, x, x_ref in zip("qkv", inputs, ref_inputs, strict=True):
        errors[f"d{name}"] = _relative_error(x.grad.cpu(), x_ref.grad)
    print(f"{dtype} relative errors: {errors}")
    assert max(errors.values()) < tolerance, errors
    return out.detach()


def _masked_float32_then_float16(config, generator, device, masked_shape, half_shape):
    """Under launch ``config``: a float32 case with a padding mask (2 chunks), then a float16 one (3 chunks).

    Shapes are (batch, heads, n, d, D); tolerances as everywhere here (1e-5 float32, 3e-3 float16).
    """
    q, k, v = _random_qkv(generator, *masked_shape)
    mask = torch.rand(masked_shape[0], masked_shape[2], generator=generator) > 0.25
    with _triton_config(**config):
        _compare_with_reference(q, k, v, mask, torch.float32, device, 1e-5, chunks=2)
        q, k, v = _random_qkv(generator, *half_shape)
        _compare_with_reference(q, k, v, None, torch.float16, device, 3e-3, chunks=3)


@pytest.mark.parametrize(
    ("quad_mode", "query_backward", "prefetch_grads"),
    [(0, "fused", True), (1, "two_pass", False), (0, "state_kernel", False)],
)
def test_triton_float32_matches_reference_with_padding_mask(
    seeded_generator, kernel_device, quad_mode, query_backward, prefetch_grads
):
    q, k, v = _random_qkv(seeded_generator, 2, 2, 150, 16, 40)
    mask = torch.rand(2, 150, generator=seeded_generator) > 0.25
    mask[1] = False  # a volume with no real token: output 0, gradients 0, no NaN
    config = {"quad_mode": quad_mode, "query_backward": query_backward, "prefetch_grads": prefetch_grads}
    with _triton_config(**config):
        out = _compare_with_reference(q, k, v, mask, torch.float32, kernel_device, 1e-5, chunks=2)
    assert out[1].abs().max() == 0


def test_triton_small_dims_and_strided_inputs(seeded_generator, kernel_device):
    # d = 5 and D = 24 are padded inside the kernels (masked columns); the inputs live in (B, N, H, dim)
    # memory.
    q, k, v = _random_qkv(seeded_generator, 1, 3, 77, 5, 24)
    strided = [
        t.to(kernel_device, torch.float32).transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v)
    ]
    assert not strided[0].is_contiguous()
    with _triton_config():
        _compare_with_reference(*strided, None, torch.float32, kernel_device, 1e-5, eps=0.1)


def test_triton_float16_matches_reference(seeded_generator, kernel_device):
    # d = 16 and D = 32: full rows, the unmasked (16-byte) loads and stores.
    q, k, v = _random_qkv(seeded_generator, 1, 2, 90, 16, 32)
    with _triton_config(query_backward="state_kernel"):
        _compare_with_reference(q, k, v, None, torch.float16, kernel_device, 3e-3, chunks=3)


@pytest.mark.parametrize(
    ("feature_block", "separate_z", "transposed", "symmetric"),
    [(0, False, False, False), (64, False, False, True), (128, True, False, False), (64, True, True, False)],
)
def test_triton_state_kernel_variants(
    seeded_generator, kernel_device, feature_block, separate_z, transposed, symmetric
):
    # The whole-state kernel (0) and the state split over programs by feature rows other than the
    # default (64, symmetric, z program): the last block holds the linear and constant rows; with
    # symmetric, one 8 × 8 block of products is left to the reduction's mirror reads (its partial rows
    # stay poisoned). With a padding mask (forward) and dden weights (the backward's state gradient),
    # d = 5 (masked columns) and d = 16 (unmasked rows), and a last chunk shorter than the others.
    config = {"state_feature_block": feature_block, "state_separate_z": separate_z}
    config |= {"state_transposed": transposed, "state_symmetric": symmetric, "query_backward": "state_kernel"}
    _masked_float32_then_float16(
        config, seeded_generator, kernel_device, (2, 2, 101, 16, 40), (1, 2, 70, 5, 16)
    )


def test_triton_output_kernel_prefetch_and_own_chunks(seeded_generator, kernel_device):
    # The next tile's q loaded ahead (the last tile's look-ahead is out of range: masked), and the output
    # kernel's chunks chosen apart from the other kernels' (3 programs per SM; registers capped on GPUs).
    config = {"output_prefetch": True, "output_programs_per_sm": 3, "output_max_registers": 168}
    _masked_float32_then_float16(
        config, seeded_generator, kernel_device, (1, 2, 90, 11, 24), (1, 2, 70, 16, 32)
    )
    q, k, v = (t.to(kernel_device, torch.float32) for t in _random_qkv(seeded_generator, 1, 2, 200, 16, 16))
    with _triton_config(**config):
        out = taylor_linear_attention(q, k, v, backend="triton")  # chunks from the launch config
    reference = taylor_linear_attention_reference(q.double(), k.double(), v.double())
    assert _relative_error(out, reference) < 1e-5


def test_triton_symmetric_output_kernel_and_tf32_z_products(seeded_generator, kernel_device):
    # Three of the four (8 × 8) blocks of q⊗q, the (0, 1) one twice; d = 11 leaves the second half
    # partly masked. tf32 applies to 16-bit inputs only (float32 stays exact).
    config = {"output_symmetric": True, "z_products_tf32": True}
    _masked_float32_then_float16(
        config, seeded_generator, kernel_device, (1, 2, 90, 11, 24), (1, 2, 70, 16, 32)
    )


def test_triton_feature_block_must_fit_the_features():
    from kernels import _taylor_triton

    q = torch.zeros(1, 1, 8, 16)
    args = (q, q, q.stride()[:3], None, 0, None, 16, 16, _taylor_triton.Tile(32, 4), 1, "ieee")
    with _taylor_triton.launch_config(state_feature_block=16), pytest.raises(ValueError, match="above 16"):
        _taylor_triton._state_partials(*args)
    symmetric = {"state_feature_block": 128, "state_symmetric": True}
    with _taylor_triton.launch_config(**symmetric), pytest.raises(ValueError, match="feature_block 64"):
        _taylor_triton._state_partials(*args)


def test_triton_forward_is_deterministic(seeded_generator, kernel_device):
    q, k, v = (t.to(kernel_device, torch.float32) for t in _random_qkv(seeded_generator, 1, 1, 100, 16, 16))
    with _triton_config():
        first, second = (taylor_linear_attention(q, k, v, backend="triton", chunks=3) for _ in range(2))
    assert torch.equal(first, second)
