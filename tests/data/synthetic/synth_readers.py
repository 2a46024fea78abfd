"""Readers for the synthetic cohort's tests, written independently of the generator (plain pydicom)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom


def read_series(folder: Path) -> list[pydicom.Dataset]:
    """All slices of one series folder, sorted from feet to head along z."""
    slices = [pydicom.dcmread(path) for path in folder.glob("*.dcm")]
    return sorted(slices, key=lambda ds: float(ds.ImagePositionPatient[2]))


def _dt(date_text: str, time_text: str) -> datetime:
    return datetime.strptime(date_text + time_text.split(".")[0], "%Y%m%d%H%M%S")


def qiba_suv(slices: list[pydicom.Dataset]) -> np.ndarray:
    """SUVbw volume (z, y, x) by the plain QIBA formula.

    value × RescaleSlope + RescaleIntercept, then × weight[g] / (dose × 2^(−Δt/T½)) for BQML, with Δt from
    the injection to the series time (or, when the series time is after the earliest acquisition, to
    GE's private scan datetime (0009,100D) or that acquisition); × Philips SUV scale factor (7053,1000)
    for CNTS.
    """
    first = slices[0]
    assert "ATTN" in first.CorrectedImage and "DECY" in first.CorrectedImage
    assert first.DecayCorrection == "START"
    values = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices])
    if first.Units == "CNTS":
        return values * float(first[0x7053, 0x1000].value)
    assert first.Units == "BQML"
    drug = first.RadiopharmaceuticalInformationSequence[0]
    injection = datetime.strptime(drug.RadiopharmaceuticalStartDateTime[:14], "%Y%m%d%H%M%S")
    scan = _dt(first.SeriesDate, first.SeriesTime)
    earliest = min(_dt(ds.AcquisitionDate, ds.AcquisitionTime) for ds in slices)
    if scan > earliest:
        ge_time = first.get((0x0009, 0x100D))
        scan = datetime.strptime(ge_time.value[:14], "%Y%m%d%H%M%S") if ge_time is not None else earliest
    seconds = (scan - injection).total_seconds()
    decayed = float(drug.RadionuclideTotalDose) * 2.0 ** (-seconds / float(drug.RadionuclideHalfLife))
    return values * float(first.PatientWeight) * 1000.0 / decayed


def voxel_index(slices: list[pydicom.Dataset], point: tuple[float, float, float]) -> tuple[int, int, int]:
    """(k, j, i) of the voxel centred nearest to LPS ``point`` in an axial series sorted by z."""
    x0, y0, z0 = (float(v) for v in slices[0].ImagePositionPatient)
    dy, dx = (float(v) for v in slices[0].PixelSpacing)
    dz = float(slices[1].ImagePositionPatient[2]) - z0
    x, y, z = point
    return round((z - z0) / dz), round((y - y0) / dy), round((x - x0) / dx)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def series_folders(dicom_dir: Path) -> dict[tuple[str, str], Path]:
    """(StudyInstanceUID, Modality) -> series folder, read from the first file of every series."""
    found = {}
    for folder in sorted(p for p in dicom_dir.glob("*/*/*") if p.is_dir()):
        first = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
        found[(first.StudyInstanceUID, first.Modality)] = folder
    return found
