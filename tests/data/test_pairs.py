"""Baseline / follow-up pairing."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import onconet.data.pairs
from onconet.data.cache import PAIRS_COLUMNS, read_csv
from onconet.data.pairs import form_pairs, write_pairs
from onconet.errors import ConfigError


def study(patient: str, uid: str, date: str, **extra) -> dict:
    return {"patient_id": patient, "study_uid": uid, "study_date": date, "site": "internal", "status": "ok",
            "pet_path": f"nifti/{uid}_suv.nii.gz", "ct_path": f"nifti/{uid}_ct.nii.gz", **extra}  # fmt: skip


STUDIES = [
    study("P2", "d", "2024-05-01"),
    study("P1", "c", "2025-06-01"),
    study("P1", "a", "2025-01-01"),
    study("P1", "b", "2025-03-01"),
    study("P3", "e", "2025-01-01"),  # one study: no pair
    study("P2", "f", "2024-09-01"),
    study("P2", "g", "2024-12-01", status="error"),  # failed studies are not paired
]


def test_consecutive_pairs() -> None:
    pairs = form_pairs(STUDIES)
    assert [(p["patient_id"], p["baseline_study_uid"], p["followup_study_uid"]) for p in pairs] == [
        ("P1", "a", "b"),
        ("P1", "b", "c"),
        ("P2", "d", "f"),
    ]
    first = pairs[0]
    assert first["baseline_date"] == "2025-01-01" and first["followup_date"] == "2025-03-01"
    assert first["baseline_pet"] == "nifti/a_suv.nii.gz" and first["followup_ct"] == "nifti/b_ct.nii.gz"


def test_first_last_pairs() -> None:
    pairs = form_pairs(STUDIES, mode="first-last")
    assert [(p["baseline_study_uid"], p["followup_study_uid"]) for p in pairs] == [("a", "c"), ("d", "f")]


def test_same_day_studies_ordered_by_time() -> None:
    pairs = form_pairs([study("P", "z", "2025-01-01", study_time="140000"),
                        study("P", "y", "2025-01-01", study_time="090000")])  # fmt: skip
    assert (pairs[0]["baseline_study_uid"], pairs[0]["followup_study_uid"]) == ("y", "z")


def test_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="first-last"):
        form_pairs(STUDIES, mode="all")


def test_pairs_csv(tmp_path: Path) -> None:
    write_pairs(tmp_path / "pairs.csv", form_pairs(STUDIES))
    rows = read_csv(tmp_path / "pairs.csv")
    assert len(rows) == 3 and list(rows[0]) == list(PAIRS_COLUMNS)


def test_docstring_examples() -> None:
    result = doctest.testmod(onconet.data.pairs)
    assert result.attempted > 0 and result.failed == 0
