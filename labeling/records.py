"""Reading reports.jsonl, pairs.csv and truth.csv; forming exam pairs; writing labels.csv atomically.

Errors name the file, the line and the field; report text is never put in a message or a log.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from onconet.errors import ReportError

REPORT_FIELDS = ("patient_id", "study_uid", "study_date", "text")
PAIR_FIELDS = ("patient_id", "baseline_study_uid", "followup_study_uid")


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One exam's report."""

    patient_id: str
    study_uid: str
    study_date: str
    text: str


@dataclass(frozen=True, slots=True)
class ExamPair:
    """A baseline and a follow-up exam of one patient."""

    patient_id: str
    baseline_study_uid: str
    followup_study_uid: str


def read_reports(path: Path) -> list[ReportRecord]:
    """All records of a reports.jsonl file (one JSON object per line; blank lines skipped)."""
    records = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ReportError(f"{path}: cannot read the reports file ({err.strerror}); check the path") from err
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ReportError(
                f"{path}, line {number}: not valid JSON ({err.msg}); fix or remove the line"
            ) from err
        missing = [name for name in REPORT_FIELDS if not isinstance(obj, dict) or name not in obj]
        if missing:
            raise ReportError(
                f"{path}, line {number}: missing field(s) {', '.join(missing)}; each line needs "
                f"{', '.join(REPORT_FIELDS)}"
            )
        if not isinstance(obj["text"], str):
            raise ReportError(f"{path}, line {number}: field 'text' must be a string")
        records.append(
            ReportRecord(str(obj["patient_id"]), str(obj["study_uid"]), str(obj["study_date"]), obj["text"])
        )
    return records


def pairs_from_reports(records: Iterable[ReportRecord]) -> list[ExamPair]:
    """Consecutive exams of each patient by study_date (ISO dates sort as text): 1->2, 2->3, ..."""
    by_patient: dict[str, list[ReportRecord]] = defaultdict(list)
    for record in records:
        by_patient[record.patient_id].append(record)
    pairs = []
    for patient_id in sorted(by_patient):
        exams = sorted(by_patient[patient_id], key=lambda r: (r.study_date, r.study_uid))
        pairs.extend(
            ExamPair(patient_id, earlier.study_uid, later.study_uid) for earlier, later in pairwise(exams)
        )
    return pairs


def _read_csv(path: Path, required: Sequence[str], what: str) -> list[dict[str, str]]:
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [name for name in required if name not in (reader.fieldnames or [])]
            if missing:
                raise ReportError(f"{path}: {what} lacks column(s) {', '.join(missing)}")
            return list(reader)
    except OSError as err:
        raise ReportError(f"{path}: cannot read the {what} ({err.strerror}); check the path") from err


def read_pairs(path: Path) -> list[ExamPair]:
    """Exam pairs from a pairs.csv (``onconet ingest``) or truth.csv: patient and the two study UIDs."""
    return [
        ExamPair(row["patient_id"], row["baseline_study_uid"], row["followup_study_uid"])
        for row in _read_csv(path, PAIR_FIELDS, "pairs file")
    ]


def read_truth(path: Path) -> dict[tuple[str, str], str]:
    """Gold class per (baseline_study_uid, followup_study_uid) from a truth.csv."""
    rows = _read_csv(path, (*PAIR_FIELDS[1:], "label"), "truth file")
    return {(row["baseline_study_uid"], row["followup_study_uid"]): row["label"] for row in rows}


def write_csv_atomic(path: Path, fieldnames: Sequence[str], rows: Iterable[dict[str, object]]) -> None:
    """Write a CSV next to ``path`` and rename it into place, so no half-written file is ever seen."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(fieldnames))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
