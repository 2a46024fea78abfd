"""Report parsing (spaCy), labeling functions and a label model: weak labels from radiology reports.

Example:
    >>> from labeling import extract_suv
    >>> mentions = extract_suv("Node SUVmax 4,8 (previously 6.2); liver SUVmean 2.1.")
    >>> [(m.value, m.timepoint, m.role) for m in mentions]
    [(4.8, 'current', 'lesion'), (6.2, 'prior', 'lesion'), (2.1, 'current', 'reference')]
"""

from labeling.mentions import SuvMention
from labeling.pipeline import build_pipeline
from labeling.report import ParsedReport, extract_suv, parse_report, parse_reports

__all__ = ["ParsedReport", "SuvMention", "build_pipeline", "extract_suv", "parse_report", "parse_reports"]
