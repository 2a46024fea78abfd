"""Resampling a volume onto another grid (CT onto the PET grid), trilinear, through both affines.

Both grids follow the geometry contract (``affine`` maps ``[i, j, k, 1]`` to RAS+ mm), so the voxel of the
source that a target voxel samples is ``inv(source_affine) @ target_affine @ [i, j, k, 1]``: one affine map.
When the grids are axis-aligned (the map's 3x3 part is diagonal: a CT and a PET of one PET/CT study),
trilinear interpolation is separable and runs as three 1D linear interpolations, one axis at a time,
largest reduction first; otherwise :func:`scipy.ndimage.affine_transform` evaluates the map. Both give the
same values (scipy's ``mode="constant"``: a sample outside ``[0, n - 1]`` on any axis is ``fill``), up to
float32 rounding. Either way the work runs on the array's C-contiguous view (volumes assembled from DICOM
are Fortran-ordered ``[i, j, k]`` views), which is several times faster than striding across it.

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
    matrix, offset = to_source[:3, :3], to_source[:3, 3]
    shape = tuple(int(n) for n in target_shape)
    source = np.asarray(array, dtype=np.float32)
    flipped = not source.flags.c_contiguous and source.flags.f_contiguous
    if flipped:  # work on the C-contiguous [k, j, i] view: reverse the axes of the map
        source, matrix, offset, shape = source.T, matrix[::-1, ::-1], offset[::-1], shape[::-1]
    off_diagonal = np.abs(matrix - np.diag(np.diag(matrix))).max()
    if order == 1 and off_diagonal <= 1e-9 * np.abs(matrix).max():
        out = _separable_linear(source, np.diag(matrix), offset, shape, np.float32(fill))
    else:
        out = ndimage.affine_transform(
            source, matrix, offset=offset, output_shape=shape, output=np.float32, order=order,
            mode="constant", cval=fill, prefilter=False,
        )  # fmt: skip
    return out.T if flipped else out  # the source's layout: a Fortran-ordered [i, j, k] view


def _linear_along(
    array: np.ndarray, axis: int, scale: float, shift: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation along one axis at ``scale * t + shift``; the values and where they are inside."""
    n = array.shape[axis]
    at = scale * np.arange(size, dtype=np.float64) + shift
    inside = (at >= 0) & (at <= n - 1)
    at = np.clip(at, 0, n - 1)
    low = np.minimum(np.floor(at).astype(np.intp), max(n - 2, 0))
    weight = (at - low).astype(np.float32) if n > 1 else np.zeros(size, dtype=np.float32)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * array.ndim
    shape[axis] = size
    below = np.take(array, low, axis=axis)
    above = np.take(array, high, axis=axis)
    above -= below
    above *= weight.reshape(shape)
    above += below
    return above, inside


def _separable_linear(
    source: np.ndarray, scales: np.ndarray, shifts: np.ndarray, shape: tuple[int, ...], fill: np.float32
) -> np.ndarray:
    """Trilinear resampling of an axis-aligned map (target ``t`` samples source ``scales * t + shifts``)."""
    out, outside = source, []
    for axis in sorted(range(3), key=lambda a: shape[a] / source.shape[a]):  # shrink the most first
        out, inside = _linear_along(out, axis, float(scales[axis]), float(shifts[axis]), shape[axis])
        outside.append((axis, ~inside))
    if out is source:
        out = out.copy()
    for axis, mask in outside:
        index = [slice(None)] * 3
        index[axis] = mask
        out[tuple(index)] = fill
    return out


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
