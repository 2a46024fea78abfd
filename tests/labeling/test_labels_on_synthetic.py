"""The parser and weak labels on the synthetic cohort's reports (shared ``synthetic_cohort`` fixture).

The parser was written from real report language, not from the generator's phrase lists; these tests
measure it on text it was not built from.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from labeling.evaluation import score_against_lesions, score_against_mentions
from labeling.label_model import majority_vote
from labeling.records import pairs_from_reports, read_pairs, read_reports, read_truth
from labeling.report import parse_reports
from labeling.weak_labels import label_pairs
from onconet.classes import RESPONSE_CLASSES
from onconet.cli import main


@pytest.fixture(scope="module")
def parsed(synthetic_cohort):
    records = read_reports(synthetic_cohort.reports)
    reports = dict(zip([r.study_uid for r in records], parse_reports([r.text for r in records]), strict=True))
    return records, reports


def test_lesion_values_match_lesions_csv(synthetic_cohort, parsed):
    _, reports = parsed
    scores = score_against_lesions(reports, synthetic_cohort.lesions)
    assert scores.tp > 50
    assert scores.precision >= 0.98 and scores.recall >= 0.98, scores


def test_every_mention_with_role_and_timepoint(synthetic_cohort, parsed):
    mentions = synthetic_cohort.reports.parent / "mentions.jsonl"
    if not mentions.is_file():
        pytest.skip("this generator version writes no mentions.jsonl")
    _, reports = parsed
    scores = score_against_mentions(reports, mentions)
    assert scores.precision >= 0.98 and scores.recall >= 0.98, scores


def test_pairs_from_reports_are_the_truth_pairs(synthetic_cohort, parsed):
    records, _ = parsed
    assert sorted(pairs_from_reports(records), key=str) == sorted(read_pairs(synthetic_cohort.truth), key=str)


def test_weak_labels_beat_majority_vote(synthetic_cohort, parsed):
    records, reports = parsed
    pairs = pairs_from_reports(records)
    truth = read_truth(synthetic_cohort.truth)
    gold = np.array(
        [RESPONSE_CLASSES.index(truth[(p.baseline_study_uid, p.followup_study_uid)]) for p in pairs]
    )
    labels, votes, _ = label_pairs(pairs, reports)
    predicted = np.array([RESPONSE_CLASSES.index(x.label) if x.label else -1 for x in labels])
    model_accuracy = (predicted == gold).mean()
    assert model_accuracy >= 0.9
    assert model_accuracy >= (majority_vote(votes) == gold).mean()
    hottest = [x.followup_hottest for x in labels if x.followup_hottest is not None]
    assert hottest and all(v > 0 for v in hottest)


def test_command_on_the_cohort(synthetic_cohort, tmp_path, capsys):
    out = tmp_path / "labels.csv"
    argv = ["label", "--reports", str(synthetic_cohort.reports), "--truth", str(synthetic_cohort.truth)]
    assert main([*argv, "--out", str(out)]) == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with synthetic_cohort.truth.open(newline="") as handle:
        assert len(rows) == len(list(csv.DictReader(handle)))
    assert "label model" in capsys.readouterr().out
