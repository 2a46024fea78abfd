"""The causal Taylor linear attention (ours) against its quadratic form and the non-causal kernel."""

import pytest
import torch

import kernels
from onconet.mqar.causal_taylor import (
    causal_taylor_linear_attention,
    causal_taylor_linear_attention_quadratic,
    taylor_feature_dim,
)


def _inputs(n: int, d: int = 16, dv: int = 8, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, n, d, generator=g, dtype=torch.float64)
    k = torch.randn(2, 3, n, d, generator=g, dtype=torch.float64)
    v = torch.randn(2, 3, n, dv, generator=g, dtype=torch.float64)
    return q, k, v


@pytest.mark.parametrize("chunk_size", [1, 7, 16, 64, 100])
@pytest.mark.parametrize("n", [1, 37, 64])
def test_chunked_cumulative_sum_equals_masked_quadratic(n, chunk_size):
    q, k, v = _inputs(n)
    expected = causal_taylor_linear_attention_quadratic(q, k, v)
    got = causal_taylor_linear_attention(q, k, v, chunk_size=chunk_size)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_is_causal_future_tokens_change_nothing_before_them():
    q, k, v = _inputs(40, seed=1)
    before = causal_taylor_linear_attention(q, k, v, chunk_size=16)
    q2, k2, v2 = q.clone(), k.clone(), v.clone()
    q2[:, :, 25:] += 3.0
    k2[:, :, 25:] -= 2.0
    v2[:, :, 25:] *= -5.0
    after = causal_taylor_linear_attention(q2, k2, v2, chunk_size=16)
    torch.testing.assert_close(after[:, :, :25], before[:, :, :25], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(after[:, :, 25:], before[:, :, 25:])


@pytest.mark.parametrize("position", [0, 9, 20, 36])
def test_position_i_equals_the_non_causal_kernel_on_the_prefix(position):
    """Causal output i is the kernel's output i when the kernel only sees tokens 0..i."""
    q, k, v = _inputs(37, d=6, dv=5, seed=2)
    causal = causal_taylor_linear_attention(q, k, v, chunk_size=8)
    prefix = slice(0, position + 1)
    kernel = kernels.taylor_linear_attention(q[:, :, prefix], k[:, :, prefix], v[:, :, prefix])
    torch.testing.assert_close(causal[:, :, position], kernel[:, :, position], rtol=1e-10, atol=1e-10)


def test_gradients_flow_through_the_chunked_form():
    q, k, v = (t[:1, :1].clone().requires_grad_() for t in _inputs(13, d=3, dv=2, seed=3))
    torch.autograd.gradcheck(
        lambda q, k, v: causal_taylor_linear_attention(q, k, v, chunk_size=6), (q, k, v), eps=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("d", [1, 4, 16])
def test_feature_dim_matches_the_kernel_feature_map(d):
    assert kernels.taylor_feature_map(torch.zeros(1, d)).shape[-1] == taylor_feature_dim(d)
