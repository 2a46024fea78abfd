"""The separable model-grid step equals MONAI's Orientation + Spacing (bilinear) + centre crop.

The reference is the chain it replaced, run by MONAI itself: ``Orientation("RAS")``, ``Spacing`` (bilinear,
border padding), ``ResizeWithPadOrCrop``, compared after ``ResizeWithPadOrCrop`` on both sides: shape,
affine and values. Values: to 1e-6 of the volume's largest magnitude against that chain computed in
float64, and to 3e-5 against the float32 chain the transforms ran so far, whose ``grid_sample``
coordinates carry float32 rounding (about 1e-5 voxel at ~100 voxels): on the cached CT it differs from
its own float64 result by 1.7e-5 of the largest HU, the separable step from the float64 one by 6e-8.
Each case also checks which path ran, so the separable one cannot pass by falling back to MONAI.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    LoadImaged,
    Orientation,
    ResizeWithPadOrCrop,
    ResizeWithPadOrCropd,
    Spacing,
)
from monai.utils import SpaceKeys
from scipy.spatial.transform import Rotation

from onconet.data import resample_axes as resample_axes_module
from onconet.data.cache import read_csv
from onconet.data.resample_axes import ResampleAxesd, plan_axes
from onconet.data.transforms import IMAGE_KEYS, PadStackd, stacking_transforms
from onconet.inference.dataset import nifti_equivalent

#: Largest difference from MONAI's chain in float64 / in float32, relative to the largest magnitude.
REL_TOL_FLOAT64, REL_TOL_FLOAT32 = 1e-6, 3e-5


def monai_chain(image: MetaTensor, pixdim, spatial_size, dtype=np.float32) -> MetaTensor:
    """The steps :class:`ResampleAxesd` replaces, as ``deterministic_transforms`` ran them (float32)."""
    oriented = Orientation(axcodes="RAS", labels=None)(image)
    resampled = Spacing(pixdim=pixdim, mode="bilinear", dtype=dtype)(oriented)
    return ResizeWithPadOrCrop(spatial_size)(resampled)


def assert_same_as_monai(image: MetaTensor, pixdim, spatial_size, *, separable: bool = True) -> None:
    transform = ResampleAxesd(["image"], pixdim, spatial_size)
    plan = plan_axes(image.affine.numpy(), tuple(image.shape[1:]), pixdim, spatial_size)
    assert (plan is not None) == separable
    got = transform({"image": image})["image"]
    if plan is not None:  # cropped only: no axis larger than the target
        assert tuple(got.shape[1:]) == plan.shape
        assert all(n <= s for n, s in zip(got.shape[1:], spatial_size, strict=True))
    got = ResizeWithPadOrCrop(spatial_size)(got)
    scale = float(image.abs().max()) or 1.0
    checks = [(np.float64, REL_TOL_FLOAT64), (np.float32, REL_TOL_FLOAT32)]
    if not separable:  # the fallback is MONAI's float32 chain itself: no difference at all
        checks = [(np.float32, 0.0)]
    for dtype, tolerance in checks:
        expected = monai_chain(image, pixdim, spatial_size, dtype)
        assert got.shape == expected.shape and got.dtype == torch.float32
        np.testing.assert_allclose(got.affine.numpy(), expected.affine.numpy(), rtol=0, atol=1e-9)
        worst = float((got.as_tensor() - expected.as_tensor()).abs().max()) / scale
        assert worst <= tolerance, f"{dtype.__name__}: largest difference {worst:.2e} of the largest value"


def volume(shape, affine, rng, fortran: bool) -> MetaTensor:
    """A rough random volume (steep edges everywhere) as the cache / in-memory hand-over delivers it."""
    array = (rng.normal(size=shape) * 300.0 + 50.0).astype(np.float32)
    array = np.asfortranarray(array) if fortran else np.ascontiguousarray(array)
    return nifti_equivalent(array, affine).unsqueeze(0)


def test_cached_synthetic_volumes_suv_and_ct(synthetic_cache):
    """Real cache files, loaded by MONAI's NIfTI reader: down- and upsampling, crop and pad, SUV and CT."""
    rows = read_csv(synthetic_cache / "manifest.csv")[:1]  # one study: its SUV and its CT
    load = Compose([LoadImaged(["image"], reader="NibabelReader", image_only=True, dtype=np.float32),
                    EnsureChannelFirstd(["image"])])  # fmt: skip
    settings = [
        ((12.0, 12.0, 15.0), (32, 32, 64)),  # the demo's: coarser, pad in z
        ((4.5, 5.0, 3.5), (45, 61, 100)),  # finer than the cache: crop in x, y and z
        ((9.0, 3.0, 20.0), (128, 17, 33)),  # mixed: pad x, crop y, pad z
    ]
    for row in rows:
        for column in ("pet_path", "ct_path"):
            image = load({"image": str(synthetic_cache / row[column])})["image"]
            for pixdim, size in settings:
                assert_same_as_monai(image, pixdim, size)


