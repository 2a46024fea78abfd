"""``onconet label`` end to end on small hand-written report files."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest

from labeling.command import AGREEMENT_COLUMNS, agreement_rows
from labeling.functions import LABELING_FUNCTIONS
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


def test_agreement_csv_holds_the_printed_table_at_full_precision(files, tmp_path, capsys):
    reports, truth = files
    agreement = tmp_path / "tables" / "agreement.csv"
    args = ["label", "--reports", str(reports), "--truth", str(truth), "--out", str(tmp_path / "labels.csv")]
    assert main([*args, "--agreement", str(agreement)]) == 0
    printed = capsys.readouterr().out
    rows = read_rows(agreement)
    assert list(rows[0]) == list(AGREEMENT_COLUMNS)
    names = [f"lf_{name}" for name in LABELING_FUNCTIONS]
    assert [r["source"] for r in rows] == [*names, "majority vote", "label model"]
    printed_lines = {line.split()[0]: line for line in printed.splitlines() if line.startswith("lf_")}
    for row in rows:
        if row["kind"] == "labeling function":
            numbers = printed_lines[row["source"]].split()[1:]
            csv_numbers = [row[c] for c in ("coverage", "accuracy_voted", "accuracy_all", "kappa")]
            assert numbers == [f"{float(v):.3f}" for v in csv_numbers]
            assert 0.0 < float(row["estimated_accuracy"]) < 1.0
        else:
            assert row["estimated_accuracy"] == ""
    by_source = {r["source"]: r for r in rows}
    # one pair of three states a new lesion, and it is the progression
    assert float(by_source["lf_new_lesion"]["coverage"]) == pytest.approx(1 / 3)
    assert float(by_source["lf_new_lesion"]["accuracy_voted"]) == 1.0
    assert float(by_source["label model"]["accuracy_all"]) == 1.0  # the labels equal the truth (see above)


def test_agreement_rows_count_abstentions():
    votes = np.full((4, len(LABELING_FUNCTIONS)), -1)
    votes[:, 0] = [0, 1, 2, -1]
    votes[:, 1] = [0, 1, 1, 2]
    rows = agreement_rows(votes, predicted=np.array([0, 1, 1, -1]), gold=np.array([0, 1, 1, 2]))
    first, second, last = rows[0], rows[1], rows[-1]
    assert (first["coverage"], first["accuracy_voted"], first["accuracy_all"]) == (0.75, 2 / 3, 0.5)
    assert (second["coverage"], second["accuracy_all"], second["kappa"]) == (1.0, 1.0, 1.0)
    assert rows[2]["coverage"] == 0.0 and np.isnan(rows[2]["accuracy_voted"])
    assert (last["source"], last["coverage"], last["accuracy_voted"], last["accuracy_all"]) == (
        "label model",
        0.75,
        1.0,
        0.75,
    )
    assert all(row["estimated_accuracy"] is None for row in rows)


def test_agreement_without_truth_is_refused_before_anything_is_written(files, tmp_path, capsys):
    reports, _ = files
    out = tmp_path / "labels.csv"
    agreement = tmp_path / "agreement.csv"
    assert main(["label", "--reports", str(reports), "--out", str(out), "--agreement", str(agreement)]) == 1
    assert "needs --truth" in capsys.readouterr().err
    assert not out.exists() and not agreement.exists()
