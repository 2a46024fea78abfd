"""Monarch mixing: the references against dense matrices built independently (Kronecker product; explicit
permutation and block-diagonal matrices), MonarchLinear, dispatch of unsupported shapes, and the Triton
kernels (CPU interpreter without a GPU) against the float64 references, forward and every gradient."""

from __future__ import annotations

import pytest
import torch

from kernels import (
    KernelError,
    MonarchLinear,
    monarch_linear,
    monarch_linear_reference,
    monarch_mix_3d,
    monarch_mix_3d_reference,
)
from kernels.monarch import monarch_dense_matrix


def _random(generator, shape, dtype=torch.float64):
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return ((value.double() - reference.double()).norm() / reference.double().norm()).item()


def _stride_permutation(rows: int, cols: int) -> torch.Tensor:
    """Permutation matrix taking a flat (rows, cols) row-major vector to its transpose's flat order."""
    perm = torch.zeros(rows * cols, rows * cols, dtype=torch.float64)
    for r in range(rows):
        for c in range(cols):
            perm[c * rows + r, r * cols + c] = 1.0
    return perm


# ------------------------------------------------------------------------------------------------
# References
# ------------------------------------------------------------------------------------------------


def test_mix_3d_reference_is_the_kronecker_token_mixing(seeded_generator):
    x = _random(seeded_generator, (2, 3, 4, 5, 6))
    w_x, w_y, w_z = (_random(seeded_generator, (n, n)) for n in (3, 4, 5))
    dense = torch.kron(torch.kron(w_x, w_y), w_z)  # token (i, j, k) in row-major order
    expected = (dense @ x.reshape(2, 60, 6)).reshape(x.shape)
    torch.testing.assert_close(monarch_mix_3d(x, w_x, w_y, w_z), expected, rtol=1e-12, atol=1e-12)


