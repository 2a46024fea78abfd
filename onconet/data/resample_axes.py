"""RAS orientation, resampling to the model spacing and the centre crop in one step, separable when it can be.

MONAI's chain ``Orientationd("RAS") -> Spacingd(bilinear) -> ... -> ResizeWithPadOrCropd`` copies the
volume to flip it, evaluates a general 3D ``grid_sample`` (eight taps per voxel, coordinates through a
4x4 matrix) on the whole resampled grid, and then throws away what lies outside the centre crop. PET/CT
volumes are axis-aligned: after the flips, the voxel -> voxel map of the resampling is a per-axis scale and
shift. Trilinear interpolation is then separable: three 1D linear passes, each a gather of two
neighbours and one lerp along one axis, the one that shrinks the volume most first. The flips and the
crop fold into those maps, so only the output voxels that survive the crop are computed.

:class:`ResampleAxesd` does that and gives what the MONAI steps give, up to float rounding:

- the geometry is MONAI's: the RAS affine and shape of ``Orientation``, the affine and shape of
  ``Spacing`` (its ``zoom_affine`` / ``compute_shape_offset``, its tolerance that keeps a spacing
  within ``AFFINE_TOL`` of the target, its "no change" shortcut), then the crop of
  ``ResizeWithPadOrCrop`` (start ``T // 2 - S // 2`` on an axis longer than the target). Output: the
  cropped volume (``min(T, S)`` voxels per axis) on the affine MONAI's steps would set;
  ``ResizeWithPadOrCropd`` after it only pads, as before;
- values: ``Spacing``'s ``grid_sample`` with ``align_corners=False`` and ``padding_mode="border"``
  samples source voxel ``x = scale * t + shift`` (voxel centres map to voxel centres), with ``x``
  clamped to ``[0, n - 1]`` (border: the edge voxel's value outside). The separable passes do the same.

A map that is not axis-aligned (a sheared grid), or an input without RAS metadata, runs MONAI's
``Orientation`` and ``Spacing`` themselves (the crop is then left to ``ResizeWithPadOrCropd``), so such an
input gets exactly the old chain.

>>> import numpy as np, torch
>>> from monai.data import MetaTensor
>>> volume = MetaTensor(torch.arange(8.0).reshape(1, 8, 1, 1), affine=torch.eye(4, dtype=torch.float64))
>>> out = ResampleAxesd(["v"], pixdim=(2.0, 1.0, 1.0), spatial_size=(3, 1, 1))({"v": volume})["v"]
>>> out.shape, out.flatten().tolist()  # 2 mm: 4 voxels from voxel 0 on (as MONAI), centre 3 kept
(torch.Size([1, 3, 1, 1]), [2.0, 4.0, 6.0])
>>> finer = ResampleAxesd(["v"], pixdim=(0.5, 1.0, 1.0), spatial_size=(4, 1, 1))({"v": volume})["v"]
>>> finer.flatten().tolist()  # 0.5 mm: 15 voxels, the centre 4 from voxel 5 on
[2.5, 3.0, 3.5, 4.0]
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.utils import AFFINE_TOL, affine_to_spacing, compute_shape_offset, zoom_affine
from monai.transforms import MapTransform, Orientation, Spacing
from monai.utils import SpaceKeys

#: Largest position error (voxels, over the whole output) that dropping a map's off-diagonal terms may make
#: for it still to count as axis-aligned; MONAI's own float32 sampling grid is off by about 1e-5 voxel.
AXIS_ALIGNED_TOL = 1e-6


@dataclass(frozen=True)
class AxisPlan:
    """How a volume reaches the model grid: per output axis, the source axis and ``x = scale * u + shift``.

    Attributes:
        affine: the output's voxel -> RAS mm affine (what MONAI's steps set).
        shape: output shape, ``min(T, S)`` per axis (``T`` the resampled grid, ``S`` the target).
        source_axes: for output axis ``a``, the input axis it samples.
        scales: source voxels per output voxel (negative where the RAS orientation flips the axis).
        shifts: source voxel sampled by output voxel 0.
    """

    affine: np.ndarray
    shape: tuple[int, int, int]
    source_axes: tuple[int, int, int]
    scales: np.ndarray
    shifts: np.ndarray


def orientation_to_ras(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The voxel map of MONAI's ``Orientation(axcodes="RAS")``: RAS voxel -> input voxel (flips, axes)."""
    ornt = nib.orientations.ornt_transform(nib.io_orientation(affine), nib.orientations.axcodes2ornt("RAS"))
    return nib.orientations.inv_ornt_aff(ornt, tuple(int(n) for n in shape))


