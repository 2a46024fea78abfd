"""SUV conversion rules (QIBA) on headers built field by field, and on series written to disk."""

from __future__ import annotations

import copy
import doctest
import importlib
from pathlib import Path

import numpy as np
import pytest
from dicom_factory import F18_HALF_LIFE, expected_bw_factor, pet_header, ramp, write_series
from pydicom.dataset import Dataset

from onconet.data import body_size
from onconet.data.dicom import load_series
from onconet.data.suv import (
    InconsistentSeriesHeaderError,
    MissingBodySizeError,
    MissingDoseError,
    MissingTimingError,
    MissingWeightError,
    UncorrectedImageError,
    UnsupportedUnitsError,
    frame_mean_activity_time,
    load_suv,
    suv_conversion,
    suv_from_volume,
    suv_scale_factors,
)
from onconet.errors import SuvError


def pet_slices(n: int = 3, **overrides) -> list[Dataset]:
    """``n`` PET slice headers (BQML, START, scan 11:00, injection 10:00) with ``overrides`` applied."""
    slices = []
    for k in range(n):
        ds = Dataset()
        ds.Modality = "PT"
        ds.SeriesInstanceUID = "1.2.3"
        for keyword, value in {**pet_header(), **overrides}.items():
            if value is None:
                continue
            setattr(ds, keyword, copy.deepcopy(value))
        ds.InstanceNumber = k + 1
        slices.append(ds)
    return slices


def injection(ds: Dataset) -> Dataset:
    return ds.RadiopharmaceuticalInformationSequence[0]


def test_bqml_start_is_weight_over_decayed_dose() -> None:
    np.testing.assert_allclose(suv_scale_factors(pet_slices()), expected_bw_factor(), rtol=1e-12)


def test_dose_written_in_mbq_is_read_as_mbq_and_said() -> None:
    slices = pet_slices()
    for ds in slices:
        injection(ds).RadionuclideTotalDose = "370"
    conversion = suv_conversion(slices)
    np.testing.assert_allclose(conversion.factors, expected_bw_factor(), rtol=1e-12)
    assert any("MBq" in note for note in conversion.notes)


def test_injection_before_midnight_scan_after() -> None:
    slices = pet_slices(SeriesDate="20250315", SeriesTime="003000", AcquisitionDate="20250315",
                        AcquisitionTime="003000")  # fmt: skip
    for ds in slices:
        del injection(ds).RadiopharmaceuticalStartDateTime
        injection(ds).RadiopharmaceuticalStartTime = "233000"
    np.testing.assert_allclose(suv_scale_factors(slices), expected_bw_factor(seconds=3600), rtol=1e-12)


def test_start_datetime_only_and_time_only_agree() -> None:
    with_datetime, with_time = pet_slices(), pet_slices()
    for ds in with_datetime:
        del injection(ds).RadiopharmaceuticalStartTime
    for ds in with_time:
        del injection(ds).RadiopharmaceuticalStartDateTime
    np.testing.assert_allclose(suv_scale_factors(with_datetime), suv_scale_factors(with_time), rtol=1e-12)


def test_decay_correction_admin_does_not_decay() -> None:
    factors = suv_scale_factors(pet_slices(DecayCorrection="ADMIN"))
    np.testing.assert_allclose(factors, 70000.0 / 3.7e8, rtol=1e-12)


def test_decay_correction_none_decays_each_slice_to_its_frame() -> None:
    slices = pet_slices(2, DecayCorrection="NONE", CorrectedImage=["ATTN"], ActualFrameDuration=120000)
    slices[1].AcquisitionTime = "110500"
    factors = suv_scale_factors(slices)
    mean = frame_mean_activity_time(120.0, F18_HALF_LIFE)
    np.testing.assert_allclose(factors, [expected_bw_factor(seconds=3600 + mean),
                                         expected_bw_factor(seconds=3900 + mean)], rtol=1e-9)  # fmt: skip


def test_series_time_after_acquisition_uses_ge_private_scan_time() -> None:
    slices = pet_slices(SeriesTime="120000", AcquisitionTime="110500")
    for ds in slices:
        ds.private_block(0x0009, "GEMS_PETD_01", create=True).add_new(0x0D, "DT", "20250314110000.00")
    np.testing.assert_allclose(suv_scale_factors(slices), expected_bw_factor(seconds=3600), rtol=1e-12)


