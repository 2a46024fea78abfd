"""``onconet infer`` end to end on a damaged DICOM export: good pairs predicted, bad ones in errors.csv,
re-runs write nothing new, a run that crashes after its first batch resumes to the same table."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pydicom
import pytest
from lightning.pytorch.callbacks import Callback
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from onconet.classes import RESPONSE_CLASSES
from onconet.inference.runner import infer
from onconet.inference.writer import PREDICTION_COLUMNS
from tests.inference.conftest import copy_patients


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def study_dirs(patient_dir: Path) -> list[Path]:
    return sorted(p for p in patient_dir.iterdir() if p.is_dir())


def series_dir(study_dir: Path, modality: str) -> Path:
    return next(p for p in sorted(study_dir.iterdir()) if p.name.startswith(modality))


def study_uid_of(study_dir: Path) -> str:
    first = next(series_dir(study_dir, "PT").iterdir())
    return str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID)


def write_dicomdir(path: Path) -> None:
    ds = Dataset()
    ds.FileSetID = "EXPORT"
    ds.DirectoryRecordSequence = []
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_mr_slice(path: Path, study_uid: str) -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.4", generate_uid()  # MR Image Storage
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.Modality, ds.ImageType, ds.PatientID = "MR", ["ORIGINAL", "PRIMARY"], "SYN0001"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def damaged_export(synthetic_cohort, tmp_path_factory) -> dict:
    """SYN0001 and SYN0004 intact; SYN0002 follow-up PET misses a slice; SYN0003 baseline PET has no
    PatientWeight; SYN0005 has one exam; plus a corrupt file, an MR series and a nested DICOMDIR."""
    root = copy_patients(synthetic_cohort.dicom_dir, tmp_path_factory.mktemp("damaged") / "dicom",
                         ("SYN0001", "SYN0002", "SYN0003", "SYN0004"))  # fmt: skip
    lonely = study_dirs(synthetic_cohort.dicom_dir / "SYN0005")[0]
    shutil.copytree(lonely, root / "SYN0005" / lonely.name)
    gap_pet = series_dir(study_dirs(root / "SYN0002")[1], "PT")
    middle = sorted(gap_pet.iterdir())[len(list(gap_pet.iterdir())) // 2]
    middle.unlink()
    weightless = series_dir(study_dirs(root / "SYN0003")[0], "PT")
    for path in weightless.iterdir():
        ds = pydicom.dcmread(path)
        del ds.PatientWeight
        ds.save_as(path)
    corrupt_source = next(series_dir(study_dirs(root / "SYN0004")[0], "CT").iterdir())
    (root / "stray").mkdir()
    (root / "stray" / "broken.dcm").write_bytes(corrupt_source.read_bytes()[:400])
    write_mr_slice(
        study_dirs(root / "SYN0001")[0] / "MR_009" / "MR0001.dcm",
        study_uid_of(study_dirs(root / "SYN0001")[0]),
    )
    uids = {
        p: [study_uid_of(s) for s in study_dirs(root / p)]
        for p in ("SYN0001", "SYN0002", "SYN0003", "SYN0004")
    }
    dicomdir = root / "SYN0004" / "media" / "DICOMDIR"
    write_dicomdir(dicomdir)
    return {
        "dicom": root,
        "uids": uids,
        "dicomdir": dicomdir,
        "cache": tmp_path_factory.mktemp("damaged_cache"),
    }


def test_good_pairs_predicted_bad_ones_explained_and_rerun_writes_nothing(
    damaged_export, trained_model, tmp_path
):
    out = tmp_path / "out"
    summary = infer(damaged_export["dicom"], trained_model.ckpt, out, batch_size=2, num_workers=1,
                    cache_dir=damaged_export["cache"], progress=False)  # fmt: skip
    predictions = rows_of(out / "predictions.csv")
    uids = damaged_export["uids"]
    assert {(r["baseline_study_uid"], r["followup_study_uid"]) for r in predictions} == {
        tuple(uids["SYN0001"]),
        tuple(uids["SYN0004"]),
    }
    assert list(predictions[0]) == list(PREDICTION_COLUMNS)
    for row in predictions:
        probs = [float(row[f"prob_{c}"]) for c in RESPONSE_CLASSES]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert row["predicted"] == RESPONSE_CLASSES[probs.index(max(probs))]
        assert len(row["checkpoint_sha256"]) == 64 and row["onconet_version"]
        assert row["baseline_date"] < row["followup_date"] and row["site"] and row["baseline_manufacturer"]

    errors = rows_of(out / "errors.csv")

    def reasons(**match) -> list[str]:
        return [e["reason"] for e in errors if all(e[k] == v for k, v in match.items())]

    assert any(
        "unreadable" in r
        for r in reasons(stage="discovery", file=str(damaged_export["dicom"] / "stray" / "broken.dcm"))
    )
    assert any("modality MR" in r for r in reasons(stage="discovery"))
    assert any("DICOMDIR" in r for r in reasons(stage="discovery", file=str(damaged_export["dicomdir"])))
    assert reasons(stage="pair", baseline_study_uid=uids["SYN0002"][0]) == [
        "followup study failed: MissingSliceError"
    ]
    assert reasons(stage="pair", baseline_study_uid=uids["SYN0003"][0]) == [
        "baseline study failed: MissingWeightError"
    ]
    assert reasons(stage="study", study_uid=uids["SYN0003"][0]) == ["MissingWeightError"]
    assert [e["patient_id"] for e in errors if e["stage"] == "patient"] == ["SYN0005"]
    assert all(e["file"] for e in errors)
    assert (summary.new_predictions, summary.failed_pairs) == (2, 2)
    # the checkpoint and the Trainer were made while discovery ran; every step after the one before
    steps = ["checkpoint", "trainer", "discovery", "plan", "workers started", "loop start", "loop end"]
    assert list(summary.marks) == steps  # on the CPU no "device ready": nothing is moved early
    assert sorted(summary.marks.values()) == [summary.marks[step] for step in steps]
    assert summary.marks["loop end"] <= summary.seconds

    before = {name: (out / name).read_bytes() for name in ("predictions.csv", "errors.csv")}
    again = infer(damaged_export["dicom"], trained_model.ckpt, out, num_workers=0,
                  cache_dir=damaged_export["cache"], progress=False)  # fmt: skip
    assert again.pairs_already_done == 2 and again.new_predictions == 0
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not list((out / "parts").glob("*.csv"))


class CrashAfterFirstBatch(Callback):
    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        raise RuntimeError("power cut")


def test_a_run_killed_after_one_batch_resumes_to_the_same_table(damaged_export, trained_model, tmp_path):
    options = {"batch_size": 1, "num_workers": 0, "cache_dir": damaged_export["cache"], "progress": False}
    whole = infer(damaged_export["dicom"], trained_model.ckpt, tmp_path / "whole", **options)
    assert whole.new_predictions == 2
    with pytest.raises(RuntimeError, match="power cut"):
        infer(
            damaged_export["dicom"],
            trained_model.ckpt,
            tmp_path / "resumed",
            callbacks=[CrashAfterFirstBatch()],
            **options,
        )
    assert not (tmp_path / "resumed" / "predictions.csv").exists()
    parts = rows_of(next((tmp_path / "resumed" / "parts").glob("predictions.*.csv")))
    assert len(parts) == 1  # the first batch survived the crash
    resumed = infer(damaged_export["dicom"], trained_model.ckpt, tmp_path / "resumed", **options)
    assert (resumed.pairs_already_done, resumed.new_predictions) == (1, 1)
    for name in ("predictions.csv", "errors.csv"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
