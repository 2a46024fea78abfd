"""RTSTRUCT contours rasterised onto a voxel grid through its affine (so it tests the geometry too).

Each CLOSED_PLANAR contour (LPS mm) is mapped into voxel indices through the inverse of the grid's RAS+
affine, assigned to the slice its plane lies in, and filled by a point-in-polygon test of the voxel centres
(matplotlib's Path). Several contours of one ROI on one slice combine by the even-odd rule, so a contour
inside another is a hole.

Example::

    mask = rasterise_roi("RS.dcm", "GTV_Mass", suv.affine, suv.array.shape)
    suv.array[mask].max()
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import pydicom
from matplotlib.path import Path as PolygonPath
from pydicom.dataset import Dataset

from onconet.data.dicom import LPS_TO_RAS, MixedFrameOfReferenceError
from onconet.errors import DicomError, SeriesGeometryError


class RoiNotFoundError(DicomError):
    """The RTSTRUCT has no ROI of the requested name."""


def _dataset(rtstruct: Dataset | str | os.PathLike) -> Dataset:
    return rtstruct if isinstance(rtstruct, Dataset) else pydicom.dcmread(rtstruct)


def roi_names(rtstruct: Dataset | str | os.PathLike) -> list[str]:
    """The ROI names of a structure set, in file order."""
    return [str(roi.ROIName) for roi in _dataset(rtstruct).StructureSetROISequence]


def roi_contours(rtstruct: Dataset | str | os.PathLike, roi_name: str) -> list[np.ndarray]:
    """The closed planar contours of one ROI, each an ``(n, 3)`` array of LPS mm points."""
    ds = _dataset(rtstruct)
    numbers = {int(roi.ROINumber): str(roi.ROIName) for roi in ds.StructureSetROISequence}
    wanted = [number for number, name in numbers.items() if name == roi_name]
    if not wanted:
        raise RoiNotFoundError(
            f"RTSTRUCT {ds.get('SOPInstanceUID', '?')}: no ROI {roi_name!r}; "
            f"it has {sorted(numbers.values())}"
        )
    contours = []
    for roi in ds.ROIContourSequence:
        if int(roi.ReferencedROINumber) != wanted[0]:
            continue
        for contour in roi.get("ContourSequence", []):
            if str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper() != "CLOSED_PLANAR":
                continue
            contours.append(np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3))
    return contours


def rasterise_roi(
    rtstruct: Dataset | str | os.PathLike,
    roi_name: str,
    affine: np.ndarray,
    shape: tuple[int, int, int],
    frame_of_reference_uid: str | None = None,
) -> np.ndarray:
    """A boolean mask of ``shape`` holding the voxels whose centres lie inside the ROI's contours.

    Args:
        rtstruct: the RTSTRUCT dataset or file.
        roi_name: StructureSetROISequence ROIName.
        affine: the grid's voxel -> RAS+ mm affine (the geometry contract).
        shape: the grid's ``(I, J, K)``.
        frame_of_reference_uid: the grid's frame of reference; when given it must be the one the contours
            reference.

    Raises:
        RoiNotFoundError, MixedFrameOfReferenceError, SeriesGeometryError (a contour not parallel to slices).
    """
    ds = _dataset(rtstruct)
    if frame_of_reference_uid:
        referenced = {
            str(item.FrameOfReferenceUID) for item in ds.get("ReferencedFrameOfReferenceSequence", [])
        }
        if referenced and frame_of_reference_uid not in referenced:
            raise MixedFrameOfReferenceError(
                f"RTSTRUCT {ds.get('SOPInstanceUID', '?')} references frame(s) {sorted(referenced)}, the "
                f"image is in {frame_of_reference_uid}; contours and image must share a frame of reference"
            )
    to_voxel = np.linalg.inv(np.asarray(affine, dtype=np.float64) @ np.eye(4)) @ LPS_TO_RAS
    by_slice: dict[int, list[np.ndarray]] = defaultdict(list)
    for points in roi_contours(ds, roi_name):
        voxels = (to_voxel[:3, :3] @ points.T).T + to_voxel[:3, 3]
        k_values = voxels[:, 2]
        if np.ptp(k_values) > 0.1:
            raise SeriesGeometryError(
                f"ROI {roi_name!r}: a contour spans {np.ptp(k_values):.2f} slices; "
                "contours must lie in image planes"
            )
        k = int(np.rint(k_values.mean()))
        if 0 <= k < shape[2]:
            by_slice[k].append(voxels[:, :2])
    mask = np.zeros(shape, dtype=bool)
    for k, polygons in by_slice.items():
        for polygon in polygons:
            lo = np.maximum(np.floor(polygon.min(axis=0)).astype(int), 0)
            hi = np.minimum(np.ceil(polygon.max(axis=0)).astype(int), np.array(shape[:2]) - 1)
            if np.any(hi < lo):
                continue
            ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
            inside = PolygonPath(polygon).contains_points(np.column_stack([ii.ravel(), jj.ravel()]))
            mask[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, k] ^= inside.reshape(ii.shape)
    return mask