def test_series_time_after_acquisition_back_computes_the_frame_start() -> None:
    """QIBA (Siemens): scan start = acquisition - FrameReferenceTime + mean-activity time of the frame."""
    slices = pet_slices(2, SeriesTime="120000", ActualFrameDuration=120000)
    mean = frame_mean_activity_time(120.0, F18_HALF_LIFE)
    for k, ds in enumerate(slices):  # bed k starts 2 min after bed k-1, both referenced to 11:00
        ds.AcquisitionTime = f"110{2 * k}00"
        ds.FrameReferenceTime = f"{1000.0 * (120.0 * k + mean):.4f}"
    np.testing.assert_allclose(suv_scale_factors(slices), expected_bw_factor(seconds=3600), rtol=1e-9)


def test_series_time_after_acquisition_without_frame_times_uses_the_earliest_acquisition() -> None:
    slices = pet_slices(2, SeriesTime="120000")
    slices[0].AcquisitionTime, slices[1].AcquisitionTime = "110500", "110000"
    conversion = suv_conversion(slices)
    np.testing.assert_allclose(conversion.factors, expected_bw_factor(seconds=3600), rtol=1e-12)
    assert any("earliest" in note for note in conversion.notes)


def test_any_half_life() -> None:
    slices = pet_slices()
    for ds in slices:
        injection(ds).RadionuclideHalfLife = "4057.7"  # Ga-68
    expected = 70000.0 / (3.7e8 * 2.0 ** (-3600.0 / 4057.7))
    np.testing.assert_allclose(suv_scale_factors(slices), expected, rtol=1e-12)


def test_philips_counts() -> None:
    with_suv_factor = pet_slices(Units="CNTS")
    for ds in with_suv_factor:
        block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        block.add_new(0x00, "DS", "0.00042")
        block.add_new(0x09, "DS", "2.5")
    np.testing.assert_allclose(suv_scale_factors(with_suv_factor), 0.00042)
    activity_only = pet_slices(Units="CNTS")
    for ds in activity_only:
        ds.private_block(0x7053, "Philips PET Private Group", create=True).add_new(0x09, "DS", "2.5")
    np.testing.assert_allclose(suv_scale_factors(activity_only), 2.5 * expected_bw_factor(), rtol=1e-12)
    with pytest.raises(UnsupportedUnitsError, match="7053,1000"):
        suv_scale_factors(pet_slices(Units="CNTS"))


def test_a_private_block_of_another_creator_is_not_read() -> None:
    slices = pet_slices(Units="CNTS")
    for ds in slices:
        ds.private_block(0x7053, "SOMEONE ELSE", create=True).add_new(0x00, "DS", "0.5")
    with pytest.raises(UnsupportedUnitsError):
        suv_scale_factors(slices)


def test_gml_renormalises_from_its_suv_type() -> None:
    slices = pet_slices(Units="GML", SUVType="LBMJAMES128")
    lbm = body_size.lbm_james(70.0, 1.75, "M")
    np.testing.assert_allclose(suv_scale_factors(slices, "bw"), 70.0 / lbm, rtol=1e-12)
    np.testing.assert_allclose(suv_scale_factors(slices, "lbm_james"), 1.0)
    np.testing.assert_allclose(suv_scale_factors(pet_slices(Units="GML"), "bw"), 1.0)  # SUVType absent: BW


def test_kinds_relate_through_body_size() -> None:
    slices = pet_slices(PatientSex="F")
    bw = suv_scale_factors(slices, "bw")[0]
    checks = {
        "lbm_james": body_size.lbm_james(70.0, 1.75, "F") / 70.0,
        "lbm_janma": body_size.lbm_janmahasatian(70.0, 1.75, "F") / 70.0,
        "ibw": body_size.ideal_body_weight(1.75, "F") / 70.0,
        "bsa": body_size.bsa_du_bois(70.0, 1.75) * 1e4 / 70000.0,
        "bqml": 3.7e8 / 70000.0,
    }
    for kind, ratio in checks.items():
        np.testing.assert_allclose(suv_scale_factors(slices, kind)[0], bw * ratio, rtol=1e-12, err_msg=kind)


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"PatientWeight": None}, MissingWeightError, "PatientWeight"),
        ({"PatientWeight": "0"}, MissingWeightError, "PatientWeight"),
        ({"Units": "PROPCPS"}, UnsupportedUnitsError, "PROPCPS"),
        ({"Units": None}, UnsupportedUnitsError, "Units"),
        ({"CorrectedImage": ["DECY", "SCAT"]}, UncorrectedImageError, "ATTN"),
        ({"CorrectedImage": None}, UncorrectedImageError, "CorrectedImage"),
        ({"DecayCorrection": "SOMETIME"}, MissingTimingError, "DecayCorrection"),
        ({"SeriesTime": None, "AcquisitionTime": None}, MissingTimingError, "SeriesTime"),
    ],
)
def test_bad_headers_raise_named_errors(overrides: dict, error: type, field: str) -> None:
    with pytest.raises(error, match=field):
        suv_scale_factors(pet_slices(**overrides))


