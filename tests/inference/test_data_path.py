"""The lean inference data path gives the numbers of the NIfTI-cache path it replaces.

- the in-memory hand-over (:func:`nifti_equivalent`) equals MONAI's ``LoadImaged`` of the cached files,
  bit for bit, after the whole deterministic transform chain;
- the separable trilinear resampling of axis-aligned grids equals ``scipy.ndimage.affine_transform``
  (the generic path), edges and fill included, on Fortran- and C-ordered volumes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import Compose
from scipy import ndimage

from onconet.data.resample import resample_to_grid
from onconet.data.study import process_study
from onconet.data.transforms import deterministic_transforms, stacking_transforms
from onconet.inference.dataset import nifti_equivalent, volume_transforms
from onconet.inference.plan import plan_inference
from tests.inference.conftest import DATA


def test_in_memory_volumes_equal_the_cached_nifti_through_the_transforms(trained_model, tmp_path):
    job = plan_inference(trained_model.dicom).jobs[0]
    sample, memory = {}, {}
    for exam, study in (("baseline", job.baseline), ("followup", job.followup)):
        cached = process_study(study, tmp_path, keep_volumes=True)
        in_memory = process_study(study, None)
        assert cached.ok and in_memory.ok and "pet_path" not in in_memory.row  # nothing written
        volumes = in_memory.volumes
        for kind, column, array in (("suv", "pet", volumes.suv), ("ct", "ct", volumes.ct)):
            sample[f"{exam}_{kind}"] = str(tmp_path / cached.row[f"{column}_path"])
            memory[f"{exam}_{kind}"] = nifti_equivalent(array, volumes.affine)
    settings = dict(DATA)
    from_files = Compose(deterministic_transforms(**settings) + stacking_transforms())(sample)
    from_memory = volume_transforms(settings)(memory)
    for exam in ("baseline", "followup"):
        assert from_memory[exam].shape == (2, *DATA["spatial_size"])
        assert torch.equal(from_memory[exam], from_files[exam])


def generic(source, matrix, offset, shape, fill):
    return ndimage.affine_transform(
        source, matrix, offset=offset, output_shape=shape, output=np.float32, order=1, mode="constant",
        cval=fill, prefilter=False,
    )  # fmt: skip


@pytest.mark.parametrize("fortran", [False, True])
def test_separable_resampling_equals_the_generic_one(fortran):
    rng = np.random.default_rng(7)
    for trial in range(60):
        source = rng.normal(size=tuple(rng.integers(1, 12, 3))).astype(np.float32)
        source = np.asfortranarray(source) if fortran else source
        shape = tuple(int(n) for n in rng.integers(1, 14, 3))
        scales = rng.uniform(-1.6, 1.6, 3)
        shifts = rng.uniform(-3.0, 12.0, 3)
        if trial % 4 == 0:  # voxel centres exactly on the source's edges
            scales, shifts = np.ones(3), np.round(shifts)
        # target voxel t samples source voxel scales * t + shifts: affine = identity, target = that map
        target = np.eye(4)
        target[:3, :3], target[:3, 3] = np.diag(scales), shifts
        got = resample_to_grid(source, np.eye(4), target, shape, fill=-5.0)
        expected = generic(np.ascontiguousarray(source), np.diag(scales), shifts, shape, -5.0)
        assert got.shape == shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=2e-6, rtol=1e-6, err_msg=f"trial {trial}")


def test_a_rotated_grid_still_takes_the_generic_path_on_a_fortran_volume():
    rng = np.random.default_rng(3)
    source = np.asfortranarray(rng.normal(size=(9, 8, 7)).astype(np.float32))
    angle = 0.3
    target = np.eye(4)
    target[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    target[:3, 3] = (1.0, -0.5, 2.0)
    got = resample_to_grid(source, np.eye(4), target, (6, 7, 5), fill=0.0)
    expected = generic(np.ascontiguousarray(source), target[:3, :3], target[:3, 3], (6, 7, 5), 0.0)
    np.testing.assert_allclose(got, expected, atol=2e-6)
