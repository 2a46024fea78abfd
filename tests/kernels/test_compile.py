"""Triton ops inside ``torch.compile``: opaque calls (a graph break each), same values and gradients."""

from __future__ import annotations

import pytest
import torch

from kernels import local_attention_3d, monarch_mix_3d, taylor_linear_attention

_triton = pytest.importorskip("triton")


def _block(q, k, v, w_x, w_y, w_z, grid):
    """A little model that uses every op between ordinary PyTorch ops the compiler fuses."""
    global_mix = taylor_linear_attention(q.tanh(), k.tanh(), v * 2, backend="triton")
    local_mix = local_attention_3d(q, k, v, grid=grid, window=(3, 3, 3), backend="triton")
    tokens = (global_mix + local_mix).transpose(1, 2).reshape(q.shape[0], *grid, -1)
    return monarch_mix_3d(tokens.relu(), w_x, w_y, w_z, backend="triton").square().mean()


def test_compiled_block_matches_eager_values_and_gradients(seeded_generator):
    torch._dynamo.reset()
    grid = (3, 4, 5)
    n = grid[0] * grid[1] * grid[2]

    def fresh():
        qkv = [torch.randn(1, 2, n, d, generator=seeded_generator) for d in (8, 8, 8)]
        weights = [torch.randn(s, s, generator=seeded_generator) / s for s in grid]
        return qkv + weights

    inputs = fresh()
    eager_inputs = [t.clone().requires_grad_() for t in inputs]
    compiled_inputs = [t.clone().requires_grad_() for t in inputs]
    eager = _block(*eager_inputs, grid=grid)
    compiled = torch.compile(_block, backend="aot_eager", fullgraph=False)(*compiled_inputs, grid=grid)
    eager.backward()
    compiled.backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    for got, want in zip(compiled_inputs, eager_inputs, strict=True):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-5, atol=1e-6)
