"""STS_001 (TCIA Soft-tissue-Sarcoma, via oncoray/mirp): a real GE FDG PET, its RTSTRUCT and a cropped CT.

The ROI ``GTV_Mass`` is rasterised through our affine, so the SUV figures below test the geometry as well as
the conversion. Expected ranges are MIRP's own test values (MANIFEST.md).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest

from onconet.data.dicom import MixedFrameOfReferenceError, Volume, load_series
from onconet.data.resample import AIR_HU, resample_ct_to_pet, resample_to_grid
from onconet.data.rtstruct import rasterise_roi
from onconet.data.suv import load_suv, suv_from_volume

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def gtv_mass(sts_pet_volume: Volume, realdata_root: Path) -> np.ndarray:
    rtstruct = realdata_root / "mirp_sts_001_fdg_pet" / "mask" / "1-1.dcm"
    return rasterise_roi(
        rtstruct,
        "GTV_Mass",
        sts_pet_volume.affine,
        sts_pet_volume.array.shape,
        sts_pet_volume.frame_of_reference_uid,
    )


def _suv(volume: Volume, kind: str) -> np.ndarray:
    return suv_from_volume(copy.copy(volume), kind).array


def test_header_as_documented(sts_pet_volume: Volume) -> None:
    first = sts_pet_volume.datasets[0]
    assert sts_pet_volume.array.shape == (128, 128, 267)
    assert float(first.PatientWeight) == 71.0
    assert str(first.Units) == "BQML" and str(first.DecayCorrection) == "START"
    np.testing.assert_allclose(sts_pet_volume.spacing, (4.6875, 4.6875, 3.27), atol=1e-3)


def test_suvbw_max_in_gtv_mass(sts_pet_volume: Volume, gtv_mass: np.ndarray) -> None:
    suv = _suv(sts_pet_volume, "bw")[gtv_mass]
    assert gtv_mass.sum() > 1000
    assert 7.9 < suv.max() < 8.0
    assert 0.15 < suv.min() < 0.20


@pytest.mark.parametrize(
    ("kind", "low", "high", "unit_factor"),
    [
        ("bqml", 43300.0, 43400.0, 1.0),  # Bq/mL decay-corrected to the injection
        ("lbm_james", 5.9, 6.1, 1.0),
        ("lbm_janma", 5.8, 5.9, 1.0),
        # MIRP's SUVbsa figure is in m²/L; ours is the DICOM unit cm²/mL, ten times larger.
        ("bsa", 0.195, 0.200, 0.1),
        ("ibw", 6.6, 6.7, 1.0),
    ],
)
def test_other_normalisations_in_gtv_mass(
    sts_pet_volume: Volume, gtv_mass: np.ndarray, kind: str, low: float, high: float, unit_factor: float
) -> None:
    assert low < _suv(sts_pet_volume, kind)[gtv_mass].max() * unit_factor < high


def test_load_suv_reads_the_folder(sts_pet_dir: Path, sts_pet_volume: Volume) -> None:
    suv = load_suv(sts_pet_dir)
    assert suv.array.dtype == np.float32 and suv.factors.shape == (267,)
    np.testing.assert_allclose(suv.affine, sts_pet_volume.affine)
    # 11:20:11 - 10:35:00 of F-18 decay, 71 kg, 388.777472 MBq
    expected = 71000.0 / (388777472.0 * 2.0 ** (-2711.0 / 6588.0))
    np.testing.assert_allclose(suv.factors, expected, rtol=1e-9)


def test_cropped_suv_pet_agrees_with_ours(realdata_root: Path, sts_pet_volume: Volume) -> None:
    """MIRP's cropped copy is already SUVbw (Units GML, DecayCorrection ADMIN); ours, resampled onto its
    grid, must give the same values voxel by voxel."""
    cropped = load_suv(realdata_root / "mirp_sts_001_ibsi_cropped" / "PET" / "dicom" / "image")
    assert cropped.conversion.units == "GML"
    ours = resample_to_grid(
        _suv(sts_pet_volume, "bw"), sts_pet_volume.affine, cropped.affine, cropped.array.shape
    )
    np.testing.assert_allclose(ours, cropped.array, atol=2e-3)


def test_cropped_ct_resamples_onto_the_pet_grid(
    realdata_root: Path, sts_pet_volume: Volume, gtv_mass: np.ndarray
) -> None:
    ct_root = realdata_root / "mirp_sts_001_ibsi_cropped" / "CT" / "dicom"
    ct = load_series(ct_root / "image")
    shape = sts_pet_volume.array.shape
    on_pet = resample_ct_to_pet(ct, sts_pet_volume.affine, shape, sts_pet_volume.frame_of_reference_uid)
    assert on_pet.shape == shape and on_pet.dtype == np.float32
    covered = on_pet > AIR_HU
    # The covered part of the PET grid has the CT's volume (a 5 cm crop around the tumour).
    ct_ml = np.prod(ct.array.shape) * np.prod(ct.spacing)
    assert covered.sum() * np.prod(sts_pet_volume.spacing) == pytest.approx(ct_ml, rel=0.1)
    assert np.all(on_pet[0, 0, :] == AIR_HU)  # PET corner, far outside the CT crop
    # The tumour is soft tissue on CT.
    assert -50.0 < np.median(on_pet[gtv_mass]) < 100.0
    # The CT's own GTV contour, rasterised on the CT grid and resampled, lands on the PET's GTV.
    ct_gtv = rasterise_roi(ct_root / "mask" / "RS.dcm", "GTV_Mass_CT", ct.affine, ct.array.shape)
    moved = resample_to_grid(ct_gtv.astype(np.float32), ct.affine, sts_pet_volume.affine, shape) >= 0.5
    dice = 2.0 * (moved & gtv_mass).sum() / (moved.sum() + gtv_mass.sum())
    assert dice > 0.95


def test_ct_in_another_frame_of_reference_is_refused(realdata_root: Path, sts_pet_volume: Volume) -> None:
    ct = load_series(realdata_root / "mirp_sts_001_ibsi_cropped" / "CT" / "dicom" / "image")
    ct.frame_of_reference_uid = "1.2.3.4.5"
    with pytest.raises(MixedFrameOfReferenceError, match="FrameOfReferenceUID"):
        resample_ct_to_pet(ct, sts_pet_volume.affine, (8, 8, 8), sts_pet_volume.frame_of_reference_uid)


def test_volume_and_geometry_agree_with_simpleitk(sts_pet_dir: Path, sts_pet_volume: Volume) -> None:
    """An independent reader (ITK/GDCM): same rescaled values at the same world positions."""
    sitk = pytest.importorskip("SimpleITK")
    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(sts_pet_dir)))
    image = reader.Execute()
    np.testing.assert_allclose(
        sitk.GetArrayFromImage(image).transpose(2, 1, 0), sts_pet_volume.array, rtol=1e-6, atol=0.02
    )
    for index in [(0, 0, 0), (127, 0, 0), (0, 127, 0), (0, 0, 266), (40, 70, 130)]:
        x, y, z = image.TransformIndexToPhysicalPoint(index)
        np.testing.assert_allclose((sts_pet_volume.affine @ [*index, 1])[:3], [-x, -y, z], atol=1e-3)


def test_ingest_picks_the_original_pet_and_the_ct(
    realdata_root: Path, tmp_path: Path, sts_pet_volume: Volume
) -> None:
    """The STS_001 export: original PET, a cropped SUV copy, a cropped CT and three RTSTRUCTs in one study."""
    from onconet.data.cache import read_csv, read_nifti
    from onconet.data.ingest import ingest

    export = tmp_path / "export"
    for name in ("mirp_sts_001_fdg_pet", "mirp_sts_001_ibsi_cropped"):
        shutil.copytree(realdata_root / name, export / name)
    summary = ingest(export, tmp_path / "cache", progress=False)
    assert len(summary.ok) == 1 and not summary.failures
    rtstruct_files = [int(s.detail.split()[0]) for s in summary.skipped if "RTSTRUCT" in s.reason]
    assert sum(rtstruct_files) == 3
    row = read_csv(tmp_path / "cache" / "manifest.csv")[0]
    assert row["pet_series_uid"] == sts_pet_volume.series_uid  # not MIRP's derived cropped copy
    assert row["study_date"] == "2000-09-07" and row["shape"] == "128x128x267" and row["manufacturer"]
    suv, affine = read_nifti(tmp_path / "cache" / row["pet_path"])
    np.testing.assert_allclose(affine, sts_pet_volume.affine, atol=1e-4)
    assert 7.9 < suv.max() < 70.0
    ct, _ = read_nifti(tmp_path / "cache" / row["ct_path"])
    assert ct.shape == suv.shape and (ct > AIR_HU).sum() > 50_000
