"""Mention-level scores of the parser against a synthetic cohort's truth tables.

Two references are used:

* ``lesions.csv`` (data contract): per study, the distinct lesion values written in its report
  (``suvmax_reported``) must equal the distinct current, non-negated lesion values parsed from it
  (distinct, because an impression repeats the hottest lesion's value from the findings).
* ``mentions.jsonl`` (when the generator writes it): every SUV number of every report with its span and
  kind; a parsed mention counts as correct when its span, value, role and timepoint all agree.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from labeling.report import ParsedReport

#: generator kind -> (role, timepoint) the parser must give
KIND_TO_READING: Final[dict[str, tuple[str, str]]] = {
    "lesion": ("lesion", "current"),
    "prior": ("lesion", "prior"),
    "liver_mean": ("reference", "current"),
    "liver_max": ("reference", "current"),
    "blood_pool": ("reference", "current"),
    "contralateral": ("comparison", "current"),
    "brain": ("reference", "current"),
    "bladder": ("reference", "current"),
}


@dataclass(frozen=True, slots=True)
class MentionScores:
    """True positives, false positives, false negatives and the rates they give."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _value_key(value: float) -> int:
    return round(value * 100)


def score_against_lesions(reports: Mapping[str, ParsedReport], lesions_csv: Path) -> MentionScores:
    """Distinct current lesion values per study vs distinct ``suvmax_reported`` values of lesions.csv."""
    expected: dict[str, set[int]] = defaultdict(set)
    with Path(lesions_csv).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["suvmax_reported"].strip():
                expected[row["study_uid"]].add(_value_key(float(row["suvmax_reported"])))
    tp = fp = fn = 0
    for study_uid in set(expected) | set(reports):
        report = reports.get(study_uid)
        found = {_value_key(v) for v in report.lesion_values("current")} if report else set()
        want = expected.get(study_uid, set())
        tp += len(found & want)
        fp += len(found - want)
        fn += len(want - found)
    return MentionScores(tp, fp, fn)


def score_against_mentions(reports: Mapping[str, ParsedReport], mentions_jsonl: Path) -> MentionScores:
    """Every parsed mention vs the generator's list: same span, value, role and timepoint."""
    expected: dict[str, dict[tuple[int, int], tuple[float, str, str]]] = defaultdict(dict)
    with Path(mentions_jsonl).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                m = json.loads(line)
                role, timepoint = KIND_TO_READING[m["kind"]]
                expected[m["study_uid"]][(m["start"], m["end"])] = (float(m["value"]), role, timepoint)
    tp = fp = fn = 0
    for study_uid in set(expected) | set(reports):
        want = expected.get(study_uid, {})
        got = {
            (m.start, m.end): (m.value, m.role, m.timepoint)
            for m in (reports[study_uid].mentions if study_uid in reports else [])
        }
        hit = sum(1 for span, reading in got.items() if want.get(span) == reading)
        tp += hit
        fp += len(got) - hit
        fn += len(want) - hit
    return MentionScores(tp, fp, fn)
