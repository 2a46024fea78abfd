"""Resampling through affines: world positions, trilinear values, fill outside, frames of reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dicom_factory import ramp, write_series

from onconet.data.dicom import MixedFrameOfReferenceError, load_series
from onconet.data.resample import AIR_HU, resample_ct_to_pet, resample_to_grid


def test_same_grid_is_identity() -> None:
    values = ramp((5, 4, 3)).astype(np.float32)
    affine = np.diag([-2.0, -2.0, 3.0, 1.0])
    np.testing.assert_array_equal(resample_to_grid(values, affine, affine, values.shape), values)


def test_linear_field_is_reproduced_exactly_on_any_grid() -> None:
    """Trilinear interpolation of a linear function of world position is exact; check at random poses."""
    rng = np.random.default_rng(1)
    shape = (12, 11, 10)
    source_affine = np.diag([1.5, 2.0, 2.5, 1.0])
    source_affine[:3, 3] = (-5.0, 3.0, 10.0)
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    world = (
        np.einsum("ab,bijk->aijk", source_affine[:3, :3], np.stack([i, j, k]))
        + source_affine[:3, 3, None, None, None]
    )
    gradient = np.array([0.3, -1.2, 0.7])
    field = np.einsum("a,aijk->ijk", gradient, world).astype(np.float32)
    angle = rng.uniform(0, 0.4)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    target_affine = np.eye(4)
    target_affine[:3, :3] = rotation @ np.diag([-1.1, 1.3, 0.9])  # flipped, rotated, other spacing
    target_affine[:3, 3] = (2.0, 6.0, 14.0)
    out = resample_to_grid(field, source_affine, target_affine, (6, 6, 6), fill=np.nan)
    ti, tj, tk = np.meshgrid(*(np.arange(6) for _ in range(3)), indexing="ij")
    target_world = (
        np.einsum("ab,bijk->aijk", target_affine[:3, :3], np.stack([ti, tj, tk]))
        + target_affine[:3, 3, None, None, None]
    )
    expected = np.einsum("a,aijk->ijk", gradient, target_world)
    inside = ~np.isnan(out)
    assert inside.sum() > 100
    np.testing.assert_allclose(out[inside], expected[inside], atol=1e-3)


def test_outside_the_source_gets_the_fill_value() -> None:
    values = np.ones((4, 4, 4), dtype=np.float32)
    shifted = np.eye(4)
    shifted[:3, 3] = (3.0, 0.0, 0.0)  # target voxel i sits at source i + 3
    out = resample_to_grid(values, np.eye(4), shifted, (4, 4, 4), fill=-7.0)
    assert np.all(out[0] == 1.0) and np.all(out[1:] == -7.0)


def test_ct_onto_pet_grid_respects_world_positions(tmp_path: Path) -> None:
    """A CT and a PET of one frame of reference on different grids: the CT lands where it belongs."""
    frame = "1.2.826.0.1.3680043.8.498.1"
    hu = np.full((20, 20, 12), -1000.0)
    hu[8:12, 8:12, 4:8] = 60.0  # a soft-tissue block in a 1 mm CT
    write_series(tmp_path / "ct", hu, modality="CT", spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
                 intercept=-1024.0, frame_of_reference_uid=frame)  # fmt: skip
    ct = load_series(tmp_path / "ct")
    pet_affine = np.diag([-2.0, -2.0, 2.0, 1.0])  # RAS+: 2 mm voxels at LPS origin (0, 0, 0)
    pet_affine[:3, 3] = (-1.5, -1.5, 1.5)  # voxel centres at LPS 1.5, 3.5, ...
    out = resample_ct_to_pet(ct, pet_affine, (12, 12, 8), frame)
    # PET voxel (4, 4, 2) is centred at LPS (9.5, 9.5, 5.5): inside the block
    assert out[4, 4, 2] == pytest.approx(60.0, abs=1e-3)
    assert out[0, 0, 0] == pytest.approx(-1000.0, abs=1e-3)
    assert np.all(out[10:, :, :] == AIR_HU)  # beyond the CT's 20 mm
    with pytest.raises(MixedFrameOfReferenceError, match="register"):
        resample_ct_to_pet(ct, pet_affine, (12, 12, 8), "1.2.826.0.1.3680043.8.498.2")


def test_ct_padding_below_air_is_clipped(tmp_path: Path) -> None:
    hu = np.full((6, 6, 4), -3024.0)  # padding outside the reconstruction circle
    hu[2:4, 2:4, :] = 0.0
    write_series(tmp_path, hu, modality="CT", intercept=-3024.0)
    ct = load_series(tmp_path)
    out = resample_ct_to_pet(ct, ct.affine, ct.array.shape)
    assert out.min() == AIR_HU and out.max() == 0.0


def test_docstring_examples() -> None:
    import doctest

    import onconet.data.resample

    result = doctest.testmod(onconet.data.resample)
    assert result.attempted > 0 and result.failed == 0
