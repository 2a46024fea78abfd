"""Local 3D attention: the window geometry, the reference against dense masked softmax attention, input
checks, and the Triton kernels (CPU interpreter without a GPU) against the float64 reference, forward and
every gradient."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math

import pytest
import torch

from kernels import KernelError, local_attention_3d, local_attention_3d_reference
from kernels.local_attention_3d import neighbourhood_index, window_starts


def _window_mask(grid, window):
    """(N, N) bool: key in the query's window, written from the definition, one coordinate at a time."""
    coords = list(itertools.product(*(range(s) for s in grid)))
    mask = torch.zeros(len(coords), len(coords), dtype=torch.bool)
    for a, query in enumerate(coords):
        starts = [min(max(c - w // 2, 0), s - w) for c, s, w in zip(query, grid, window, strict=True)]
        for b, key in enumerate(coords):
            mask[a, b] = all(st <= c < st + w for c, st, w in zip(key, starts, window, strict=True))
    return mask


def _random(generator, shape, dtype=torch.float64):
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return ((value.double() - reference.double()).norm() / reference.double().norm()).item()


@pytest.mark.parametrize(("size", "window"), [(1, 1), (5, 1), (5, 3), (5, 5), (9, 7), (12, 7)])
def test_window_starts_centre_and_clamp(size, window):
    starts = window_starts(size, window)
    positions = torch.arange(size)
    assert ((starts >= 0) & (starts + window <= size)).all()  # inside the axis
    assert ((starts <= positions) & (positions < starts + window)).all()  # the query sees itself
    interior = (positions >= window // 2) & (positions < size - window // 2)
    assert (starts[interior] == positions[interior] - window // 2).all()  # centred away from borders


def test_neighbourhood_index_matches_mask_definition():
    grid, window = (3, 4, 5), (3, 1, 5)
    index = neighbourhood_index(grid, window)
    mask = _window_mask(grid, window)
    assert index.shape == (60, 15)
    assert (mask.sum(1) == 15).all()  # every query sees exactly wx·wy·wz keys
    from_index = torch.zeros_like(mask)
    from_index.scatter_(1, index, True)
    assert torch.equal(from_index, mask)


def test_reference_equals_dense_masked_softmax(seeded_generator):
    grid, window = (4, 3, 6), (3, 3, 5)
    n = math.prod(grid)
    q, k = (_random(seeded_generator, (2, 3, n, 8)) for _ in range(2))
    v = _random(seeded_generator, (2, 3, n, 5))
    mask = _window_mask(grid, window)
    expected = (
        torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(8) + torch.where(mask, 0, -math.inf), -1) @ v
    )
    out = local_attention_3d(q, k, v, grid=grid, window=window)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_window_as_large_as_grid_is_global_attention(seeded_generator):
    grid = (3, 1, 5)
    q, k, v = (_random(seeded_generator, (1, 2, 15, 4)) for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(local_attention_3d(q, k, v, grid, grid), expected, rtol=1e-12, atol=1e-12)


def test_reference_is_chunk_independent(seeded_generator, monkeypatch):
    module = importlib.import_module("kernels.local_attention_3d")  # the module, not the function

    grid, window = (3, 3, 5), (3, 3, 3)
    q, k, v = (_random(seeded_generator, (1, 2, 45, 4)) for _ in range(3))
    whole = local_attention_3d_reference(q, k, v, grid, window)
    monkeypatch.setattr(module, "_REFERENCE_CHUNK_ELEMENTS", 1000)  # forces several query chunks
    torch.testing.assert_close(local_attention_3d_reference(q, k, v, grid, window), whole, rtol=0, atol=0)


def test_reference_keeps_low_precision_dtype(seeded_generator):
    q = _random(seeded_generator, (1, 1, 8, 4), torch.bfloat16)
    assert local_attention_3d(q, q, q, (2, 2, 2), (1, 1, 1)).dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("shapes", "grid", "window", "message"),
    [
        (((1, 2, 24, 4),) * 3, (2, 3, 4), (2, 3, 3), "must be odd"),
        (((1, 2, 24, 4),) * 3, (2, 3, 4), (3, 3, 3), "must be odd and in 1..2"),
        (((1, 2, 24, 4),) * 3, (2, 3, 5), (1, 1, 1), "holds 30 tokens"),
        (((1, 2, 24, 4),) * 3, (2, 12), (1, 1), "3 entries"),
        (((1, 2, 24, 129),) * 3, (2, 3, 4), (1, 1, 1), "head dim of q/k"),
        (((1, 2, 24, 4), (1, 2, 24, 4), (1, 2, 24, 130)), (2, 3, 4), (1, 1, 1), "head dim of v"),
        (((1, 2, 24, 4), (1, 2, 24, 8), (1, 2, 24, 4)), (2, 3, 4), (1, 1, 1), "must match"),
        (((2, 24, 4),) * 3, (2, 3, 4), (1, 1, 1), r"\(B, H, N, D\)"),
    ],
)
def test_bad_inputs_are_refused(shapes, grid, window, message):
    q, k, v = (torch.zeros(s) for s in shapes)
    with pytest.raises(KernelError, match=message):
        local_attention_3d(q, k, v, grid=grid, window=window)


# ------------------------------------------------------------------------------------------------
# Triton kernels (CPU interpreter without a GPU) against the float64 reference
# ------------------------------------------------------------------------------------------------


def _triton_config(poison=True):
    from kernels import _local3d_triton as lt

    if torch.cuda.is_available():  # the real tiles
        return dataclasses.replace(lt.DEFAULT_CONFIG, poison=poison)
    # Small tiles in the interpreter: several bricks and inner blocks even on a tiny grid.
    small = lt.Tiles((2, 2, 4), (2, 8), num_warps=4, num_stages=1)
    return lt.LaunchConfig(small, small, small, poison=poison)


def _check_against_reference(
    kernel_device, generator, batch, heads, grid, window, dim, value_dim, dtype, limit
):
    n = math.prod(grid)
    q, k = (_random(generator, (batch, heads, n, dim)) for _ in range(2))
    v = _random(generator, (batch, heads, n, value_dim))
    grad = _random(generator, (batch, heads, n, value_dim))
    # The reference sees the inputs rounded to dtype: the comparison measures the kernel, not the rounding.
    leaves = [t.to(dtype).double().requires_grad_() for t in (q, k, v)]
    expected = local_attention_3d_reference(*leaves, grid, window)
    expected.backward(grad)

    inputs = [t.to(kernel_device, dtype).requires_grad_() for t in (q, k, v)]
    out = local_attention_3d(*inputs, grid=grid, window=window, backend="triton", config=_triton_config())
    out.backward(grad.to(kernel_device, dtype))
    results = {"out": (out, expected)} | {
        f"d{name}": (t.grad, leaf.grad) for name, t, leaf in zip("qkv", inputs, leaves, strict=True)
    }
    for name, (value, reference) in results.items():
        assert value.dtype == dtype and value.shape == reference.shape, name
        assert torch.isfinite(value).all(), f"{name}: NaN/inf (an element the kernel did not write?)"
        error = _relative_error(value.cpu(), reference)
        assert error < limit, f"{name}: relative error {error:.2e} ≥ {limit:.0e}"


@pytest.mark.parametrize(
    ("batch", "heads", "grid", "window", "dim", "value_dim"),
    [
        (1, 2, (3, 5, 6), (3, 3, 5), 12, 20),  # no axis a multiple of the (2, 2, 4) brick; D ≠ Dv
        (2, 1, (2, 3, 9), (1, 3, 7), 16, 8),  # window of one along x; window 7 of 9 along z
    ],
)
def test_triton_matches_float64_reference(
    kernel_device, seeded_generator, batch, heads, grid, window, dim, value_dim
):
    _check_against_reference(
        kernel_device, seeded_generator, batch, heads, grid, window, dim, value_dim, torch.float32, 1e-5
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bfloat16 tensor-core path needs a GPU")
def test_triton_bfloat16_on_gpu(seeded_generator):
    _check_against_reference(
        torch.device("cuda"), seeded_generator, 2, 3, (9, 10, 13), (7, 5, 7), 64, 64, torch.bfloat16, 1e-2
    )
