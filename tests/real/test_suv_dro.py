"""The 17 SUV digital reference objects (IBSI SUV manual, oncoray/suv_computation): SUV 0.2 / 1 / 4.

Inside each DRO's NIfTI mask the SUV must be min 0.20, median 1.00, max 4.00 within 0.5 %. The mask's affine
is compared with ours first, so the geometry is tested too. DRO_2_1, DRO_2_2 and DRO_2_3 store an SUV of the
kind they name (SUL James, SUV by ideal body weight, SUVbsa); the 0.2 / 1 / 4 they expect are those values
re-normalised to body weight, so the test asks for ``bw`` and also checks that asking for the stored kind
returns the stored values unchanged.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from onconet.data.dicom import load_series
from onconet.data.rtstruct import rasterise_roi, roi_names
from onconet.data.suv import load_suv, suv_from_volume

pytestmark = pytest.mark.real

DRO_IDS = [
    *(f"DRO_{case}" for case in ("0_0", "1_0", "2_0", "2_1", "2_2", "2_3", "2_4", "2_5", "3_0", "3_1")),
    *(f"DRO_{case}" for case in ("3_2", "3_3", "3_4", "4_0", "4_1", "4_2", "5_0")),
]
STORED_KIND = {"DRO_2_1": "lbm_james", "DRO_2_2": "ibw", "DRO_2_3": "bsa"}
TOLERANCE = 0.005


def _expected(realdata: Path) -> dict[str, tuple[float, float, float]]:
    with open(realdata / "suv_dro_expected.csv", newline="") as handle:
        return {
            row["ID"]: (
                float(row["SUVmin_expected"]),
                float(row["SUVmed_expected"]),
                float(row["SUVmax_expected"]),
            )
            for row in csv.DictReader(handle)
        }


def test_the_list_has_the_seventeen_cases(realdata: Path) -> None:
    assert sorted(_expected(realdata)) == sorted(DRO_IDS)


@pytest.mark.parametrize("dro", DRO_IDS)
def test_dro_suv_inside_mask(dro: str, dro_root: Path, realdata: Path) -> None:
    mask_image = nib.load(dro_root / dro / "mask" / "DRO_mask.nii.gz")
    suv = load_suv(dro_root / dro / "PT", kind="bw")
    np.testing.assert_allclose(suv.affine, mask_image.affine, atol=1e-6)
    assert suv.array.shape == mask_image.shape
    values = suv.array[np.asarray(mask_image.dataobj) > 0]
    measured = np.array([values.min(), np.median(values), values.max()])
    expected = np.array(_expected(realdata)[dro])
    tolerance = TOLERANCE * expected
    if dro == "DRO_2_3":
        # The stored SUVbsa is quantised to 0.01 cm²/mL (RescaleSlope 0.01, stored 5 / 26 / 105), which is
        # 4 % of the 0.2 case: 0.5 % cannot be reached there. Allow one stored step, converted to SUVbw.
        tolerance = np.maximum(tolerance, 0.01 * suv.factors.max())
    np.testing.assert_array_less(np.abs(measured - expected), tolerance, err_msg=f"{dro}: {measured}")


@pytest.mark.parametrize("dro", sorted(STORED_KIND))
def test_dro_stored_kind_is_returned_unchanged(dro: str, dro_root: Path) -> None:
    volume = load_series(dro_root / dro / "PT")
    stored = volume.array.copy()
    suv = suv_from_volume(volume, STORED_KIND[dro])
    np.testing.assert_array_equal(suv.factors, 1.0)
    np.testing.assert_array_equal(suv.array, stored)


def test_dro_rtstruct_lies_inside_the_mask(dro_root: Path) -> None:
    """The RTSTRUCT rasterised through our affine falls inside the DRO's NIfTI mask (geometry agrees)."""
    suv = load_suv(dro_root / "DRO_0_0" / "PT")
    rtstruct = next((dro_root / "DRO_0_0" / "RS").glob("*.dcm"))
    roi = rasterise_roi(rtstruct, roi_names(rtstruct)[0], suv.affine, suv.array.shape)
    mask = np.asarray(nib.load(dro_root / "DRO_0_0" / "mask" / "DRO_mask.nii.gz").dataobj) > 0
    assert roi.sum() > 0.8 * mask.sum()
    assert not np.any(roi & ~mask)
    np.testing.assert_allclose(np.median(suv.array[roi]), 1.0, rtol=TOLERANCE)
