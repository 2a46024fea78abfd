"""Labeling functions: each votes a response class for an exam pair from its reports, or abstains (None).

They use the PERCIST-style thresholds of :mod:`onconet.classes` on the values the reports give, or the
reports' words. They are deliberately independent views of the same pair, so a label model can weigh
them by how often they agree.

Example:
    >>> from labeling.report import parse_report
    >>> baseline = parse_report("Node SUVmax 10.2.")
    >>> pair = PairEvidence(baseline, parse_report("Node SUVmax 4.1 (previously 10.2)."))
    >>> lf_within_report(pair), lf_across_reports(pair)
    ('response', 'response')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from labeling.report import ParsedReport
from onconet.classes import RESPONSE_CLASSES, response_category, response_class

#: Deauville scores at or below this mean no lesion above the liver (complete metabolic response)
DEAUVILLE_COMPLETE: Final = 3
#: relative uncertainty of a written SUVmax (rounding, reader and workstation); see _percist_class
MEASUREMENT_MARGIN: Final = 0.05


@dataclass(frozen=True, slots=True)
class PairEvidence:
    """The parsed baseline report (None when missing) and follow-up report of one exam pair."""

    baseline: ParsedReport | None
    followup: ParsedReport


LabelingFunction = Callable[[PairEvidence], str | None]


def _percist_class(baseline: float, followup: float, report: ParsedReport) -> str | None:
    """The PERCIST-style class of two hottest values, with the follow-up's reference and new lesions.

    None (abstain) when the class would change if either value moved by ``MEASUREMENT_MARGIN``: values
    written to one decimal and re-measured on another workstation do not decide a borderline pair.
    """
    reference, new_lesion = report.reference_value, report.facts.new_lesion
    classes = {
        response_class(
            response_category(
                baseline * b_scale, followup * f_scale, reference_suv=reference, new_lesion=new_lesion
            )
        )
        for b_scale in (1 - MEASUREMENT_MARGIN, 1.0, 1 + MEASUREMENT_MARGIN)
        for f_scale in (1 - MEASUREMENT_MARGIN, 1.0, 1 + MEASUREMENT_MARGIN)
    }
    return classes.pop() if len(classes) == 1 else None


def lf_within_report(pair: PairEvidence) -> str | None:
    """PERCIST class of prior vs current hottest lesion inside the follow-up report ("4.1 (previously 10.2)").

    Like the clinical definition, a new lesion stated in the report makes it progression.
    """
    report = pair.followup
    prior = report.hottest("prior")
    if prior is None:
        return None
    current = report.hottest("current")
    if current is None:
        return "response" if report.all_lesions_resolved else None
    return _percist_class(prior, current, report)


def lf_across_reports(pair: PairEvidence) -> str | None:
    """PERCIST class of the baseline report's hottest lesion vs the follow-up report's (new lesion: PMD)."""
    if pair.baseline is None:
        return None
    baseline = pair.baseline.hottest("current")
    if baseline is None:
        return None
    followup = pair.followup.hottest("current")
    if followup is None:
        return "response" if pair.followup.all_lesions_resolved else None
    return _percist_class(baseline, followup, pair.followup)


def lf_wording(pair: PairEvidence) -> str | None:
    """The follow-up findings' qualitative change words (interval decrease, unchanged, progression)."""
    counts = pair.followup.facts.change_counts
    ranked = sorted(counts.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    return best if top > second else None


def lf_new_lesion(pair: PairEvidence) -> str | None:
    """A new lesion stated (not negated) in the follow-up report means progression."""
    return "progression" if pair.followup.facts.new_lesion else None


def lf_deauville(pair: PairEvidence) -> str | None:
    """Change of the Deauville score (baseline report, else the prior score quoted at follow-up)."""
    followup = pair.followup.facts.current_deauville
    if followup is None:
        return None
    baseline = pair.baseline.facts.current_deauville if pair.baseline is not None else None
    if baseline is None:
        baseline = pair.followup.facts.prior_deauville
    if baseline is None:
        return "response" if followup <= DEAUVILLE_COMPLETE else None
    if followup > baseline and followup > DEAUVILLE_COMPLETE:
        return "progression"
    if followup < baseline:
        return "response"
    if followup == baseline == DEAUVILLE_COMPLETE + 1:
        return "stable"
    return None  # equal at 5, the top of the scale, cannot tell stable from progression


def lf_impression(pair: PairEvidence) -> str | None:
    """The response category the follow-up impression states ("partial metabolic response")."""
    return pair.followup.facts.stated_class


#: name (column ``lf_<name>``) -> function, in column order
LABELING_FUNCTIONS: Final[dict[str, LabelingFunction]] = {
    "within_report": lf_within_report,
    "across_reports": lf_across_reports,
    "wording": lf_wording,
    "new_lesion": lf_new_lesion,
    "deauville": lf_deauville,
    "impression": lf_impression,
}

ABSTAIN: Final = -1


def vote_row(pair: PairEvidence) -> list[int]:
    """Votes of every labeling function as class indices (``ABSTAIN`` = -1)."""
    row = []
    for function in LABELING_FUNCTIONS.values():
        vote = function(pair)
        row.append(RESPONSE_CLASSES.index(vote) if vote is not None else ABSTAIN)
    return row