def test_mix_3d_with_identities_is_identity(seeded_generator):
    x = _random(seeded_generator, (1, 4, 2, 3, 5))
    eyes = [torch.eye(n, dtype=torch.float64) for n in (4, 2, 3)]
    torch.testing.assert_close(monarch_mix_3d(x, *eyes), x, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("nblocks", "mid", "in_block", "out_block"), [(4, 2, 3, 5), (3, 4, 4, 4), (1, 3, 6, 2)]
)
def test_linear_reference_is_p_l_pt_r(seeded_generator, nblocks, mid, in_block, out_block):
    left = _random(seeded_generator, (nblocks, out_block, mid))
    right = _random(seeded_generator, (nblocks, mid, in_block))
    # Pᵀ: the flat (nblocks, mid) intermediate read as (mid, nblocks), transposed; P: back at the output.
    dense = (
        _stride_permutation(nblocks, out_block)
        @ torch.block_diag(*left)
        @ _stride_permutation(mid, nblocks)
        @ torch.block_diag(*right)
    )
    x = _random(seeded_generator, (2, 7, nblocks * in_block))
    torch.testing.assert_close(monarch_linear(x, left, right), x @ dense.T, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(monarch_dense_matrix(left, right), dense, rtol=1e-12, atol=1e-12)


def test_square_monarch_with_sqrt_blocks_transposes_the_intermediate(seeded_generator):
    # With nblocks = mid the stride permutation is the transpose of the (nblocks, mid) grid.
    left, right = _random(seeded_generator, (4, 4, 4)), _random(seeded_generator, (4, 4, 4))
    x = _random(seeded_generator, (5, 16))
    hidden = torch.einsum("kqp,bkp->bkq", right, x.reshape(5, 4, 4)).transpose(1, 2)
    expected = torch.einsum("lsr,blr->bsl", left, hidden).reshape(5, 16)
    torch.testing.assert_close(monarch_linear_reference(x, left, right), expected, rtol=1e-12, atol=1e-12)


def test_monarch_linear_module(seeded_generator):
    layer = MonarchLinear(64, 128, nblocks=4).double()
    assert layer.right.shape == (4, 16, 16) and layer.left.shape == (4, 32, 16)
    assert sum(p.numel() for p in layer.parameters()) == 4 * 16 * 16 + 4 * 32 * 16 + 128
    x = _random(seeded_generator, (3, 5, 64))
    expected = x @ monarch_dense_matrix(layer.left, layer.right).T + layer.bias
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    layer(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())
    assert MonarchLinear(32, 16, nblocks=2, bias=False).bias is None
    with pytest.raises(KernelError, match="multiples of nblocks"):
        MonarchLinear(30, 16, nblocks=4)


@pytest.mark.parametrize(
    ("x_shape", "weights", "message"),
    [
        ((2, 3, 4, 5, 6), ((3, 3), (4, 4), (4, 4)), "w_z must be"),
        ((2, 3, 4, 5), ((3, 3), (4, 4), (5, 5)), r"\(B, X, Y, Z, C\)"),
    ],
)
def test_mix_3d_bad_shapes_are_refused(x_shape, weights, message):
    with pytest.raises(KernelError, match=message):
        monarch_mix_3d(torch.zeros(x_shape), *(torch.zeros(s) for s in weights))


@pytest.mark.parametrize(
    ("x_shape", "left_shape", "right_shape", "message"),
    [
        ((2, 12), (4, 3, 2), (4, 2, 4), "takes nblocks"),
        ((2, 16), (2, 3, 2), (4, 2, 4), "must be"),
        ((2, 16), (4, 3), (4, 2, 4), "must be"),
    ],
)
def test_linear_bad_shapes_are_refused(x_shape, left_shape, right_shape, message):
    with pytest.raises(KernelError, match=message):
        monarch_linear(torch.zeros(x_shape), torch.zeros(left_shape), torch.zeros(right_shape))


def test_mixed_dtypes_are_refused():
    x = torch.zeros(1, 2, 2, 2, 3)
    with pytest.raises(KernelError, match="share one dtype"):
        monarch_mix_3d(x, torch.eye(2), torch.eye(2).double(), torch.eye(2))


# ------------------------------------------------------------------------------------------------
# Triton kernels (CPU interpreter without a GPU) against the float64 references
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def poisoned_outputs(monkeypatch):
    """Every buffer the Monarch kernels write starts as NaN."""
    from kernels import _monarch_triton

    monkeypatch.setattr(_monarch_triton, "POISON_OUTPUTS", True)


def _check(op, reference, inputs64, grad, device, dtype, limit):
    # The reference sees the inputs rounded to dtype: the comparison measures the kernel, not the rounding.
    leaves = [t.to(dtype).double().requires_grad_() for t in inputs64]
    expected = reference(*leaves)
    expected.backward(grad)
    inputs = [t.to(device, dtype).requires_grad_() for t in inputs64]
    out = op(*inputs, backend="triton")
    out.backward(grad.to(device, dtype))
    pairs = [("out", out, expected)] + [
        (f"grad {i}", t.grad, leaf.grad) for i, (t, leaf) in enumerate(zip(inputs, leaves, strict=True))
    ]
    for name, value, ref in pairs:
        assert value.dtype == dtype and value.shape == ref.shape, name
        assert torch.isfinite(value).all(), f"{name}: NaN/inf (an element the kernel did not write?)"
        error = _relative_error(value.cpu(), ref)
        assert error < limit, f"{name}: relative error {error:.2e} ≥ {limit:.0e}"


@pytest.mark.parametrize(
    "shape",
    [
        (1, 5, 6, 7, 40),  # several channel blocks in the backward; plane items not a multiple of programs
        (2, 3, 17, 5, 3),  # Y padded to 32; a few channels
        (1, 2, 40, 33, 2),  # a 64×64 padded plane: "planes" falls back to "axes" (too big to fuse)
    ],
)
@pytest.mark.parametrize("strategy", ["planes", "axes"])
def test_triton_mix_3d_matches_float64_reference(
    kernel_device, seeded_generator, poisoned_outputs, monkeypatch, shape, strategy
):
    import dataclasses

    from kernels import _monarch_triton

    monkeypatch.setattr(
        _monarch_triton, "MIX_CONFIG", dataclasses.replace(_monarch_triton.MIX_CONFIG, strategy=strategy)
    )
    x = _random(seeded_generator, shape)
    weights = [_random(seeded_generator, (n, n)) for n in shape[1:4]]
    grad = _random(seeded_generator, shape)
    _check(monarch_mix_3d, monarch_mix_3d_reference, [x, *weights], grad, kernel_device, torch.float32, 1e-5)


@pytest.mark.parametrize(
    ("rows", "nblocks", "mid", "in_block", "out_block"),
    [
        ((3, 100), 4, 16, 16, 32),  # 300 rows: tiles not a multiple of programs, last tile partial
        ((37,), 2, 16, 32, 16),  # in > out
        ((5, 3), 1, 32, 16, 16),  # a single block: the permutation is the identity
    ],
)
def test_triton_monarch_linear_matches_float64_reference(
    kernel_device, seeded_generator, poisoned_outputs, rows, nblocks, mid, in_block, out_block
):
    x = _random(seeded_generator, (*rows, nblocks * in_block))
    left = _random(seeded_generator, (nblocks, out_block, mid))
    right = _random(seeded_generator, (nblocks, mid, in_block))
    grad = _random(seeded_generator, (*rows, nblocks * out_block))
    _check(
        monarch_linear, monarch_linear_reference, [x, left, right], grad, kernel_device, torch.float32, 1e-5
    )


def test_unsupported_linear_shape_falls_back_unless_triton_is_forced(kernel_device, seeded_generator):
    from kernels import _monarch_triton

    left, right = (torch.zeros(4, 8, 8, device=kernel_device) for _ in range(2))  # blocks of 8 < 16
    assert "in_block=8" in _monarch_triton.linear_unsupported_reason(left.shape, right.shape)
    assert _monarch_triton.linear_unsupported_reason(torch.Size((4, 16, 16)), torch.Size((4, 16, 16))) is None
    with pytest.raises(KernelError, match="cannot take this shape"):
        monarch_linear(torch.zeros(3, 32, device=kernel_device), left, right, backend="triton")


def test_unsupported_mix_grid_falls_back_unless_triton_is_forced(kernel_device, seeded_generator):
    from kernels import _monarch_triton

    x = _random(seeded_generator, (1, 130, 1, 1, 2)).float().to(kernel_device)  # a long 1D sequence
    weights = [torch.eye(n, device=kernel_device) for n in (130, 1, 1)]
    assert "X=130" in _monarch_triton.mix3d_unsupported_reason(x.shape)
    torch.testing.assert_close(monarch_mix_3d(x, *weights), x)  # auto: the reference
    with pytest.raises(KernelError, match="cannot take this grid"):
        monarch_mix_3d(x, *weights, backend="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bfloat16 tensor-core path needs a GPU")
def test_triton_bfloat16_on_gpu(seeded_generator):
    device = torch.device("cuda")
    shape = (2, 12, 20, 24, 72)
    x = _random(seeded_generator, shape)
    weights = [_random(seeded_generator, (n, n)) / n**0.5 for n in shape[1:4]]
    grad = _random(seeded_generator, shape)
    _check(monarch_mix_3d, monarch_mix_3d_reference, [x, *weights], grad, device, torch.bfloat16, 1e-2)
    x = _random(seeded_generator, (1000, 256))
    left, right = _random(seeded_generator, (4, 64, 64)) / 8, _random(seeded_generator, (4, 64, 64)) / 8
    grad = _random(seeded_generator, (1000, 256))
    _check(monarch_linear, monarch_linear_reference, [x, left, right], grad, device, torch.bfloat16, 1e-2)