def spacing_grid(
    affine: np.ndarray, shape: Sequence[int], pixdim: Sequence[float]
) -> tuple[np.ndarray, tuple[int, ...]]:
    """MONAI ``Spacing``'s voxel map (output voxel -> input voxel) and output shape, ``diagonal=False``.

    As ``Spacing.__call__`` and ``spatial_resample`` compute them: a spacing within ``AFFINE_TOL`` of the
    target is kept; a map within ``AFFINE_TOL`` of the identity on the same shape means no resampling.
    """
    target = np.asarray(pixdim, dtype=np.float64)
    current = affine_to_spacing(affine, 3, target.dtype)
    keep = (target - AFFINE_TOL <= current) & (current <= target + AFFINE_TOL)
    new_affine = zoom_affine(affine, np.where(keep, current, target), diagonal=False)
    out_shape, offset = compute_shape_offset(shape, affine, new_affine, False)
    new_affine[:3, 3] = offset[:3]
    xform = np.linalg.solve(affine, new_affine)
    out_shape = tuple(int(n) for n in out_shape)
    same_shape = out_shape == tuple(int(n) for n in shape)
    if same_shape and (
        np.allclose(affine, new_affine, atol=AFFINE_TOL) or np.allclose(xform, np.eye(4), atol=AFFINE_TOL)
    ):
        return np.eye(4), out_shape  # MONAI returns the input unchanged
    return xform, out_shape


