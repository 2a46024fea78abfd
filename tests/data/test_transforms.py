"""MONAI pair transforms on small NIfTI volumes: orientation, spacing, windowing, crop/pad, flips."""

from __future__ import annotations

import doctest
import math

import nibabel as nib
import numpy as np
import pytest
import torch

from onconet.data import transforms as transforms_module
from onconet.data.transforms import IMAGE_KEYS, NormaliseSuvd, pair_transforms
from onconet.errors import ConfigError

SHAPE = (20, 24, 16)  # voxels of 4 mm
# The cache's convention for a DICOM patient-LPS grid: voxel axes point to L, P, S, so x and y flip in RAS.
AFFINE = np.array([[-4.0, 0, 0, 40.0], [0, -4.0, 0, 50.0], [0, 0, 4.0, -900.0], [0, 0, 0, 1]])
HOT = (3, 5, 9)  # voxel of a hot spot in the stored (L, P, S) order


def write(path, array) -> str:
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=np.float32), AFFINE), path)
    return str(path)


@pytest.fixture
def pair(tmp_path) -> dict:
    """SUV 1 everywhere with a 10-SUV voxel at HOT (follow-up: 5); CT 0 HU with a -1000 HU slab."""
    sample = {"label": 2, "patient_id": "P1"}
    for exam, hot_suv in (("baseline", 10.0), ("followup", 5.0)):
        suv = np.ones(SHAPE, dtype=np.float32)
        suv[HOT] = hot_suv
        ct = np.zeros(SHAPE, dtype=np.float32)
        ct[:, :, :2] = -1000.0
        sample[f"{exam}_suv"] = write(tmp_path / f"{exam}_suv.nii.gz", suv)
        sample[f"{exam}_ct"] = write(tmp_path / f"{exam}_ct.nii.gz", ct)
    return sample


def test_shapes_channels_and_types(pair) -> None:
    out = pair_transforms((4.0, 4.0, 4.0), SHAPE)(pair)
    assert set(IMAGE_KEYS).isdisjoint(out)
    for exam in ("baseline", "followup"):
        assert type(out[exam]) is torch.Tensor  # no MetaTensor: metadata is not needed past this point
        assert out[exam].shape == (2, *SHAPE) and out[exam].dtype == torch.float32
    assert out["label"] == 2 and out["patient_id"] == "P1"  # passes through


def test_orientation_to_ras_and_suv_normalisation(pair) -> None:
    out = pair_transforms((4.0, 4.0, 4.0), SHAPE, suv_scaling="log1p", suv_max=20.0)(pair)
    suv = out["baseline"][0]
    # L->R and P->A flips of the first two axes put the hot voxel at the mirrored index
    expected_index = (SHAPE[0] - 1 - HOT[0], SHAPE[1] - 1 - HOT[1], HOT[2])
    assert tuple(int(i) for i in np.unravel_index(int(suv.argmax()), SHAPE)) == expected_index
    assert float(suv.max()) == pytest.approx(math.log1p(10.0) / math.log1p(20.0), rel=1e-5)
    assert float(out["followup"][0].max()) == pytest.approx(math.log1p(5.0) / math.log1p(20.0), rel=1e-5)
    assert float(suv.median()) == pytest.approx(math.log1p(1.0) / math.log1p(20.0), rel=1e-5)


def test_ct_window(pair) -> None:
    ct = pair_transforms((4.0, 4.0, 4.0), SHAPE, hu_range=(-1000.0, 1000.0))(pair)["baseline"][1]
    assert torch.allclose(ct[:, :, :2], torch.tensor(0.0))  # -1000 HU (air) -> 0
    assert torch.allclose(ct[:, :, 2:], torch.tensor(0.5))  # 0 HU (water) -> 0.5


def test_resampling_to_coarser_spacing_then_crop_and_pad(pair) -> None:
    # 4 mm -> 8 mm halves the grid (10, 12, 8); the target (12, 8, 8) pads x and crops y.
    out = pair_transforms((8.0, 8.0, 8.0), (12, 8, 8))(pair)
    suv = out["baseline"][0]
    assert suv.shape == (12, 8, 8)
    assert torch.all(suv[0] == 0) and torch.all(suv[-1] == 0)  # one padded plane each side: no uptake
    assert torch.all(out["baseline"][1][0] == 0)  # padded CT is air
    inside = suv[1:-1]
    assert float(inside.min()) == pytest.approx(math.log1p(1.0) / math.log1p(20.0), rel=1e-4)


def test_clip_scaling_and_bad_options() -> None:
    out = NormaliseSuvd(["suv"], "clip", 10.0)({"suv": torch.tensor([-2.0, 2.5, 10.0, 30.0])})
    assert out["suv"].tolist() == [0.0, 0.25, 1.0, 1.0]
    with pytest.raises(ConfigError, match="suv_scaling"):
        NormaliseSuvd(["suv"], "sqrt")
    with pytest.raises(ConfigError, match="spatial_size"):
        pair_transforms((4.0, 4.0, 4.0), (16, 16))
    with pytest.raises(ConfigError, match="spacing"):
        pair_transforms((4.0, 0.0, 4.0), SHAPE)


def test_training_flips_both_exams_the_same_way(pair) -> None:
    pair = {**pair, "followup_suv": pair["baseline_suv"]}  # identical exams: must stay identical
    reference = pair_transforms((4.0, 4.0, 4.0), SHAPE)(pair)["baseline"]
    transform = pair_transforms(
        (4.0, 4.0, 4.0), SHAPE, train=True, flip_prob=0.5, intensity_jitter=0.0, flip_axes=(0, 1, 2)
    )
    seen = set()
    for seed in range(12):
        transform.set_random_state(seed=seed)
        out = transform(pair)
        assert torch.equal(out["baseline"], out["followup"])
        flipped = tuple(
            not torch.equal(out["baseline"], reference) and torch.equal(out["baseline"].flip(axis), reference)
            for axis in (1, 2, 3)
        )
        seen.add(flipped)
    assert len(seen) > 1  # some draws flip, some do not


def test_default_flip_is_left_right_only(pair) -> None:
    reference = pair_transforms((4.0, 4.0, 4.0), SHAPE)(pair)
    out = pair_transforms((4.0, 4.0, 4.0), SHAPE, train=True, flip_prob=1.0, intensity_jitter=0.0)(pair)
    for exam in ("baseline", "followup"):
        assert torch.equal(out[exam], reference[exam].flip(1))  # (channel, x, y, z): x is left-right
    with pytest.raises(ConfigError, match="flip_axes"):
        pair_transforms((4.0, 4.0, 4.0), SHAPE, train=True, flip_axes=(3,))


def test_intensity_jitter_scales_the_suv_of_both_exams_by_one_factor(pair) -> None:
    plain = pair_transforms((4.0, 4.0, 4.0), SHAPE)(pair)
    transform = pair_transforms((4.0, 4.0, 4.0), SHAPE, train=True, flip_prob=0.0, intensity_jitter=0.1)
    transform.set_random_state(seed=3)
    out = transform(pair)
    factors = [out[exam][0] / plain[exam][0] for exam in ("baseline", "followup")]
    factor = float(factors[0].mean())
    assert 0.9 <= factor <= 1.1 and factor != pytest.approx(1.0, abs=1e-6)
    for ratio in factors:
        torch.testing.assert_close(ratio, torch.full_like(ratio, factor))
    for exam in ("baseline", "followup"):
        torch.testing.assert_close(out[exam][1], plain[exam][1])  # CT untouched


def test_docstring_examples() -> None:
    result = doctest.testmod(transforms_module)
    assert result.attempted > 0 and result.failed == 0
