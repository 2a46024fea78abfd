"""Labeling functions on hand-written report pairs: each votes the class the reports support, or abstains."""

from __future__ import annotations

import pytest

from labeling import parse_report
from labeling.functions import (
    LABELING_FUNCTIONS,
    PairEvidence,
    lf_across_reports,
    lf_deauville,
    lf_impression,
    lf_new_lesion,
    lf_within_report,
    lf_wording,
    vote_row,
)

BASELINE = (
    "FINDINGS:\nRight axillary lymph node, SUVmax 10.0. Liver SUVmean 2.0.\n\nIMPRESSION:\nDeauville 5.\n"
)


def pair(followup: str, baseline: str | None = BASELINE) -> PairEvidence:
    return PairEvidence(parse_report(baseline) if baseline else None, parse_report(followup))


def test_partial_response():
    p = pair(
        "FINDINGS:\nInterval decrease of the right axillary node, SUVmax 4.0 (previously 10.0).\n\n"
        "IMPRESSION:\nPartial metabolic response. Deauville 4.\n"
    )
    assert [f(p) for f in LABELING_FUNCTIONS.values()] == [
        "response",
        "response",
        "response",
        None,
        "response",
        "response",
    ]
    assert vote_row(p) == [0, 0, 0, -1, 0, 0]


def test_progression_by_value_and_by_new_lesion():
    p = pair("FINDINGS:\nRight axillary node, SUVmax 15.0 versus 10.0 previously.\n")
    assert (lf_within_report(p), lf_across_reports(p)) == ("progression", "progression")
    p = pair("FINDINGS:\nRight axillary node SUVmax 9.8 (prior 10.0). New left iliac bone lesion.\n")
    assert lf_new_lesion(p) == "progression"
    assert lf_within_report(p) == "progression"  # PERCIST: a new lesion is progression whatever the values
    assert lf_new_lesion(pair("FINDINGS:\nNo new lesions. Node SUVmax 9.8.\n")) is None


def test_complete_response_against_the_liver():
    p = pair("FINDINGS:\nRight axillary node, SUVmax 1.8 (previously 10.0). Liver SUVmean 2.1.\n")
    assert lf_within_report(p) == "response"
    p = pair("FINDINGS:\nThe right axillary node (previously SUVmax 10.0) has resolved.\n")
    assert (lf_within_report(p), lf_across_reports(p)) == ("response", "response")


def test_organ_uptake_is_not_the_percist_reference():
    """The bladder's SUVmax 30 must not make every lesion 'below the reference'."""
    p = pair(
        "FINDINGS:\nRight axillary node, SUVmax 10.2 (prior 10.0). Urinary bladder, physiologic, SUVmax 30.\n"
    )
    assert lf_within_report(p) == "stable"


def test_borderline_values_abstain():
    """7.1 after 10.0 is 0.71 of baseline: within 5 % of the 0.7 threshold, the values do not decide."""
    p = pair("FINDINGS:\nRight axillary node, SUVmax 7.1 (previously 10.0).\n")
    assert (lf_within_report(p), lf_across_reports(p)) == (None, None)
    p = pair("FINDINGS:\nRight axillary node, SUVmax 6.0 (previously 10.0).\n")
    assert lf_within_report(p) == "response"


def test_missing_values_abstain():
    p = pair("FINDINGS:\nNo change.\n", baseline=None)
    assert lf_within_report(p) is None and lf_across_reports(p) is None and lf_deauville(p) is None


@pytest.mark.parametrize(
    ("baseline", "followup", "vote"),
    [
        (5, 3, "response"),
        (4, 2, "response"),
        (3, 5, "progression"),
        (4, 4, "stable"),
        (5, 5, None),  # the top of the scale: stable or progression cannot be told
        (None, 2, "response"),
        (None, 4, None),
    ],
)
def test_deauville_change(baseline, followup, vote):
    base = f"IMPRESSION: Deauville {baseline}." if baseline else "IMPRESSION: staging."
    assert lf_deauville(pair(f"IMPRESSION: Deauville {followup}.", baseline=base)) == vote


def test_wording_and_impression():
    p = pair(
        "FINDINGS:\nThe node is unchanged. No significant interval change.\n\nIMPRESSION:\nStable disease.\n"
    )
    assert (lf_wording(p), lf_impression(p)) == ("stable", "stable")
    p = pair("FINDINGS:\nNode SUVmax 9.0.\n")
    assert (lf_wording(p), lf_impression(p)) == (None, None)