@pytest.mark.parametrize("fortran", [True, False])
def test_odd_shapes_spacings_flips_and_axis_orders(fortran):
    rng = np.random.default_rng(11 + fortran)
    for _ in range(40):
        shape = tuple(int(n) for n in rng.integers(1, 24, 3))
        spacing = rng.uniform(0.7, 7.0, 3)
        affine = np.eye(4)
        affine[:3, :3] = np.diag(spacing * rng.choice([-1.0, 1.0], 3))[:, rng.permutation(3)]
        affine[:3, 3] = rng.uniform(-400.0, 400.0, 3)
        pixdim = tuple(float(s) for s in rng.uniform(0.5, 9.0, 3))  # up- and downsampling per axis
        size = tuple(int(n) for n in rng.integers(1, 30, 3))  # crop some axes, pad others
        assert_same_as_monai(volume(shape, affine, rng, fortran), pixdim, size)


def test_rotated_grids_are_still_separable():
    """Spacing keeps a grid's rotation: the voxel map stays a per-axis scale after RAS orientation."""
    rng = np.random.default_rng(5)
    for _ in range(6):
        affine = np.eye(4)
        affine[:3, :3] = Rotation.from_rotvec(rng.normal(size=3) * 0.4).as_matrix() @ np.diag([2.0, 3.0, 4.0])
        affine[:3, 3] = rng.uniform(-100.0, 100.0, 3)
        assert_same_as_monai(volume((13, 9, 11), affine, rng, True), (3.0, 2.5, 5.0), (10, 12, 9))


def test_border_values_beyond_the_last_voxel_centre():
    """An output voxel past the source's last centre takes the edge value (``padding_mode="border"``)."""
    ramp = np.arange(5, dtype=np.float32).reshape(5, 1, 1) * 10.0
    image = nifti_equivalent(ramp, np.eye(4)).unsqueeze(0)
    out = ResampleAxesd(["image"], (1.5, 1.0, 1.0), (4, 1, 1))({"image": image})["image"]
    # 1.5 mm on 5 voxels of 1 mm: MONAI's grid has 4 voxels, at source voxels 0, 1.5, 3 and 4.5 > 4
    assert out.flatten().tolist() == [0.0, 15.0, 30.0, 40.0]
    assert_same_as_monai(image, (1.5, 1.0, 1.0), (4, 1, 1))


def test_spacing_within_monai_tolerance_is_not_resampled():
    """MONAI keeps a spacing within 1e-3 mm of the target and skips resampling: values stay exact."""
    rng = np.random.default_rng(2)
    affine = np.diag([-3.0, -3.0, 4.0, 1.0])
    image = volume((10, 9, 8), affine, rng, True)
    out = ResampleAxesd(["image"], (3.0004, 2.9996, 4.0), (10, 9, 8))({"image": image})["image"]
    expected = np.flip(image[0].numpy(), axis=(0, 1))  # only the RAS flips of x and y
    assert np.array_equal(out[0].numpy(), expected)
    assert_same_as_monai(image, (3.0004, 2.9996, 4.0), (10, 9, 8))


def test_sheared_grid_falls_back_to_monai():
    rng = np.random.default_rng(9)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[2.0, 0.6, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    assert_same_as_monai(volume((12, 10, 9), affine, rng, True), (3.0, 3.0, 3.0), (8, 8, 8), separable=False)


def test_image_without_ras_metadata_falls_back_to_monai():
    rng = np.random.default_rng(4)
    image = volume((8, 7, 6), np.diag([2.0, 2.0, 2.0, 1.0]), rng, True)
    image.meta["space"] = SpaceKeys.LPS  # MONAI then reads the affine as LPS: leave that to MONAI
    got = ResampleAxesd(["image"], (3.0, 3.0, 3.0), (4, 4, 4))({"image": image.clone()})["image"]
    spacing = Spacing(pixdim=(3.0, 3.0, 3.0), mode="bilinear", dtype=np.float32)
    expected = spacing(Orientation(axcodes="RAS", labels=None)(image.clone()))
    assert got.shape == expected.shape and torch.equal(got.as_tensor(), expected.as_tensor())


def test_pad_stack_equals_resize_and_concatenation():
    """PadStackd = ResizeWithPadOrCropd + the stacking, for cropped, padded and untouched axes."""
    rng = np.random.default_rng(8)
    size = (9, 6, 7)
    for shapes in [((4, 6, 12), (9, 3, 7)), ((11, 1, 7), (2, 8, 5))]:
        sample = {"label": 1}
        for index, key in enumerate(IMAGE_KEYS):
            array = rng.normal(size=shapes[index % 2]).astype(np.float32)
            sample[key] = MetaTensor(torch.from_numpy(array)[None], affine=torch.eye(4, dtype=torch.float64))
        expected = Compose([ResizeWithPadOrCropd(list(IMAGE_KEYS), size), *stacking_transforms()])(
            dict(sample)
        )
        got = PadStackd(size)(dict(sample))
        assert set(IMAGE_KEYS).isdisjoint(got) and got["label"] == 1
        for exam in ("baseline", "followup"):
            assert type(got[exam]) is torch.Tensor and got[exam].shape == (2, *size)
            assert torch.equal(got[exam], expected[exam])


def test_docstring_examples():
    result = doctest.testmod(resample_axes_module)
    assert result.attempted > 0 and result.failed == 0
