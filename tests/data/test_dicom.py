"""Discovery and series assembly on real DICOM files written by the test factory."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from dicom_factory import pet_header, ramp, write_series
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from onconet.data.dicom import (
    DuplicateSliceError,
    GantryTiltError,
    InconsistentSliceError,
    MissingSliceError,
    MixedFrameOfReferenceError,
    MixedOrientationError,
    MixedSeriesError,
    NonUniformSpacingError,
    NotDicomError,
    UnreadableDicomError,
    discover,
    load_series,
    read_dataset,
)


def _world_ras(origin, orientation, spacing, i, j, k):
    """RAS+ position of voxel (i, j, k), computed from the DICOM definition (independent of the reader)."""
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    lps = (
        np.asarray(origin) + i * spacing[0] * row + j * spacing[1] * col + k * spacing[2] * np.cross(row, col)
    )
    return np.array([-lps[0], -lps[1], lps[2]])


@pytest.mark.parametrize(
    "orientation",
    [
        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),  # axial
        (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),  # sagittal
        (np.cos(0.3), np.sin(0.3), 0.0, -np.sin(0.3), np.cos(0.3), 0.0),  # oblique in-plane rotation
    ],
)
def test_geometry_contract(tmp_path: Path, orientation) -> None:
    values = ramp((6, 5, 4))
    spacing, origin = (1.5, 2.5, 3.0), (-12.0, 7.0, 40.0)
    write_series(
        tmp_path, values, spacing=spacing, origin=origin, orientation=orientation, header=pet_header()
    )
    volume = load_series(tmp_path)
    assert volume.array.shape == (6, 5, 4) and volume.array.dtype == np.float32
    np.testing.assert_allclose(volume.array, values, atol=0.02)  # int16 quantisation
    for i, j, k in [(0, 0, 0), (5, 0, 0), (0, 4, 0), (0, 0, 3), (3, 2, 1)]:
        np.testing.assert_allclose(
            (volume.affine @ [i, j, k, 1])[:3], _world_ras(origin, orientation, spacing, i, j, k), atol=1e-4
        )
    np.testing.assert_allclose(volume.spacing, spacing, atol=1e-5)


def test_axial_affine_is_nibabel_ras(tmp_path: Path) -> None:
    write_series(tmp_path, ramp((4, 4, 3)), header=pet_header())
    assert nib.aff2axcodes(load_series(tmp_path).affine) == ("L", "P", "S")


def test_slices_sorted_along_normal_whatever_the_names_and_numbers(tmp_path: Path) -> None:
    values = ramp((4, 3, 6))
    order = [3, 0, 5, 1, 4, 2]  # file names and instance numbers unrelated to position

    def shuffle(k: int, ds: Dataset) -> None:
        ds.InstanceNumber = order[k] + 1

    write_series(
        tmp_path / "a" / "b", values, names=lambda k: f"x{order[k]}", edit=shuffle, header=pet_header()
    )
    np.testing.assert_allclose(load_series(tmp_path).array, values, atol=0.02)


def test_head_first_numbering_still_gives_increasing_k(tmp_path: Path) -> None:
    """A series written top-down (step -3 mm along z) is sorted bottom-up: k runs along the normal."""
    values = ramp((3, 3, 5))
    write_series(tmp_path, values, spacing=(2.0, 2.0, -3.0), origin=(0.0, 0.0, 100.0), header=pet_header())
    volume = load_series(tmp_path)
    np.testing.assert_allclose(volume.array, values[:, :, ::-1], atol=0.02)
    assert volume.affine[2, 2] == pytest.approx(3.0) and volume.affine[2, 3] == pytest.approx(88.0)


def test_per_slice_rescale_is_applied(tmp_path: Path) -> None:
    values = ramp((4, 4, 3)) * np.array([1.0, 50.0, 0.01])
    slopes = np.array([0.02, 1.0, 5e-4])
    write_series(tmp_path, values, slopes=slopes, intercept=-3.0, header=pet_header())
    got = load_series(tmp_path).array
    for k in range(3):  # exact up to the int16 step of each slice
        np.testing.assert_allclose(got[:, :, k], values[:, :, k], atol=slopes[k] / 2 + 1e-6)


def test_missing_slice_is_named(tmp_path: Path) -> None:
    paths = write_series(tmp_path, ramp((3, 3, 8)), header=pet_header())
    paths[4].unlink()
    with pytest.raises(MissingSliceError, match=r"gap of 6\.000 mm .* about 1 slice"):
        load_series(tmp_path)


def test_missing_end_slice_caught_by_number_of_slices(tmp_path: Path) -> None:
    header = {**pet_header(), "NumberOfSlices": 8}
    paths = write_series(tmp_path, ramp((3, 3, 8)), header=header)
    paths[-1].unlink()
    with pytest.raises(MissingSliceError, match="7 slices found but NumberOfSlices"):
        load_series(tmp_path)


def test_duplicate_position_is_refused_but_a_repeated_file_is_not(tmp_path: Path) -> None:
    paths = write_series(tmp_path / "s", ramp((3, 3, 4)), header=pet_header())
    shutil.copy(paths[1], tmp_path / "s" / "copy_of_slice_1.dcm")  # same instance exported twice: fine
    assert load_series(tmp_path / "s").array.shape == (3, 3, 4)
    ds = pydicom.dcmread(paths[2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(tmp_path / "s" / "second_instance_at_slice_2.dcm")
    with pytest.raises(DuplicateSliceError, match="both at"):
        load_series(tmp_path / "s")


def test_non_uniform_spacing(tmp_path: Path) -> None:
    def stretch(k: int, ds: Dataset) -> None:
        if k >= 3:
            ds.ImagePositionPatient = [
                ds.ImagePositionPatient[0],
                ds.ImagePositionPatient[1],
                -30.0 + 3 * k + 1.0,
            ]

    write_series(tmp_path, ramp((3, 3, 6)), edit=stretch, header=pet_header())
    with pytest.raises(NonUniformSpacingError, match="differs from the regular"):
        load_series(tmp_path)


def test_gantry_tilt(tmp_path: Path) -> None:
    def tilt(k: int, ds: Dataset) -> None:  # each slice shifted 0.5 mm along y: ~9.5 degrees
        ds.ImagePositionPatient = [ds.ImagePositionPatient[0], -20.0 + 0.5 * k, ds.ImagePositionPatient[2]]

    write_series(tmp_path, ramp((3, 3, 5)), edit=tilt, header=pet_header())
    with pytest.raises(GantryTiltError, match="degrees of gantry tilt"):
        load_series(tmp_path)


def test_mixed_orientation(tmp_path: Path) -> None:
    def rotate(k: int, ds: Dataset) -> None:
        if k == 2:
            ds.ImageOrientationPatient = [0.0, 1.0, 0.0, -1.0, 0.0, 0.0]

    write_series(tmp_path, ramp((3, 3, 4)), edit=rotate, header=pet_header())
    with pytest.raises(MixedOrientationError, match="ImageOrientationPatient"):
        load_series(tmp_path)


def test_mixed_frame_of_reference(tmp_path: Path) -> None:
    def other_frame(k: int, ds: Dataset) -> None:
        if k == 1:
            ds.FrameOfReferenceUID = generate_uid()

    write_series(tmp_path, ramp((3, 3, 4)), edit=other_frame, header=pet_header())
    with pytest.raises(MixedFrameOfReferenceError, match="frames of reference"):
        load_series(tmp_path)


def test_inconsistent_slice_size(tmp_path: Path) -> None:
    def wider_pixels(k: int, ds: Dataset) -> None:
        if k == 3:
            ds.PixelSpacing = ["2.5", "2.5"]

    write_series(tmp_path, ramp((3, 3, 5)), edit=wider_pixels, header=pet_header())
    with pytest.raises(InconsistentSliceError, match="PixelSpacing"):
        load_series(tmp_path)


def test_two_series_in_one_folder(tmp_path: Path) -> None:
    write_series(tmp_path, ramp((3, 3, 4)), header=pet_header(), names=lambda k: f"a{k}.dcm")
    write_series(tmp_path, ramp((3, 3, 4)), header=pet_header(), names=lambda k: f"b{k}.dcm")
    with pytest.raises(MixedSeriesError, match="2 image series"):
        load_series(tmp_path)


def test_read_errors_are_named(tmp_path: Path) -> None:
    path = write_series(tmp_path / "s", ramp((8, 8, 2)), header=pet_header())[0]
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(NotDicomError, match="not a DICOM file"):
        read_dataset(text)
    data = path.read_bytes()
    (tmp_path / "cut_pixels.dcm").write_bytes(data[:-40])
    with pytest.raises(UnreadableDicomError, match="truncated pixel data"):
        read_dataset(tmp_path / "cut_pixels.dcm")
    (tmp_path / "cut_header.dcm").write_bytes(data[:300])
    with pytest.raises(UnreadableDicomError):
        read_dataset(tmp_path / "cut_header.dcm")


def _write_dicomdir(path: Path) -> None:
    ds = Dataset()
    ds.FileSetID = "EXPORT"
    ds.DirectoryRecordSequence = []
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def _write_other(path: Path, study_uid: str, modality: str, sop_class: str, image_type=("ORIGINAL",)) -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.Modality, ds.ImageType = modality, list(image_type)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def test_discovery_groups_studies_and_skips_the_rest_with_reasons(tmp_path: Path) -> None:
    study = generate_uid()
    write_series(tmp_path / "p1" / "x" / "pet", ramp((3, 3, 4)), header=pet_header(), study_uid=study)
    write_series(tmp_path / "p1" / "ct", ramp((4, 4, 5)), modality="CT", study_uid=study, names=str)
    write_series(
        tmp_path, ramp((3, 3, 3)), header=pet_header(), patient_id="TEST0002", names=lambda k: f"f{k}"
    )
    _write_dicomdir(tmp_path / "DICOMDIR")
    (tmp_path / "p1" / "README.txt").write_text("export notes")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    _write_other(tmp_path / "p1" / "rs.dcm", study, "RTSTRUCT", "1.2.840.10008.5.1.4.1.1.481.3")
    _write_other(tmp_path / "p1" / "sr.dcm", study, "SR", "1.2.840.10008.5.1.4.1.1.88.67")
    _write_other(tmp_path / "p1" / "sc.dcm", study, "OT", "1.2.840.10008.5.1.4.1.1.7")
    _write_other(
        tmp_path / "p1" / "scout.dcm",
        study,
        "CT",
        "1.2.840.10008.5.1.4.1.1.2",
        ("ORIGINAL", "PRIMARY", "LOCALIZER"),
    )

    found = discover(tmp_path)
    assert len(found.studies) == 2
    record = found.studies[study]
    assert record.patient_id == "TEST0001" and record.study_date == "2025-03-14" and record.site == "internal"
    assert sorted((s.modality, len(s.files)) for s in record.series) == [("CT", 5), ("PT", 4)]
    assert record.source_dir == tmp_path / "p1"
    reasons = sorted(s.reason for s in found.skipped)
    assert reasons == sorted(
        [
            "DICOMDIR (directory index, not an image)",
            "not a DICOM file",
            "not a DICOM file",
            "not an image series (RTSTRUCT)",
            "structured report (SR)",
            "secondary capture",
            "localizer/scout image",
        ]
    )


def test_discovery_with_worker_processes_finds_the_same(tmp_path: Path) -> None:
    for n in range(3):
        write_series(tmp_path / f"s{n}", ramp((3, 3, 6)), header=pet_header(), patient_id=f"P{n}")
    one, two = discover(tmp_path), discover(tmp_path, workers=2)
    assert sorted(one.studies) == sorted(two.studies)
    assert {uid: sorted(map(str, s.series[0].files)) for uid, s in one.studies.items()} == {
        uid: sorted(map(str, s.series[0].files)) for uid, s in two.studies.items()
    }
