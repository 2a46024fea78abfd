"""What an inference run has to do: discovered studies -> exam pairs, and what was left out and why.

Discovery reads headers only (:func:`onconet.data.dicom.discover`), so planning is fast; the pixels are
read later, in DataLoader workers. A study enters pairing when it has a usable PET and CT series
(:func:`onconet.data.study.choose_series`); pairs are formed by :func:`onconet.data.pairs.form_pairs`, the
same rule as ``onconet ingest``. A study that fails later (SUV, geometry) makes its pairs fail; they are
reported, not silently re-paired with another exam.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

from onconet.data.dicom import Discovery, StudyRecord, discover
from onconet.data.discovery import rank_cpus
from onconet.data.pairs import form_pairs
from onconet.data.study import choose_series
from onconet.errors import OncoNetError

#: Columns of errors.csv. ``stage``: discovery (a file or series), study, patient, pair.
ERROR_COLUMNS: tuple[str, ...] = (
    "stage", "patient_id", "study_uid", "baseline_study_uid", "followup_study_uid", "reason", "detail",
    "file",
)  # fmt: skip


@dataclass(frozen=True)
class PairJob:
    """One pair to predict: both studies as discovered (picklable, for DataLoader workers)."""

    patient_id: str
    site: str
    baseline: StudyRecord
    followup: StudyRecord

    @property
    def key(self) -> tuple[str, str]:
        """(baseline StudyInstanceUID, follow-up StudyInstanceUID)."""
        return self.baseline.study_uid, self.followup.study_uid


@dataclass
class InferencePlan:
    """The pairs to predict and every file, series, study or patient left out (rows of errors.csv)."""

    jobs: list[PairJob] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    studies: int = 0


def error_row(stage: str, reason: str, detail: str = "", file: str = "", **ids: str) -> dict[str, str]:
    """One errors.csv row (missing identifiers empty)."""
    return {"stage": stage, "reason": reason, "detail": detail, "file": file, **ids}


def plan_from_discovery(found: Discovery, pairs_mode: str = "consecutive") -> InferencePlan:
    """Pairs of the studies with a usable PET and CT; errors for everything else."""
    plan = InferencePlan(studies=len(found.studies))
    for item in found.skipped:
        plan.errors.append(error_row("discovery", item.reason, item.detail, item.path))
    usable: dict[str, StudyRecord] = {}
    for study in found.studies.values():
        try:
            choose_series(study)
        except OncoNetError as err:
            plan.errors.append(
                error_row(
                    "study",
                    type(err).__name__,
                    str(err),
                    str(study.source_dir),
                    patient_id=study.patient_id,
                    study_uid=study.study_uid,
                )
            )
            continue
        usable[study.study_uid] = study
    rows = [
        {
            "patient_id": s.patient_id,
            "study_uid": s.study_uid,
            "study_date": s.study_date,
            "study_time": s.study_time,
            "site": s.site,
        }
        for s in usable.values()
    ]
    per_patient: dict[str, list[StudyRecord]] = defaultdict(list)
    for study in usable.values():
        per_patient[study.patient_id].append(study)
    for patient_id, studies in sorted(per_patient.items()):
        if len(studies) < 2:
            plan.errors.append(
                error_row(
                    "patient",
                    "only one usable PET/CT study; nothing to pair",
                    f"{len(studies)} study",
                    str(studies[0].source_dir),
                    patient_id=patient_id,
                    study_uid=studies[0].study_uid,
                )
            )
    for pair in form_pairs(rows, mode=pairs_mode):
        plan.jobs.append(
            PairJob(
                patient_id=pair["patient_id"],
                site=pair["site"],
                baseline=usable[pair["baseline_study_uid"]],
                followup=usable[pair["followup_study_uid"]],
            )
        )
    return plan


def plan_inference(
    dicom_dir: str | os.PathLike, pairs_mode: str = "consecutive", workers: int = 1
) -> InferencePlan:
    """Discover ``dicom_dir`` (headers only, ``workers`` processes) and plan its pairs."""
    return plan_from_discovery(discover(dicom_dir, workers=workers), pairs_mode)


def discovery_processes(num_workers: int, devices: int = 1) -> int:
    """Processes that read the headers in ``onconet infer``: when the pairs are loaded in worker processes
    (those start after discovery, so the cores are free), every core, shared by the ``devices`` ranks that
    each discover the tree; else only this process."""
    return rank_cpus(devices) if num_workers > 0 else 1
