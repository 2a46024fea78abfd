"""Properties of value reading on arbitrary text: no crash, no invented value, spans that hold the number."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeling import parse_report
from labeling.mentions import MAX_SUV

NUMBER = re.compile(r"\d{1,3}(?:[.,]\d{1,3})?|[.,]\d{1,2}")

FRAGMENTS = st.sampled_from(
    [
        "SUVmax",
        "SUV max",
        "max SUV",
        "SUV(max)",
        "SUVpeak",
        "SUVmean",
        "of",
        "is",
        "=",
        ":",
        "up to",
        "measuring",
        "and",
        ",",
        "versus",
        "vs.",
        "compared to",
        "previously",
        "prior",
        "from",
        "to",
        "->",
        "(",
        ")",
        ".",
        ";",
        "\n",
        "\n\n",
        "slice",
        "series",
        "image",
        "mm",
        "cm",
        "x",
        "on",
        "5/6/2014",
        "2024-01-03",
        "May 6, 2014",
        "Deauville",
        "liver",
        "blood pool",
        "contralateral",
        "side",
        "node",
        "No",
        "new",
        "resolved",
        "no longer seen",
        "IMPRESSION:",
        "FINDINGS:",
        "HU",
        "-",
        "respectively",
    ]
)
NUMBERS = st.one_of(
    st.integers(0, 999).map(str),
    st.floats(0, 200, allow_nan=False).map(lambda v: f"{v:.1f}"),
    st.floats(0, 99, allow_nan=False).map(lambda v: f"{v:.1f}".replace(".", ",")),
    st.floats(0, 9, allow_nan=False).map(lambda v: f"{v:.2f}"),
)
REPORT_LIKE = st.lists(st.one_of(FRAGMENTS, NUMBERS), max_size=40).map(" ".join)


def check_mentions(text: str) -> None:
    report = parse_report(text)
    for m in report.mentions:
        written = text[m.start : m.end]
        assert NUMBER.fullmatch(written), (written, text)
        assert float(written.replace(",", ".")) == m.value
        assert 0 <= m.value <= MAX_SUV
        assert m.timepoint in ("current", "prior")
        assert m.role in ("lesion", "reference", "comparison")
        assert m.cue_start < m.cue_end <= m.start  # a value follows its cue
    assert len({m.start for m in report.mentions}) == len(report.mentions)  # each number read once


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REPORT_LIKE)
def test_report_like_text(text):
    check_mentions(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text(text):
    check_mentions(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=150))
def test_no_digits_no_values(text):
    """Without a digit there is nothing to read, whatever the cues."""
    assert parse_report("SUVmax " + text).mentions == []
