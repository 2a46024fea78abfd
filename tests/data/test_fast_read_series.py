"""The series reader (no pydicom Dataset per slice) gives what the pydicom path gives, bit for bit.

Compared with :func:`read_datasets` (one pydicom Dataset per file) on the synthetic cohort, on rewritten
copies in implicit VR and RLE Lossless, on real exports (STS_001's PET, the IBSI-cropped PET/CT, the 17 SUV
DROs) and on series whose layout changes between slices; broken files still fail with the named errors.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_factory import pet_header, ramp, write_series
from pydicom.uid import ImplicitVRLittleEndian, RLELossless

from onconet.data import dicom
from onconet.data.dicom import (
    _READ_TAG_SET,
    HEADER_KEYWORDS,
    NotDicomError,
    UnreadableDicomError,
    assemble_volume,
    iter_files,
    load_series,
    load_series_datasets,
    pixel_matrix,
    read_datasets,
    read_instance_header,
    read_series,
    series_skip_reason,
)
from onconet.data.header import header_int, header_text
from onconet.data.slices import SeriesReader, SliceHeader
from onconet.data.study import choose_series
from onconet.data.suv import GE_PET_CREATOR, PHILIPS_CREATOR, private_value, suv_from_volume
from onconet.inference.plan import plan_inference

BINARY = {"Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation", "SamplesPerPixel"}
PRIVATE = [(0x0009, 0x0D, GE_PET_CREATOR), (0x7053, 0x00, PHILIPS_CREATOR), (0x7053, 0x09, PHILIPS_CREATOR)]


def assert_same_headers(ours, theirs) -> None:
    """Every header field OncoNet reads, and the pixel values, agree slice by slice."""
    assert len(ours) == len(theirs)
    for fast, reference in zip(ours, theirs, strict=True):
        for keyword in HEADER_KEYWORDS:
            if keyword in BINARY:  # US values: pydicom may have converted them already
                assert header_int(fast, keyword) == header_int(reference, keyword), keyword
            elif keyword != "RadiopharmaceuticalInformationSequence":
                assert header_text(fast, keyword) == header_text(reference, keyword), keyword
        np.testing.assert_array_equal(pixel_matrix(fast), pixel_matrix(reference))


def assert_same_volume(ours, theirs, pet: bool) -> None:
    """Volumes, affines and (PET) SUV arrays and factors are bit-identical."""
    fast, reference = assemble_volume(ours), assemble_volume(theirs)
    assert fast.array.tobytes() == reference.array.tobytes() and fast.array.strides == reference.array.strides
    assert np.array_equal(fast.affine, reference.affine)
    assert [ds.filename for ds in fast.datasets] == [str(ds.filename) for ds in reference.datasets]
    if pet:
        suv_fast, suv_reference = suv_from_volume(fast), suv_from_volume(reference)
        assert suv_fast.array.tobytes() == suv_reference.array.tobytes()
        assert np.array_equal(suv_fast.factors, suv_reference.factors)
        for group, offset, creator in PRIVATE:
            first, other = fast.datasets[0], reference.datasets[0]
            assert private_value(first, group, offset, creator) == private_value(
                other, group, offset, creator
            )
        assert str(fast.datasets[0].get("RadiopharmaceuticalInformationSequence")) == str(
            reference.datasets[0].get("RadiopharmaceuticalInformationSequence")
        )


def rewrite(files: list[Path], folder: Path, syntax: str) -> list[Path]:
    """Copies of ``files`` in another transfer syntax (pydicom's writer and RLE encoder)."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in files:
        ds = pydicom.dcmread(path)
        if syntax == RLELossless:
            ds.compress(RLELossless, encoding_plugin="pydicom")
        else:
            ds.file_meta.TransferSyntaxUID = syntax
        copies.append(folder / path.name)
        ds.save_as(copies[-1], enforce_file_format=True)
    return copies


def test_synthetic_pair_is_read_bit_identically_and_through_the_learnt_layout(synthetic_cohort):
    job = plan_inference(synthetic_cohort.dicom_dir).jobs[0]
    for study in (job.baseline, job.followup):
        for series in choose_series(study):
            ours, theirs = read_series(series.files), read_datasets(series.files)
            assert all(type(ds) is SliceHeader for ds in ours)
            assert_same_headers(ours, theirs)
            assert_same_volume(ours, theirs, pet=series.modality == "PT")
    reader = SeriesReader(_READ_TAG_SET)
    files = choose_series(job.baseline)[0].files
    for path in files:
        reader.read(path)
    # two files walked to learn which elements vary; every later one compared as runs of bytes
    assert reader.walked <= 3 and reader.followed == len(files) - reader.walked


def test_discovery_through_the_series_reader_equals_the_general_reader(synthetic_cohort, monkeypatch):
    files = [path for path in iter_files(synthetic_cohort.dicom_dir) if "SYN0001" in path.parts]
    files += [synthetic_cohort.dicom_dir.parent / "cohort.json", files[0].parent]  # not DICOM, a folder
    dicom._DISCOVERY_READER.followed = 0
    fast = [read_instance_header(path) for path in files]
    assert dicom._DISCOVERY_READER.followed > 0.9 * len(files)
    monkeypatch.setattr(dicom._DISCOVERY_READER, "read", lambda path: None)  # the general reader only
    assert fast == [read_instance_header(path) for path in files]


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, RLELossless])
def test_implicit_vr_and_rle_copies_are_read_bit_identically(tmp_path, syntax):
    files = write_series(tmp_path / "src", ramp((7, 6, 9)), header=pet_header())
    copies = rewrite(files, tmp_path / "copy", syntax)
    ours, theirs = read_series(copies), read_datasets(copies)
    assert all(type(ds) is SliceHeader for ds in ours)
    assert {ds.transfer_syntax for ds in ours} == {syntax}
    assert_same_headers(ours, theirs)
    assert_same_volume(ours, theirs, pet=True)
    np.testing.assert_allclose(load_series(copies).array, ramp((7, 6, 9)), atol=0.02)


