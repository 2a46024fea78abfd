"""Small real DICOM PET and CT series for tests (pydicom files on disk, explicit VR little endian).

Independent of the synthetic cohort generator: tests break these series in one precise way each and check
the reader's answer. Geometry: ``values[i, j, k]`` (i = column, j = row, k = slice) is written so that the
pixel at column i, row j of slice k holds it, at LPS position ``origin + i*dc*X + j*dr*Y + k*step``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PET_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.128"
CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"
F18_HALF_LIFE = 6586.2

#: scan at 11:00, injection at 10:00 -> 3600 s of F-18 decay
SCAN = dt.datetime(2025, 3, 14, 11, 0, 0)
INJECTION = dt.datetime(2025, 3, 14, 10, 0, 0)


def pet_header(
    weight: float | None = 70.0, dose: float | None = 3.7e8, height: float | None = 1.75, sex: str = "M"
) -> dict:
    """Header fields of a BQML / START FDG PET (weight kg, dose Bq, height m)."""
    info = Dataset()
    info.Radiopharmaceutical = "Fluorodeoxyglucose"
    info.RadiopharmaceuticalStartTime = INJECTION.strftime("%H%M%S")
    info.RadiopharmaceuticalStartDateTime = INJECTION.strftime("%Y%m%d%H%M%S")
    if dose is not None:
        info.RadionuclideTotalDose = str(dose)
    info.RadionuclideHalfLife = str(F18_HALF_LIFE)
    header = {
        "Units": "BQML",
        "DecayCorrection": "START",
        "CorrectedImage": ["ATTN", "DECY", "SCAT"],
        "SeriesDate": SCAN.strftime("%Y%m%d"),
        "SeriesTime": SCAN.strftime("%H%M%S"),
        "AcquisitionDate": SCAN.strftime("%Y%m%d"),
        "AcquisitionTime": SCAN.strftime("%H%M%S"),
        "PatientSex": sex,
        "RadiopharmaceuticalInformationSequence": Sequence([info]),
    }
    if weight is not None:
        header["PatientWeight"] = str(weight)
    if height is not None:
        header["PatientSize"] = str(height)
    return header


def expected_bw_factor(weight: float = 70.0, dose: float = 3.7e8, seconds: float = 3600.0) -> float:
    """SUVbw factor for :func:`pet_header` values: weight[g] / (dose * 2^(-t/T))."""
    return weight * 1000.0 / (dose * 2.0 ** (-seconds / F18_HALF_LIFE))


def write_series(
    folder: Path,
    values: np.ndarray,
    *,
    modality: str = "PT",
    spacing: tuple[float, float, float] = (2.0, 2.0, 3.0),
    origin: tuple[float, float, float] = (-10.0, -20.0, -30.0),
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    slopes: np.ndarray | None = None,
    intercept: float = 0.0,
    header: dict | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    patient_id: str = "TEST0001",
    study_date: str = "20250314",
    institution: str = "internal",
    names: Callable[[int], str] | None = None,
    edit: Callable[[int, Dataset], None] | None = None,
) -> list[Path]:
    """Write ``values`` (float, ``[i, j, k]``) as one series; returns the file paths in k order.

    ``spacing`` is (column spacing, row spacing, slice step) in mm; stored = round((value - intercept) /
    slope) with one slope per slice (``slopes``, default: chosen to use the int16 range). ``edit(k, ds)``
    may change each slice before it is written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    values = np.asarray(values, dtype=np.float64)
    n_cols, n_rows, n_slices = values.shape
    row_cosine, col_cosine = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row_cosine, col_cosine)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_of_reference_uid = frame_of_reference_uid or generate_uid()
    if slopes is None:
        top = np.maximum(np.abs(values - intercept).max(axis=(0, 1)), 1e-6)
        slopes = top / 30000.0 if modality == "PT" else np.ones(n_slices)
    paths = []
    for k in range(n_slices):
        ds = Dataset()
        ds.SOPClassUID = PET_SOP_CLASS if modality == "PT" else CT_SOP_CLASS
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.Modality = modality
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PatientID = patient_id
        ds.PatientName = "Test^Patient"
        ds.StudyDate = study_date
        ds.StudyTime = "110000"
        ds.InstitutionName = institution
        ds.Manufacturer = "TestVendor"
        ds.InstanceNumber = k + 1
        position = np.asarray(origin) + k * spacing[2] * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]  # row spacing, column spacing
        ds.SliceThickness = f"{abs(spacing[2]):.6f}"
        ds.Rows, ds.Columns = n_rows, n_cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = f"{slopes[k]:.10g}"
        ds.RescaleIntercept = f"{intercept:g}"
        for keyword, value in (header or {}).items():
            setattr(ds, keyword, value)
        stored = np.rint((values[:, :, k] - intercept) / float(ds.RescaleSlope)).astype(np.int16)
        ds.PixelData = stored.T.tobytes()  # rows x columns in memory order
        if edit is not None:
            edit(k, ds)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        path = folder / (names(k) if names else f"{modality}{k:04d}.dcm")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def ramp(shape: tuple[int, int, int] = (6, 5, 4)) -> np.ndarray:
    """Values that name their voxel: ``100 i + 10 j + k + 1``."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (100.0 * i + 10.0 * j + k + 1.0).astype(np.float64)
