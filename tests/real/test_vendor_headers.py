"""Real vendor headers: cornerstone's 8 header sets (known SUVbw factors) and single real PET slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from onconet.data.dicom import MissingSliceError, assemble_volume, discover, load_series_datasets
from onconet.data.suv import UnsupportedUnitsError, load_suv, suv_conversion, suv_scale_factors

pytestmark = pytest.mark.real

#: case -> (expected SUVbw factor, relative tolerance); MANIFEST.md
CORNERSTONE = {
    "BQML_AC_DT_lessThan_S_DT_SIEMENS": (0.0004069156854009332, 1e-6),
    "CPS_AND_BQML_AC_DT_-_S_DT": (0.00026503312764157046, 1e-6),
    "GE_MEDICAL_AND_BQML": (0.0005367387681819742, 1e-6),
    "PHILIPS_BQML": (0.0007463747013889488, 1e-6),
    "PHILIPS_CNTS_AND_BQML_SUV": (0.000551, 0.005),
    "PHILIPS_CNTS_AND_SUV": (0.000728, 0.005),
    "RADIOPHARM_DATETIME_UNDEFINED": (0.0003721089202818729, 1e-6),
    "SIEMENS": (0.00042748316187197236, 1e-6),
}
RADIOPHARMACEUTICAL_FIELDS = {
    "RadionuclideTotalDose",
    "RadionuclideHalfLife",
    "RadiopharmaceuticalStartTime",
    "RadiopharmaceuticalStartDateTime",
}
PHILIPS_ELEMENTS = {"SUVScaleFactor": 0x1000, "ActivityConcentrationScaleFactor": 0x1009}


def dataset_from_header(header: dict) -> Dataset:
    """A pydicom Dataset from one cornerstone instance: fields by keyword, the radiopharmaceutical fields in
    their sequence, ``PhilipsPETPrivateGroup`` as private tags (7053,1000) and (7053,1009)."""
    ds, radiopharmaceutical = Dataset(), Dataset()
    for keyword, value in header.items():
        if keyword == "PhilipsPETPrivateGroup":
            if value:
                ds.add_new((0x7053, 0x0010), "LO", "Philips PET Private Group")
            for name, element in PHILIPS_ELEMENTS.items():
                if name in value:
                    ds.add_new((0x7053, element), "DS", str(value[name]).strip())
        elif keyword in RADIOPHARMACEUTICAL_FIELDS:
            setattr(radiopharmaceutical, keyword, value)
        else:
            setattr(ds, keyword, value)
    ds.RadiopharmaceuticalInformationSequence = [radiopharmaceutical]
    return ds


@pytest.mark.parametrize("case", sorted(CORNERSTONE))
def test_cornerstone_suvbw_factor(case: str, realdata_root: Path) -> None:
    path = realdata_root / "cornerstone_calculate_suv" / f"{case}-instances.json"
    datasets = [dataset_from_header(header) for header in json.loads(path.read_text())]
    expected, tolerance = CORNERSTONE[case]
    factors = suv_scale_factors(datasets, kind="bw")
    assert factors.shape == (len(datasets),)
    np.testing.assert_allclose(factors, expected, rtol=tolerance)


def test_cornerstone_series_time_after_acquisition_takes_the_qiba_path(realdata_root: Path) -> None:
    path = realdata_root / "cornerstone_calculate_suv" / "CPS_AND_BQML_AC_DT_-_S_DT-instances.json"
    conversion = suv_conversion([dataset_from_header(h) for h in json.loads(path.read_text())])
    assert any("earliest AcquisitionDate" in note for note in conversion.notes)


@pytest.mark.parametrize("name", ["NM-PetIm-GE.dcm", "NM-PetIm-Siemens.dcm", "NM-PetIm-Siemens-3.dcm"])
def test_single_real_slices_load(name: str, realdata_root: Path) -> None:
    suv = load_suv(realdata_root / "openrem_pet_headers" / name)
    assert suv.array.shape[2] == 1 and np.isfinite(suv.array).all()
    # Whole-body FDG: body values between background and a few tens of SUV.
    assert suv.array.min() >= 0.0 and 1.0 < suv.array.max() < 60.0


def test_ge_slice_factor(realdata_root: Path) -> None:
    """GE Discovery 690: series time 13:31:55, injection 12:41:00 of 221.596288 MBq F-18, 74 kg."""
    suv = load_suv(realdata_root / "openrem_pet_headers" / "NM-PetIm-GE.dcm")
    expected = 74000.0 / (221596288.0 * 2.0 ** (-3055.0 / 6586.2001953125))
    np.testing.assert_allclose(suv.factors, expected, rtol=1e-9)


def test_propcps_raises_the_named_error(realdata_root: Path) -> None:
    with pytest.raises(UnsupportedUnitsError, match="PROPCPS"):
        load_suv(realdata_root / "openrem_pet_headers" / "NM-PetIm-Siemens-2.dcm")


def test_two_distant_slices_of_one_series_are_not_a_volume(realdata_root: Path) -> None:
    """Siemens-3 and its 'sameseries' sibling are 36 mm apart in a 3 mm series: slices are missing."""
    folder = realdata_root / "openrem_pet_headers"
    pair = load_series_datasets(
        [folder / "NM-PetIm-Siemens-3.dcm", folder / "NM-PetIm-Siemens-3-sameseries.dcm"]
    )
    with pytest.raises(MissingSliceError, match="missing"):
        assemble_volume(pair)


@pytest.mark.parametrize("name", ["1.dcm", "2.dcm"])
def test_acrin_flt_slices_load(name: str, realdata_root: Path) -> None:
    """FLT PET without Manufacturer; 2.dcm is DYNAMIC with the injection at the series time (no decay)."""
    suv = load_suv(realdata_root / "acrin_flt_breast_suyashkumar" / name)
    assert np.isfinite(suv.array).all() and suv.array.max() > 0.5
    if name == "2.dcm":
        assert abs(float(suv.conversion.decay_seconds[0])) < 1.0


def test_discovery_sorts_the_vendor_folder(realdata_root: Path) -> None:
    found = discover(realdata_root / "openrem_pet_headers")
    reasons = [s.reason for s in found.skipped]
    assert reasons.count("structured report (SR)") == 2
    assert "not a DICOM file" in reasons  # the licence text
    pet_series = [s for study in found.studies.values() for s in study.series_of("PT")]
    assert sorted(len(s.files) for s in pet_series) == [1, 1, 1, 2]
