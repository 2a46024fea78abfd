"""From parsed reports to one weak label per exam pair: votes -> label model -> class and confidence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from labeling.functions import ABSTAIN, LABELING_FUNCTIONS, PairEvidence, vote_row
from labeling.label_model import DawidSkeneModel
from labeling.records import ExamPair
from labeling.report import ParsedReport
from onconet.classes import RESPONSE_CLASSES


@dataclass(frozen=True, slots=True)
class PairLabel:
    """The weak label of one exam pair with the evidence behind it."""

    pair: ExamPair
    label: str | None
    confidence: float
    votes: dict[str, str | None]
    baseline_hottest: float | None
    followup_hottest: float | None

    def as_row(self) -> dict[str, object]:
        """The labels.csv row (data contract: class, confidence, one column per function, hottest values)."""
        row: dict[str, object] = {
            "patient_id": self.pair.patient_id,
            "baseline_study_uid": self.pair.baseline_study_uid,
            "followup_study_uid": self.pair.followup_study_uid,
            "label": self.label or "",
            "confidence": f"{self.confidence:.4f}",
        }
        row.update({f"lf_{name}": vote or "" for name, vote in self.votes.items()})
        row["baseline_hottest"] = "" if self.baseline_hottest is None else f"{self.baseline_hottest:g}"
        row["followup_hottest"] = "" if self.followup_hottest is None else f"{self.followup_hottest:g}"
        return row


LABEL_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "baseline_study_uid",
    "followup_study_uid",
    "label",
    "confidence",
    *(f"lf_{name}" for name in LABELING_FUNCTIONS),
    "baseline_hottest",
    "followup_hottest",
)


def vote_matrix(pairs: Sequence[ExamPair], reports: Mapping[str, ParsedReport]) -> np.ndarray:
    """(n_pairs, n_functions) class indices, -1 = abstain; a pair without follow-up report abstains."""
    rows = []
    for pair in pairs:
        followup = reports.get(pair.followup_study_uid)
        if followup is None:
            rows.append([ABSTAIN] * len(LABELING_FUNCTIONS))
        else:
            rows.append(vote_row(PairEvidence(reports.get(pair.baseline_study_uid), followup)))
    return np.asarray(rows, dtype=np.int64).reshape(len(pairs), len(LABELING_FUNCTIONS))


def label_pairs(
    pairs: Sequence[ExamPair], reports: Mapping[str, ParsedReport], model: DawidSkeneModel | None = None
) -> tuple[list[PairLabel], np.ndarray, DawidSkeneModel]:
    """Weak labels for ``pairs``; the label model is fitted on these pairs' votes (unsupervised)."""
    votes = vote_matrix(pairs, reports)
    model = model or DawidSkeneModel(n_classes=len(RESPONSE_CLASSES))
    if len(pairs):
        model.fit(votes)
        probabilities = model.predict_proba(votes)
        predicted = model.predict(votes)
    else:
        probabilities, predicted = np.zeros((0, len(RESPONSE_CLASSES))), np.zeros(0, dtype=int)
    labels = []
    for i, pair in enumerate(pairs):
        baseline = reports.get(pair.baseline_study_uid)
        followup = reports.get(pair.followup_study_uid)
        abstained = predicted[i] == ABSTAIN
        labels.append(
            PairLabel(
                pair=pair,
                label=None if abstained else RESPONSE_CLASSES[predicted[i]],
                confidence=0.0 if abstained else float(probabilities[i].max()),
                votes={
                    name: (RESPONSE_CLASSES[v] if v != ABSTAIN else None)
                    for name, v in zip(LABELING_FUNCTIONS, votes[i].tolist(), strict=True)
                },
                baseline_hottest=baseline.hottest("current") if baseline else None,
                followup_hottest=followup.hottest("current") if followup else None,
            )
        )
    return labels, votes, model
