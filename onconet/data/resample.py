"""Resampling a volume onto another grid (CT onto the PET grid), trilinear, through both affines.

Both grids follow the geometry contract (``affine`` maps ``[i, j, k, 1]`` to RAS+ mm), so the voxel of the
source that a target voxel samples is ``inv(source_affine) @ target_affine @ [i, j, k, 1]``: one affine map,
evaluated by :func:`scipy.ndimage.affine_transform` without building coordinate arrays.

>>> import numpy as np
>>> source = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
>>> half_step = np.diag([0.5, 0.5, 0.5, 1.0])          # target grid twice as fine, same origin
>>> out = resample_to_grid(source, np.eye(4), half_step, (5, 5, 5), fill=-1.0)
>>> float(out[1, 0, 0])                                # halfway between source voxels 0 and 9
4.5
>>> float(resample_to_grid(source, np.eye(4), np.eye(4), (4, 3, 3), fill=-1.0)[3, 0, 0])  # outside
-1.0
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from onconet.data.dicom import MixedFrameOfReferenceError, Volume

#: HU written where the CT does not cover the PET grid, and the floor CT values are clipped to (padding
#: values such as -2000 or -3024 outside the reconstruction circle are not tissue).
AIR_HU = -1024.0


def resample_to_grid(
    array: np.ndarray,
    affine: np.ndarray,
    target_affine: np.ndarray,
    target_shape: tuple[int, int, int],
    *,
    fill: float = 0.0,
    order: int = 1,
) -> np.ndarray:
    """``array`` (on ``affine``) sampled at the voxel centres of the target grid, as float32.

    Args:
        array: source values ``[i, j, k]``.
        affine: source voxel -> RAS+ mm.
        target_affine: target voxel -> RAS+ mm.
        target_shape: target ``(I, J, K)``.
        fill: value where the target lies outside the source.
        order: spline order (1 = trilinear, 0 = nearest).
    """
    to_source = np.linalg.inv(np.asarray(affine, dtype=np.float64)) @ np.asarray(
        target_affine, dtype=np.float64
    )
    return ndimage.affine_transform(
        np.asarray(array, dtype=np.float32),
        to_source[:3, :3],
        offset=to_source[:3, 3],
        output_shape=tuple(int(n) for n in target_shape),
        output=np.float32,
        order=order,
        mode="constant",
        cval=fill,
        prefilter=False,
    )


def resample_ct_to_pet(
    ct: Volume,
    pet_affine: np.ndarray,
    pet_shape: tuple[int, int, int],
    pet_frame_of_reference_uid: str | None = None,
) -> np.ndarray:
    """The CT (HU) on the PET grid: trilinear, clipped below at -1024 HU, -1024 outside the CT's view.

    Raises:
        MixedFrameOfReferenceError: the CT and the PET lie in different frames of reference, so their
            patient coordinates cannot be compared (a registration would be needed).
    """
    if (
        pet_frame_of_reference_uid
        and ct.frame_of_reference_uid
        and ct.frame_of_reference_uid != pet_frame_of_reference_uid
    ):
        raise MixedFrameOfReferenceError(
            f"{ct.label}: FrameOfReferenceUID {ct.frame_of_reference_uid} differs from the PET's "
            f"{pet_frame_of_reference_uid}; register the CT to the PET or use the CT of the same PET/CT study"
        )
    clipped = np.maximum(ct.array, np.float32(AIR_HU))
    return resample_to_grid(clipped, ct.affine, pet_affine, pet_shape, fill=AIR_HU, order=1)