def centre_slices(shape: Sequence[int], size: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """(source, target) slices of ``ResizeWithPadOrCrop``'s centre crop / symmetric zero pad, per axis.

    Cropping ``n`` to ``s`` keeps from ``n // 2 - s // 2`` on; padding puts ``(s - n) // 2`` zeros before.

    Example:
        >>> centre_slices((5, 8), (8, 5))
        ((slice(0, 5, None), slice(2, 7, None)), (slice(1, 6, None), slice(0, 5, None)))
    """
    source, target = [], []
    for n, s in zip(shape, size, strict=True):
        start = n // 2 - s // 2 if n > s else 0
        before = (s - n) // 2 if n < s else 0
        kept = min(n, s)
        source.append(slice(start, start + kept))
        target.append(slice(before, before + kept))
    return tuple(source), tuple(target)


def plan_axes(
    affine: np.ndarray, shape: Sequence[int], pixdim: Sequence[float], spatial_size: Sequence[int]
) -> AxisPlan | None:
    """The separable plan from an input grid to the cropped model grid, or None if it is not axis-aligned."""
    affine = np.asarray(affine, dtype=np.float64)
    to_input = orientation_to_ras(affine, shape)  # RAS voxel -> input voxel: exact flips / permutation
    ras_affine = affine @ to_input
    ras_shape = [int(shape[int(np.argmax(np.abs(to_input[:3, a])))]) for a in range(3)]
    xform, grid_shape = spacing_grid(ras_affine, ras_shape, pixdim)
    kept, _ = centre_slices(grid_shape, spatial_size)
    out_shape = tuple(part.stop - part.start for part in kept)
    crop = np.eye(4)
    crop[:3, 3] = [part.start for part in kept]
    voxel_map = to_input @ xform @ crop  # output voxel -> input voxel
    matrix = voxel_map[:3, :3]  # rows: input axes, columns: output axes
    source_axes = tuple(int(np.argmax(np.abs(matrix[:, a]))) for a in range(3))
    if sorted(source_axes) != [0, 1, 2]:
        return None
    kept = np.zeros((3, 3), dtype=bool)
    kept[source_axes, range(3)] = True
    if np.abs(np.where(kept, 0.0, matrix)).max() * max(out_shape) > AXIS_ALIGNED_TOL:
        return None
    return AxisPlan(
        affine=ras_affine @ xform @ crop,
        shape=out_shape,  # type: ignore[arg-type]
        source_axes=source_axes,  # type: ignore[arg-type]
        scales=matrix[source_axes, range(3)],
        shifts=voxel_map[source_axes, 3],
    )


def _lerp_along(array: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``array`` at ``positions`` along ``axis``, clamped to the edges (border)."""
    n = array.shape[axis]
    at = np.clip(positions, 0, n - 1)
    low = np.floor(at).astype(np.intp)  # at = n - 1 -> low n - 1, weight 0: on a voxel, no rounding
    weight = (at - low).astype(np.float32)
    below = np.take(array, low, axis=axis)
    if not weight.any():  # on the source voxels (no resampling, or only a flip): a gather
        return below
    shape = [1] * array.ndim
    shape[axis] = len(positions)
    above = np.take(array, np.minimum(low + 1, n - 1), axis=axis)
    above -= below
    above *= weight.reshape(shape)
    above += below
    return above


def resample_axes(volume: np.ndarray, plan: AxisPlan) -> np.ndarray:
    """``volume`` (``[i, j, k]``, float32) on the plan's cropped model grid; C-contiguous float32.

    The passes run on the C-contiguous view of the volume (the cache and the in-memory hand-over give
    Fortran-ordered arrays, whose ``.T`` is C-contiguous): gathers along strided axes are much slower.
    """
    source = np.asarray(volume, dtype=np.float32)
    # the passes run on a view with the input's axes in memory order; view axis v becomes output axis
    # out_of_view[v] (the one that samples it)
    axes = list(plan.source_axes)
    if not source.flags.c_contiguous and source.flags.f_contiguous:
        source, input_of_view = source.T, [2, 1, 0]
    else:
        input_of_view = [0, 1, 2]
    out_of_view = [axes.index(axis) for axis in input_of_view]
    sizes = [plan.shape[a] for a in out_of_view]
    ratio = [sizes[v] / source.shape[v] for v in range(3)]
    out = source
    for v in sorted(range(3), key=ratio.__getitem__):  # shrink the most first: less work after it
        a = out_of_view[v]
        positions = plan.scales[a] * np.arange(plan.shape[a], dtype=np.float64) + plan.shifts[a]
        out = _lerp_along(out, v, positions)
    if out is source:
        out = out.copy()
    # back from view order to output order [x, y, z], contiguous like MONAI's own output
    return np.ascontiguousarray(out.transpose(np.argsort(out_of_view)))


class ResampleAxesd(MapTransform):
    """``Orientationd("RAS")`` + ``Spacingd(bilinear)`` + the crop of ``ResizeWithPadOrCropd``, separable.

    Args:
        keys: channel-first MetaTensors (``(C, X, Y, Z)``) to resample.
        pixdim: target spacing in mm (x, y, z).
        spatial_size: the model's input size; axes longer than it are cropped to its centre here, shorter
            ones are left for ``ResizeWithPadOrCropd`` to pad (after normalisation: padding is 0).
    """

    def __init__(self, keys: KeysCollection, pixdim: Sequence[float], spatial_size: Sequence[int]) -> None:
        super().__init__(keys)
        self.pixdim = tuple(float(s) for s in pixdim)
        self.spatial_size = tuple(int(s) for s in spatial_size)
        # the fallback: MONAI's own steps, as Orientationd / Spacingd of the chain ran them
        self.orientation = Orientation(axcodes="RAS", labels=None)
        self.spacing = Spacing(pixdim=self.pixdim, mode="bilinear", dtype=np.float32)
        # plans by input grid: a pair's four volumes lie on at most two grids (one per exam)
        self._plans: dict[tuple[bytes, tuple[int, ...]], AxisPlan | None] = {}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        for key in self.key_iterator(out):
            out[key] = self.resample(out[key])
        return out

    def plan(self, affine: np.ndarray, shape: tuple[int, ...]) -> AxisPlan | None:
        """:func:`plan_axes` for this grid, remembered (working it out costs about 1 ms)."""
        key = (np.asarray(affine, dtype=np.float64).tobytes(), shape)
        if key not in self._plans:
            if len(self._plans) >= 64:  # a long run over many grids: keep the memory bounded
                self._plans.clear()
            self._plans[key] = plan_axes(affine, shape, self.pixdim, self.spatial_size)
        return self._plans[key]

    def resample(self, image: torch.Tensor) -> torch.Tensor:
        """One channel-first volume onto the (cropped) model grid."""
        plan = None
        if (
            isinstance(image, MetaTensor)
            and image.device.type == "cpu"  # (a volume on a GPU stays there, with MONAI)
            and image.meta.get("space", SpaceKeys.RAS) == SpaceKeys.RAS
        ):
            plan = self.plan(image.peek_pending_affine().numpy(), tuple(image.shape[1:]))
        if plan is None:  # sheared grid, no RAS metadata, GPU: MONAI's general resampling
            return self.spacing(self.orientation(image))
        values = image.as_tensor().detach().numpy()
        channels = np.stack([resample_axes(channel, plan) for channel in values])
        result = MetaTensor(torch.from_numpy(channels), meta=dict(image.meta))
        result.affine = torch.as_tensor(plan.affine, dtype=torch.float64)
        return result
