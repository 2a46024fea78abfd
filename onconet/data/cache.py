"""The NIfTI cache: model-ready volumes keyed by PET series UID, a manifest, and atomic writes.

Layout (the data contract)::

    CACHE/nifti/<PET SeriesInstanceUID>_suv.nii.gz   float32 SUV
    CACHE/nifti/<PET SeriesInstanceUID>_ct.nii.gz    float32 HU on the PET grid
    CACHE/nifti/<PET SeriesInstanceUID>.json         what made them (source fingerprint, kind, manifest row)
    CACHE/manifest.csv                               one row per study
    CACHE/pairs.csv                                  (baseline, follow-up) pairs

Every file is written to a temporary name in the same folder and moved into place with :func:`os.replace`,
so a crash never leaves a half-written file under a final name. The JSON record is written last: a series
is cached exactly when its record exists, names both NIfTI files, and its fingerprint (the source files'
paths, sizes and modification times, the SUV kind and the cache format version) matches.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

#: Bump when what is written changes, so older caches are recomputed (2: separable CT resampling, whose
#: float32 rounding differs from version 1's in the last bits).
CACHE_FORMAT_VERSION = 2

MANIFEST_COLUMNS = (
    "patient_id", "study_uid", "study_date", "site", "manufacturer", "pet_series_uid", "ct_series_uid",
    "suv_kind", "suv_factor_min", "suv_factor_max", "spacing", "shape", "pet_path", "ct_path",
    "source_dir", "status", "error",
)  # fmt: skip
PAIRS_COLUMNS = (
    "patient_id", "site", "baseline_study_uid", "followup_study_uid", "baseline_date", "followup_date",
    "baseline_pet", "baseline_ct", "followup_pet", "followup_ct",
)  # fmt: skip


def _temporary(path: Path, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    return Path(name)


def write_atomic_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path, ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_nifti(path: str | os.PathLike, array: np.ndarray, affine: np.ndarray) -> None:
    """Write a float32 NIfTI-1 image (RAS+ affine in mm, as qform and sform) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(array, dtype=np.float32), np.asarray(affine, dtype=np.float64))
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)  # 1 = scanner-based anatomical coordinates
    image.set_sform(affine, code=1)
    tmp = _temporary(path, ".nii.gz")
    try:
        nib.save(image, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(array, affine)`` of a cached NIfTI file (array as float32)."""
    image = nib.load(str(path))
    return np.asarray(image.dataobj, dtype=np.float32), image.affine


def write_csv(path: str | os.PathLike, rows: Iterable[dict], columns: Sequence[str]) -> None:
    """Write ``rows`` with exactly ``columns`` (missing values empty, extra keys ignored) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path, ".csv")
    try:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of strings."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def series_paths(pet_series_uid: str) -> tuple[str, str]:
    """The SUV and CT NIfTI paths of a PET series, relative to the cache folder."""
    return f"nifti/{pet_series_uid}_suv.nii.gz", f"nifti/{pet_series_uid}_ct.nii.gz"


def record_path(cache_dir: str | os.PathLike, pet_series_uid: str) -> Path:
    """Where the JSON record of a cached PET series lives."""
    return Path(cache_dir) / "nifti" / f"{pet_series_uid}.json"


def source_fingerprint(files: Iterable[str | os.PathLike], suv_kind: str) -> str:
    """A hash of the source files (path, size, mtime), the SUV kind and the cache format version."""
    digest = hashlib.sha256(f"v{CACHE_FORMAT_VERSION}|{suv_kind}".encode())
    for path in sorted(str(Path(f).resolve()) for f in files):
        stat = os.stat(path)
        digest.update(f"|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def cached_row(cache_dir: str | os.PathLike, pet_series_uid: str, fingerprint: str) -> dict | None:
    """The manifest row of a series cached from the same sources, or ``None`` when it must be recomputed."""
    path = record_path(cache_dir, pet_series_uid)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint:
        return None
    row = record.get("row") or {}
    if not all((Path(cache_dir) / str(row.get(key, ""))).is_file() for key in ("pet_path", "ct_path")):
        return None
    return row


def save_record(cache_dir: str | os.PathLike, pet_series_uid: str, fingerprint: str, row: dict) -> None:
    """Record (last, atomically) that a series' NIfTI files are complete."""
    record = {"format": CACHE_FORMAT_VERSION, "fingerprint": fingerprint, "row": row}
    write_atomic_bytes(record_path(cache_dir, pet_series_uid), json.dumps(record, indent=1).encode())
