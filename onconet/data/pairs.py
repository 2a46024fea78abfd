"""Baseline / follow-up pairs: per patient, PET/CT studies ordered by date.

>>> studies = [
...     {"patient_id": "P1", "study_uid": "b", "study_date": "2025-03-01", "site": "internal"},
...     {"patient_id": "P1", "study_uid": "a", "study_date": "2025-01-01", "site": "internal"},
...     {"patient_id": "P1", "study_uid": "c", "study_date": "2025-06-01", "site": "internal"},
... ]
>>> [(p["baseline_study_uid"], p["followup_study_uid"]) for p in form_pairs(studies)]
[('a', 'b'), ('b', 'c')]
>>> [(p["baseline_study_uid"], p["followup_study_uid"]) for p in form_pairs(studies, mode="first-last")]
[('a', 'c')]
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Iterable

from onconet.data.cache import PAIRS_COLUMNS, write_csv
from onconet.errors import ConfigError

PAIR_MODES = ("consecutive", "first-last")


def _order(study: dict) -> tuple[str, str, str]:
    # Same-day studies (rare) fall back to the study time, then the UID, so the order is reproducible.
    return (str(study.get("study_date", "")), str(study.get("study_time", "")), str(study["study_uid"]))


def form_pairs(studies: Iterable[dict], mode: str = "consecutive") -> list[dict]:
    """Pairs of a patient's studies in date order.

    Args:
        studies: one dict per study (a manifest row): ``patient_id``, ``study_uid``, ``study_date``
            (``YYYY-MM-DD``), and optionally ``study_time``, ``site``, ``pet_path``, ``ct_path``. Rows with a
            ``status`` other than ``ok`` are left out.
        mode: ``consecutive`` (every study with the next one) or ``first-last`` (the first with the last).

    Returns:
        One dict per pair with the columns of ``pairs.csv``, ordered by patient and baseline date.
    """
    if mode not in PAIR_MODES:
        raise ConfigError(f"pairs mode {mode!r}: use one of {', '.join(PAIR_MODES)}")
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for study in studies:
        if study.get("status", "ok") == "ok" and study.get("study_uid"):
            by_patient[str(study["patient_id"])].append(study)
    pairs = []
    for patient_id in sorted(by_patient):
        ordered = sorted(by_patient[patient_id], key=_order)
        if len(ordered) < 2:
            continue
        couples = itertools.pairwise(ordered) if mode == "consecutive" else [(ordered[0], ordered[-1])]
        for baseline, followup in couples:
            pairs.append(
                {
                    "patient_id": patient_id,
                    "site": baseline.get("site", ""),
                    "baseline_study_uid": baseline["study_uid"],
                    "followup_study_uid": followup["study_uid"],
                    "baseline_date": baseline.get("study_date", ""),
                    "followup_date": followup.get("study_date", ""),
                    "baseline_pet": baseline.get("pet_path", ""),
                    "baseline_ct": baseline.get("ct_path", ""),
                    "followup_pet": followup.get("pet_path", ""),
                    "followup_ct": followup.get("ct_path", ""),
                }
            )
    return pairs


def write_pairs(path: str | os.PathLike, pairs: Iterable[dict]) -> None:
    """Write ``pairs.csv`` (atomically)."""
    write_csv(path, pairs, PAIRS_COLUMNS)
