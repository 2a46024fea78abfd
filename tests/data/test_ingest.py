"""``onconet ingest`` end to end on the synthetic cohort: SUV against the truth, pairs, cache, bad studies."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest

from onconet.cli import main
from onconet.data.cache import MANIFEST_COLUMNS, PAIRS_COLUMNS, read_csv, read_nifti
from onconet.data.ingest import IngestSummary, ingest


@pytest.fixture(scope="module")
def ingested(synthetic_cohort, tmp_path_factory) -> tuple[Path, IngestSummary]:
    """The 12-patient cohort ingested once (two worker processes)."""
    cache = tmp_path_factory.mktemp("ingest_cache")
    return cache, ingest(synthetic_cohort.dicom_dir, cache, workers=2, progress=False)


def test_every_study_comes_through(ingested, synthetic_cohort) -> None:
    cache, summary = ingested
    exams = read_csv(synthetic_cohort.truth)
    assert len(summary.outcomes) == 2 * len(exams) and len(summary.ok) == len(summary.outcomes)
    rows = read_csv(cache / "manifest.csv")
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    sites = {t["patient_id"]: t["site"] for t in exams}
    for row in rows:
        assert row["status"] == "ok" and row["error"] == "" and row["suv_kind"] == "bw"
        assert row["site"] == sites[row["patient_id"]] and row["manufacturer"]
        assert float(row["suv_factor_min"]) > 0 and row["shape"].count("x") == 2
        assert (cache / row["pet_path"]).is_file() and (cache / row["ct_path"]).is_file()


def test_suv_at_lesion_centres_matches_the_truth(ingested, synthetic_cohort) -> None:
    cache, _ = ingested
    pet_of = {r["study_uid"]: r["pet_path"] for r in read_csv(cache / "manifest.csv")}
    images: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    errors = []
    for lesion in read_csv(synthetic_cohort.lesions):
        truth = float(lesion["suvmax_true"])
        if truth <= 0:  # a lesion that has gone
            continue
        path = pet_of[lesion["study_uid"]]
        array, affine = images.setdefault(path, read_nifti(cache / path))
        lps = [float(lesion[key]) for key in ("x_mm", "y_mm", "z_mm")]
        ijk = np.linalg.inv(affine) @ [-lps[0], -lps[1], lps[2], 1.0]  # LPS -> RAS -> voxel
        i, j, k = np.rint(ijk[:3]).astype(int)
        errors.append(array[i, j, k] / truth - 1.0)
    assert len(errors) > 50
    assert np.max(np.abs(errors)) < 0.03


def test_pairs_match_the_truth_table(ingested, synthetic_cohort) -> None:
    cache, summary = ingested
    truth = read_csv(synthetic_cohort.truth)
    pairs = read_csv(cache / "pairs.csv")
    assert list(pairs[0]) == list(PAIRS_COLUMNS)
    key = ("patient_id", "site", "baseline_study_uid", "followup_study_uid", "baseline_date", "followup_date")
    assert sorted(tuple(p[k] for k in key) for p in pairs) == sorted(tuple(t[k] for k in key) for t in truth)
    assert len(summary.pairs) == len(truth)


def test_ct_is_on_the_pet_grid(ingested) -> None:
    cache, _ = ingested
    row = read_csv(cache / "manifest.csv")[0]
    suv, suv_affine = read_nifti(cache / row["pet_path"])
    ct, ct_affine = read_nifti(cache / row["ct_path"])
    assert ct.shape == suv.shape and np.allclose(ct_affine, suv_affine)
    assert ct.min() >= -1024.0 and np.percentile(ct, 99) > 0.0  # air around a body with tissue and bone
    assert np.median(ct[suv > 1.0]) > -200.0  # where FDG is taken up, the CT shows tissue


def test_rerun_uses_the_cache_and_recomputes_only_what_changed(ingested, synthetic_cohort) -> None:
    cache, _ = ingested
    manifest_rows = read_csv(cache / "manifest.csv")
    nifti = cache / manifest_rows[0]["pet_path"]
    written = nifti.stat().st_mtime_ns
    again = ingest(synthetic_cohort.dicom_dir, cache, progress=False)
    assert all(o.from_cache for o in again.outcomes) and len(again.ok) == len(manifest_rows)
    assert nifti.stat().st_mtime_ns == written
    assert read_csv(cache / "manifest.csv") == manifest_rows


def _copy_patients(cohort_dicom: Path, dest: Path, patients: list[str]) -> dict[str, list[Path]]:
    """Copy patients' folders; return each patient's study folders in date order."""
    studies = {}
    for patient in patients:
        shutil.copytree(cohort_dicom / patient, dest / patient)
        studies[patient] = sorted((dest / patient).iterdir())  # folder names start with the study date
    return studies


def _pet_files(study_dir: Path) -> list[Path]:
    return sorted(
        f for f in study_dir.rglob("*.dcm") if pydicom.dcmread(f, stop_before_pixels=True).Modality == "PT"
    )


def _edit_all(paths: list[Path], change) -> None:
    for path in paths:
        ds = pydicom.dcmread(path)
        change(ds)
        ds.save_as(path)


def test_bad_studies_fail_with_their_own_reasons_and_the_rest_come_through(
    synthetic_cohort, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    site = {t["patient_id"]: t["site"] for t in read_csv(synthetic_cohort.truth)}
    internal = sorted(p for p in site if site[p] == "internal")  # BQML: SUV needs weight and dose
    external = sorted(p for p in site if site[p] == "external")  # Philips CNTS with SUV factor
    cut, no_weight_patient, no_dose_patient = internal[:3]
    gap, mixed = external[:2]
    patients = [cut, gap, no_weight_patient, no_dose_patient, mixed]
    dicom = tmp_path / "export"
    studies = _copy_patients(synthetic_cohort.dicom_dir, dicom, patients)

    truncated = _pet_files(studies[cut][0])[40]
    truncated.write_bytes(truncated.read_bytes()[:-1000])  # pixel data cut short
    _pet_files(studies[gap][0])[60].unlink()  # a slice missing in the middle

    def no_weight(ds):
        del ds.PatientWeight

    def no_dose(ds):
        del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose

    _edit_all(_pet_files(studies[no_weight_patient][0]), no_weight)
    _edit_all(_pet_files(studies[no_dose_patient][0]), no_dose)
    # Mixed series in one folder: the follow-up's CT files moved in with its PET files.
    followup = studies[mixed][1]
    pet_folder = _pet_files(followup)[0].parent
    for ct_file in sorted(set(followup.rglob("*.dcm")) - set(_pet_files(followup))):
        ct_file.rename(pet_folder / f"x_{ct_file.name}")
    # Non-DICOM files and a broken file that belongs to no series.
    (dicom / "README.txt").write_text("PACS export")
    (dicom / cut / "Thumbs.db").write_bytes(b"\x00" * 64)
    (dicom / gap / "broken.dcm").write_bytes(truncated.read_bytes()[:200])

    cache = tmp_path / "cache"
    code = main(["ingest", "--dicom", str(dicom), "--cache", str(cache), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0

    rows = {r["study_uid"]: r for r in read_csv(cache / "manifest.csv")}
    assert len(rows) == 10
    failures = Counter(r["error"].split(":")[0] for r in rows.values() if r["status"] == "error")
    assert failures == Counter(
        {"UnreadableDicomError": 1, "MissingSliceError": 1, "MissingWeightError": 1, "MissingDoseError": 1}
    )
    errors = " ".join(r["error"] for r in rows.values())
    assert truncated.name in errors and "PatientWeight" in errors and "RadionuclideTotalDose" in errors
    assert "failures by reason:" in out and "MissingWeightError: 1" in out
    assert "not a DICOM file: 2" in out and "unreadable DICOM file" in out
    # The four intact follow-ups and both exams of the mixed-folder patient came through: one pair.
    assert sum(r["status"] == "ok" for r in rows.values()) == 6
    pairs = read_csv(cache / "pairs.csv")
    assert [p["patient_id"] for p in pairs] == [mixed]
    for patient in patients:  # no patient ID in what was printed
        assert patient not in out.replace(str(dicom), "")


def test_no_study_found_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert (
        main(["ingest", "--dicom", str(tmp_path / "empty"), "--cache", str(tmp_path / "c"), "--no-progress"])
        == 1
    )
    assert "studies read: 0" in capsys.readouterr().out


def test_a_study_needs_a_pet_and_a_ct_of_its_frame(tmp_path: Path) -> None:
    from dicom_factory import pet_header, ramp, write_series

    write_series(tmp_path / "pet_only" / "pt", ramp((4, 4, 5)), header=pet_header(), patient_id="A")
    study = "1.2.826.0.1.3680043.8.498.7"
    write_series(tmp_path / "other_frame" / "pt", ramp((4, 4, 5)), header=pet_header(), patient_id="B",
                 study_uid=study, frame_of_reference_uid="1.2.826.0.1.3680043.8.498.8")  # fmt: skip
    write_series(tmp_path / "other_frame" / "ct", ramp((6, 6, 5)), modality="CT", patient_id="B",
                 study_uid=study, frame_of_reference_uid="1.2.826.0.1.3680043.8.498.9")  # fmt: skip
    summary = ingest(tmp_path, tmp_path / "cache", progress=False)
    assert summary.failures == Counter({"MissingSeriesError": 1, "MixedFrameOfReferenceError": 1})
    assert "no CT image series" in " ".join(o.row["error"] for o in summary.outcomes)
