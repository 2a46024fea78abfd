"""SUV from the headers by the plain QIBA formula reproduces the phantom's truth."""

from __future__ import annotations

import numpy as np
import pytest
from synth_readers import qiba_suv, read_csv, read_series, series_folders, voxel_index

from onconet.classes import response_category, response_class
from onconet.data.synthetic import generate_cohort


def _check_lesions_against_image(lesions, series) -> int:
    """Compare every present lesion's true SUVmax with the QIBA SUV image; returns how many were checked."""
    checked = 0
    for study in sorted({row["study_uid"] for row in lesions}):
        slices = read_series(series[(study, "PT")])
        suv = qiba_suv(slices)
        dy, dx = (float(v) for v in slices[0].PixelSpacing)
        dz = float(slices[1].ImagePositionPatient[2]) - float(slices[0].ImagePositionPatient[2])
        for row in (r for r in lesions if r["study_uid"] == study and float(r["suvmax_true"]) > 0):
            true = float(row["suvmax_true"])
            centre = (float(row["x_mm"]), float(row["y_mm"]), float(row["z_mm"]))
            k, j, i = voxel_index(slices, centre)
            assert suv[k, j, i] == pytest.approx(true, rel=0.01), row
            # The centre holds the lesion's maximum: nothing within the lesion (+1 voxel) is hotter.
            reach = float(row["diameter_mm"]) / 2 + max(dx, dy, dz)
            zz, yy, xx = np.ogrid[: suv.shape[0], : suv.shape[1], : suv.shape[2]]
            near = ((zz - k) * dz) ** 2 + ((yy - j) * dy) ** 2 + ((xx - i) * dx) ** 2 <= reach**2
            assert suv[near].max() == pytest.approx(true, rel=1e-3), row
            checked += 1
    return checked


def test_qiba_suv_at_lesion_centres_matches_truth(synthetic_cohort, cohort_series):
    lesions = read_csv(synthetic_cohort.lesions)
    assert _check_lesions_against_image(lesions, cohort_series) == sum(
        float(r["suvmax_true"]) > 0 for r in lesions
    )


def test_ge_style_site_with_late_series_time(tmp_path):
    """The GE-like site stamps the series after the acquisition: only the QIBA rule gives the truth."""
    paths = generate_cohort(tmp_path / "ge", patients=1, seed=3, sites=("community",), workers=1)
    series = series_folders(paths.dicom_dir)
    lesions = read_csv(paths.lesions)
    assert _check_lesions_against_image(lesions, series) > 0
    slices = read_series(series[(lesions[0]["study_uid"], "PT")])
    assert slices[0].Manufacturer.startswith("GE") and slices[0].SeriesTime > min(
        s.AcquisitionTime for s in slices
    )


def test_truth_table_is_consistent_with_lesions_and_classes(synthetic_cohort):
    lesions = read_csv(synthetic_cohort.lesions)
    truth = read_csv(synthetic_cohort.truth)
    for row in truth:
        mine = [r for r in lesions if r["patient_id"] == row["patient_id"]]
        base = [float(r["suvmax_true"]) for r in mine if r["study_uid"] == row["baseline_study_uid"]]
        follow = [float(r["suvmax_true"]) for r in mine if r["study_uid"] == row["followup_study_uid"]]
        assert 1 <= len(base) <= 6 and all(v > 0 for v in base)
        assert float(row["baseline_suvmax"]) == pytest.approx(max(base), abs=1e-6)
        assert float(row["followup_suvmax"]) == pytest.approx(max(follow, default=0.0), abs=1e-6)
        new = any(r["is_new"] == "1" for r in mine)
        assert row["new_lesion"] == str(int(new))
        assert all(r["timepoint"] == "followup" for r in mine if r["is_new"] == "1")
        category = response_category(
            float(row["baseline_suvmax"]),
            float(row["followup_suvmax"]),
            reference_suv=float(row["reference_suv"]),
            new_lesion=new,
        )
        assert row["category"] == category and row["label"] == response_class(category)
        assert 1.5 < float(row["reference_suv"]) < 3.0  # liver mean
        assert row["baseline_date"] < row["followup_date"]


def test_classes_are_balanced_and_some_cases_sit_near_thresholds(synthetic_cohort):
    truth = read_csv(synthetic_cohort.truth)
    labels = [row["label"] for row in truth]
    assert {label: labels.count(label) for label in set(labels)} == {
        "response": 4,
        "stable": 4,
        "progression": 4,
    }
    assert {row["category"] for row in truth} == {"CMR", "PMR", "SMD", "PMD"}
    exams = read_csv(synthetic_cohort.exams)
    assert any(row["near_threshold"] == "1" for row in exams)


def test_brain_or_bladder_is_often_hotter_than_every_lesion(synthetic_cohort):
    exams = read_csv(synthetic_cohort.exams)
    lesions = read_csv(synthetic_cohort.lesions)
    hotter = 0
    for exam in exams:
        top = max(
            (float(r["suvmax_true"]) for r in lesions if r["study_uid"] == exam["study_uid"]), default=0.0
        )
        hotter += float(exam["image_suvmax"]) > top
    assert hotter / len(exams) > 0.5
