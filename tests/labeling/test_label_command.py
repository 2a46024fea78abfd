"""``onconet label`` end to end on small hand-written report files."""

from __future__ import annotations

import csv
import json
import logging

import pytest

from labeling.records import ExamPair, pairs_from_reports, read_reports
from labeling.weak_labels import LABEL_COLUMNS
from onconet.cli import main

SECRET = "Zanzibar"  # a word that must never reach a log line

REPORTS = [
    ("P1", "1.1", "2024-01-05", f"FINDINGS:\n{SECRET} right axillary node, SUVmax 10.0.\n"),
    (
        "P1",
        "1.2",
        "2024-04-02",
        "FINDINGS:\nInterval decrease, right axillary node SUVmax 3.0 (previously 10.0).\n\n"
        "IMPRESSION:\nPartial metabolic response.\n",
    ),
    (
        "P1",
        "1.3",
        "2024-09-30",
        "FINDINGS:\nRight axillary node SUVmax 3.2 (prior 3.0). New FDG-avid liver lesion, SUVmax 7.5.\n\n"
        "IMPRESSION:\nProgressive metabolic disease.\n",
    ),
    (
        "P2",
        "2.2",
        "2023-11-20",
        "FINDINGS:\nMediastinal node, SUV max 6.0, unchanged.\n\nIMPRESSION:\nStable.\n",
    ),
    ("P2", "2.1", "2023-06-01", "FINDINGS:\nMediastinal node, SUV max 6,1.\n"),
]
TRUTH = [
    ("P1", "1.1", "1.2", "response"),
    ("P1", "1.2", "1.3", "progression"),
    ("P2", "2.1", "2.2", "stable"),
]


@pytest.fixture
def files(tmp_path):
    reports = tmp_path / "reports.jsonl"
    reports.write_text(
        "\n".join(
            json.dumps({"patient_id": p, "study_uid": u, "study_date": d, "text": t})
            for p, u, d, t in REPORTS
        )
        + "\n"
    )
    truth = tmp_path / "truth.csv"
    with truth.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "baseline_study_uid", "followup_study_uid", "label"])
        writer.writerows(TRUTH)
    return reports, truth


def read_rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_pairs_are_consecutive_exams_by_date(files):
    reports, _ = files
    assert pairs_from_reports(read_reports(reports)) == [
        ExamPair("P1", "1.1", "1.2"),
        ExamPair("P1", "1.2", "1.3"),
        ExamPair("P2", "2.1", "2.2"),
    ]


def test_labels_csv_follows_the_contract(files, tmp_path, capsys, caplog):
    reports, truth = files
    out = tmp_path / "out" / "labels.csv"
    with caplog.at_level(logging.DEBUG):
        assert main(["label", "--reports", str(reports), "--truth", str(truth), "--out", str(out)]) == 0
    rows = read_rows(out)
    assert list(rows[0]) == list(LABEL_COLUMNS)
    assert [(r["patient_id"], r["baseline_study_uid"], r["followup_study_uid"]) for r in rows] == [
        (p, b, f) for p, b, f, _ in TRUTH
    ]
    assert [r["label"] for r in rows] == [label for *_, label in TRUTH]
    assert all(0.0 < float(r["confidence"]) <= 1.0 for r in rows)
    assert [(r["baseline_hottest"], r["followup_hottest"]) for r in rows] == [
        ("10", "3"),
        ("3", "7.5"),
        ("6.1", "6"),
    ]
    assert rows[1]["lf_new_lesion"] == "progression" and rows[0]["lf_new_lesion"] == ""
    printed = capsys.readouterr().out
    assert "majority vote" in printed and "label model" in printed and "lf_within_report" in printed
    assert SECRET not in caplog.text and SECRET not in printed  # report text never logged or printed


def test_explicit_pairs_and_missing_reports(files, tmp_path):
    reports, _ = files
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "patient_id,site,baseline_study_uid,followup_study_uid\nP1,internal,1.1,1.3\nP9,internal,9.1,9.2\n"
    )
    out = tmp_path / "labels.csv"
    assert main(["label", "--reports", str(reports), "--pairs", str(pairs), "--out", str(out)]) == 0
    rows = read_rows(out)
    assert [r["followup_study_uid"] for r in rows] == ["1.3", "9.2"]
    assert rows[0]["label"] == "progression"
    assert (
        rows[1]["label"] == "" and float(rows[1]["confidence"]) == 0.0
    )  # no report: every function abstains


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "line 1: not valid JSON"),
        ('{"patient_id": "P1", "study_uid": "1"}\n', "line 1: missing field(s) study_date, text"),
    ],
)
def test_bad_reports_file(tmp_path, capsys, content, message):
    reports = tmp_path / "reports.jsonl"
    reports.write_text(content)
    out = tmp_path / "labels.csv"
    assert main(["label", "--reports", str(reports), "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_missing_file(tmp_path, capsys):
    assert main(["label", "--reports", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x.csv")]) == 1
    assert "cannot read the reports file" in capsys.readouterr().err