def test_a_layout_that_changes_midway_is_followed_exactly(tmp_path):
    def edit(k: int, ds: pydicom.Dataset) -> None:
        if k >= 5:  # a longer value in an element that was constant so far, and one element more
            ds.AcquisitionTime = "110000.123456"
            ds.SeriesDescription = "PET AC after the bed move"
        if k == 7:  # a private block only on one slice
            ds.add_new((0x7053, 0x0010), "LO", PHILIPS_CREATOR)
            ds.add_new((0x7053, 0x1000), "DS", "0.00123")

    files = write_series(tmp_path, ramp((5, 4, 10)), header=pet_header(), edit=edit)
    reader = SeriesReader(_READ_TAG_SET)
    ours = [reader.read(path) for path in files]
    theirs = read_datasets(files)
    assert reader.walked > 2  # the changes sent files back to the element walk
    assert_same_headers(ours, theirs)
    assert [header_text(ds, "AcquisitionTime") for ds in ours] == ["110000"] * 5 + ["110000.123456"] * 5
    assert private_value(ours[7], 0x7053, 0x00, PHILIPS_CREATOR) == private_value(
        theirs[7], 0x7053, 0x00, PHILIPS_CREATOR
    )
    assert private_value(ours[6], 0x7053, 0x00, PHILIPS_CREATOR) is None
    assert_same_volume(read_series(files), read_datasets(files), pet=True)


def test_broken_files_in_a_series_fail_with_the_named_errors(tmp_path):
    files = write_series(tmp_path / "s", ramp((8, 8, 6)), header=pet_header())
    data = files[4].read_bytes()
    files[4].write_bytes(data[:-40])  # after the layout is learnt: the pixel data ends early
    with pytest.raises(UnreadableDicomError, match=rf"{files[4].name}: truncated pixel data"):
        read_series(files)
    files[4].write_bytes(data + b"\x00" * 4)  # a stray tail after the pixel data, as the general reader
    with pytest.raises(UnreadableDicomError, match=rf"{files[4].name}: the file ends inside"):
        read_series(files)
    files[4].write_bytes(data[:300])  # the header ends early
    with pytest.raises(UnreadableDicomError, match=files[4].name):
        read_series(files)
    files[4].write_text("not an image")
    with pytest.raises(NotDicomError, match=rf"{files[4].name}: not a DICOM file"):
        read_series(files)
    assert len(load_series_datasets(tmp_path / "s")) == 5  # a folder read skips the non-DICOM file
    files[4].unlink()
    with pytest.raises(UnreadableDicomError, match="cannot read"):
        read_series(files)


@pytest.fixture(scope="module")
def real_series(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The PET (and IBSI-cropped CT) series folders of STS_001 and the 17 SUV DROs, extracted."""
    root = tmp_path_factory.mktemp("realdata_series")
    for name in ("pet_sts001.tar.xz", "suv_dro.tar.xz"):
        with tarfile.open(realdata / name) as archive:
            archive.extractall(root, filter="data")
    folders = [root / "mirp_sts_001_fdg_pet" / "image", *sorted((root / "DRO").glob("DRO_*/PT"))]
    folders += [root / "mirp_sts_001_ibsi_cropped" / kind / "dicom" for kind in ("PET", "CT")]
    return folders


@pytest.mark.real
def test_real_exports_are_read_bit_identically(real_series):
    assert len(real_series) == 20
    fast = 0
    for folder in real_series:
        ours = load_series_datasets(folder)
        theirs = [ds for ds in read_datasets(iter_files(folder)) if series_skip_reason(ds) is None]
        fast += sum(type(ds) is SliceHeader for ds in ours)
        assert_same_headers(ours, theirs)
        assert_same_volume(ours, theirs, pet="CT" not in folder.parts)
    assert fast > 0.95 * sum(len(iter_files(folder)) for folder in real_series)
