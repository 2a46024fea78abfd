"""The NIfTI cache: round trips, atomic writes, fingerprints."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from onconet.data.cache import (
    MANIFEST_COLUMNS,
    cached_row,
    read_csv,
    read_nifti,
    save_record,
    series_paths,
    source_fingerprint,
    write_csv,
    write_nifti,
)


def test_nifti_round_trip_keeps_values_and_affine(tmp_path: Path) -> None:
    array = np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32)
    affine = np.array([[-4.0, 0, 0, 100.0], [0, -4.0, 0, 90.0], [0, 0, 3.27, -880.0], [0, 0, 0, 1]])
    path = tmp_path / "nifti" / "x_suv.nii.gz"
    write_nifti(path, array.T.T, affine)
    back, back_affine = read_nifti(path)
    np.testing.assert_array_equal(back, array)
    np.testing.assert_allclose(back_affine, affine, atol=1e-5)
    header = nib.load(path).header
    assert header.get_data_dtype() == np.float32
    assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 1
    assert header.get_xyzt_units()[0] == "mm"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x_suv.nii.gz"]  # no temporary left behind


def test_fortran_ordered_views_are_written_correctly(tmp_path: Path) -> None:
    stack = np.arange(24, dtype=np.float32).reshape(2, 3, 4)  # [k, row, col] as the reader builds it
    write_nifti(tmp_path / "v.nii.gz", stack.T, np.eye(4))
    np.testing.assert_array_equal(read_nifti(tmp_path / "v.nii.gz")[0], stack.T)


def test_csv_has_exactly_the_columns(tmp_path: Path) -> None:
    write_csv(tmp_path / "m.csv", [{"patient_id": "P1", "status": "ok", "extra": 1}], MANIFEST_COLUMNS)
    rows = read_csv(tmp_path / "m.csv")
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    assert rows[0]["patient_id"] == "P1" and rows[0]["error"] == ""


def test_fingerprint_follows_sources_and_kind(tmp_path: Path) -> None:
    files = [tmp_path / "a.dcm", tmp_path / "b.dcm"]
    for f in files:
        f.write_bytes(b"x")
    first = source_fingerprint(files, "bw")
    assert source_fingerprint(list(reversed(files)), "bw") == first
    assert source_fingerprint(files, "lbm_james") != first
    os.utime(files[0], ns=(1, 1))
    assert source_fingerprint(files, "bw") != first


def test_cached_row_only_when_complete_and_unchanged(tmp_path: Path) -> None:
    pet, ct = series_paths("1.2.3")
    row = {"pet_path": pet, "ct_path": ct, "status": "ok"}
    assert cached_row(tmp_path, "1.2.3", "f1") is None
    for rel in (pet, ct):
        write_nifti(tmp_path / rel, np.zeros((2, 2, 2)), np.eye(4))
    save_record(tmp_path, "1.2.3", "f1", row)
    assert cached_row(tmp_path, "1.2.3", "f1") == row
    assert cached_row(tmp_path, "1.2.3", "f2") is None
    (tmp_path / ct).unlink()
    assert cached_row(tmp_path, "1.2.3", "f1") is None
