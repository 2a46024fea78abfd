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
