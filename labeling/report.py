"""Parsed reports and the public parsing functions.

Example:
    >>> mentions = extract_suv("SUV max 7.3 compared to 4.0 on the contralateral side")
    >>> [(m.value, m.timepoint, m.role) for m in mentions]
    [(7.3, 'current', 'lesion'), (4.0, 'current', 'comparison')]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from labeling.facts import ReportFacts
from labeling.mentions import SuvMention, Timepoint
from labeling.pipeline import build_pipeline


@dataclass(frozen=True, slots=True)
class ParsedReport:
    """Everything read from one report."""

    mentions: list[SuvMention]
    facts: ReportFacts

    def lesion_values(self, timepoint: Timepoint) -> list[float]:
        """Lesion SUVs at ``timepoint``, negated mentions and threshold values ("< 2.5") left out."""
        return [
            m.value
            for m in self.mentions
            if m.role == "lesion" and m.timepoint == timepoint and not m.negated and m.bound != "below"
        ]

    def hottest(self, timepoint: Timepoint) -> float | None:
        """The hottest lesion SUV written for ``timepoint``, or None."""
        values = self.lesion_values(timepoint)
        return max(values) if values else None

    @property
    def reference_value(self) -> float | None:
        """The current PERCIST reference: liver (SUVmean preferred), else blood pool; never organ uptake."""
        current = [m for m in self.mentions if m.role == "reference" and m.timepoint == "current"]
        for region in ("liver", "blood_pool"):
            values = [m for m in current if m.reference_region == region]
            if values:
                means = [m.value for m in values if m.metric == "mean"]
                return max(means) if means else max(m.value for m in values)
        return None

    @property
    def all_lesions_resolved(self) -> bool:
        """Lesions written only as prior values, each in a clause that says it resolved."""
        lesions = [m for m in self.mentions if m.role == "lesion" and not m.negated]
        return bool(lesions) and all(m.timepoint == "prior" and m.resolved for m in lesions)


def parse_reports(texts: Iterable[str], batch_size: int = 64) -> Iterator[ParsedReport]:
    """Parse many reports with ``nlp.pipe`` (one process), in order."""
    for doc in build_pipeline().pipe(texts, batch_size=batch_size):
        yield ParsedReport(doc._.suv_mentions, doc._.report_facts)


def parse_report(text: str) -> ParsedReport:
    """Parse one report."""
    return next(parse_reports([text]))


def extract_suv(text: str) -> list[SuvMention]:
    """Every SUV mention of ``text``, in order (value, timepoint, role, span, site, size ...)."""
    return parse_report(text).mentions