def test_missing_dose_half_life_or_injection_time() -> None:
    for keyword, error in [
        ("RadionuclideTotalDose", MissingDoseError),
        ("RadionuclideHalfLife", MissingTimingError),
    ]:
        slices = pet_slices()
        for ds in slices:
            delattr(injection(ds), keyword)
        with pytest.raises(error, match=keyword):
            suv_scale_factors(slices)
    slices = pet_slices()
    for ds in slices:
        del injection(ds).RadiopharmaceuticalStartTime
        del injection(ds).RadiopharmaceuticalStartDateTime
    with pytest.raises(MissingTimingError, match="RadiopharmaceuticalStartTime"):
        suv_scale_factors(slices)


def test_injection_after_the_scan_is_an_error() -> None:
    slices = pet_slices()
    for ds in slices:
        injection(ds).RadiopharmaceuticalStartDateTime = "20250314120000"
    with pytest.raises(MissingTimingError, match="after the scan"):
        suv_scale_factors(slices)


def test_lean_body_mass_needs_height_and_sex() -> None:
    with pytest.raises(MissingBodySizeError, match="PatientSize"):
        suv_scale_factors(pet_slices(PatientSize=None), "lbm_james")
    with pytest.raises(MissingBodySizeError, match="PatientSex"):
        suv_scale_factors(pet_slices(PatientSex=""), "ibw")
    suv_scale_factors(pet_slices(PatientSize=None), "bw")  # body weight needs neither


def test_series_fields_must_agree_between_slices() -> None:
    slices = pet_slices()
    slices[2].PatientWeight = "71"
    with pytest.raises(InconsistentSeriesHeaderError, match="PatientWeight"):
        suv_scale_factors(slices)
    slices = pet_slices()
    injection(slices[1]).RadionuclideTotalDose = "4.1e8"
    with pytest.raises(InconsistentSeriesHeaderError, match="RadionuclideTotalDose"):
        suv_scale_factors(slices)


def test_unknown_kind() -> None:
    with pytest.raises(SuvError, match="unknown SUV kind"):
        suv_scale_factors(pet_slices(), "lean")


def test_load_suv_multiplies_rescaled_values_per_slice(tmp_path: Path) -> None:
    values = ramp((5, 4, 3)) * 10.0
    write_series(tmp_path, values, slopes=np.array([0.5, 0.25, 0.2]), header=pet_header())
    suv = load_suv(tmp_path)
    np.testing.assert_allclose(suv.factors, expected_bw_factor(), rtol=1e-12)
    np.testing.assert_allclose(suv.array, values * expected_bw_factor(), rtol=1e-5, atol=1e-4)
    assert suv.array.dtype == np.float32 and suv.kind == "bw"


def test_suv_needs_a_pet(tmp_path: Path) -> None:
    write_series(tmp_path, ramp((3, 3, 3)), modality="CT")
    with pytest.raises(SuvError, match="not PT"):
        suv_from_volume(load_series(tmp_path))


@pytest.mark.parametrize(
    "module",
    ["onconet.data.suv", "onconet.data.body_size", "onconet.data.dicom_datetime", "onconet.data.header"],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_philips_factors_read_once_per_distinct_private_group_match_every_slice(tmp_path: Path) -> None:
    import pydicom

    from onconet.data.dicom import load_series_datasets
    from onconet.data.suv import PHILIPS_CREATOR, private_value, private_values

    write_series(tmp_path, ramp((4, 3, 5)) * 10.0, header=pet_header())
    files = sorted(tmp_path.glob("*.dcm"))
    for index, path in enumerate(files):  # a Philips counts series; one slice has its own SUV factor
        ds = pydicom.dcmread(path)
        ds.Units = "CNTS"
        block = ds.private_block(0x7053, PHILIPS_CREATOR, create=True)
        block.add_new(0x00, "DS", "0.00051" if index == 2 else "0.00042")
        block.add_new(0x09, "DS", "2.5")
        ds.save_as(path)
    slices = load_series_datasets(tmp_path)  # the series reader's raw slices
    assert len(slices) == len(files) and all(type(s).__name__ == "SliceHeader" for s in slices)
    for offset in (0x00, 0x09):
        assert private_values(slices, 0x7053, offset, PHILIPS_CREATOR) == [
            private_value(s, 0x7053, offset, PHILIPS_CREATOR) for s in slices
        ]
    by_name = {Path(s.filename).name: s for s in slices}
    plain = [pydicom.dcmread(path) for path in files]
    ours = suv_conversion([by_name[path.name] for path in files]).factors
    np.testing.assert_array_equal(ours, suv_conversion(plain).factors)
    assert sorted(set(ours.tolist())) == [0.00042, 0.00051]
