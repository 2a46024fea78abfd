"""The parser on real report language read at run time from ../shared/realdata (never copied here).

The expected readings below are ours: for each sentence of ``uw_pet_sentences.jsonl`` (by its line
number) the SUV values in order with their timepoint and role. The sentences themselves stay outside
the repository; they carry no licence for redistribution.
"""

from __future__ import annotations

import json
import re

import pytest

from labeling import extract_suv, parse_report

pytestmark = pytest.mark.real

C, P = "current", "prior"
LES, REF, CMP = "lesion", "reference", "comparison"

#: line number -> [(value, timepoint, role), ...] in text order
UW_EXPECTED: dict[int, list[tuple[float, str, str]]] = {
    1: [(4.7, P, LES), (4.5, C, LES)],
    2: [(5.7, C, LES)],
    3: [(12.6, C, LES)],
    4: [(8.2, C, LES)],
    5: [(22.1, C, LES)],
    6: [(1.7, C, LES), (2.8, P, LES), (1.9, C, REF)],
    7: [(13.0, C, LES)],
    8: [(2.7, C, LES), (3.5, C, LES)],
    9: [(5.5, C, LES)],
    10: [(46.9, C, LES), (41.0, C, LES)],
    11: [(1.5, C, LES), (1.7, P, LES)],
    12: [(8.3, C, LES)],
    13: [(7.3, C, LES), (4.0, C, CMP)],
    14: [(2.5, C, LES)],
    15: [
        (11.5, C, LES),
        (8.7, P, LES),
        (10.0, C, LES),
        (7.4, P, LES),
        (5.6, C, LES),
        (5.0, P, LES),
        (3.8, C, LES),
        (2.3, P, LES),
        (4.9, P, LES),
    ],
    16: [
        (11.5, C, LES),
        (8.7, P, LES),
        (10.0, C, LES),
        (7.4, P, LES),
        (5.6, C, LES),
        (5.0, P, LES),
        (3.8, C, LES),
        (2.3, P, LES),
        (4.9, P, LES),
    ],
    17: [(2.1, C, LES)],
    18: [(3.0, C, LES)],
    19: [(5.4, C, LES)],
    20: [(3.6, C, LES), (1.9, P, LES)],
    21: [(8.6, C, LES)],
    22: [(3.3, C, LES), (6.3, P, LES)],
    23: [(6.0, C, LES)],
    24: [(6.6, C, LES)],
}

#: line number -> (value, site as written, largest size in mm) for lesions whose site / size we check
UW_SITES: dict[int, list[tuple[float, str, float | None]]] = {
    1: [(4.7, "right level IB lymph node", 8.0), (4.5, "right level IB lymph node", 10.0)],
    8: [(2.7, "left retroperitoneal lymph nodes", 6.0), (3.5, "left retroperitoneal lymph nodes", 8.0)],
    10: [(46.9, "aortic bifurcation lymph node", 19.0), (41.0, "right external iliac lymph node", 13.0)],
    11: [(1.5, "right upper paratracheal node", 8.0), (1.7, "right upper paratracheal node", 11.0)],
    18: [(3.0, "right level III cervical node", 11.0)],
}


@pytest.fixture(scope="module")
def uw_sentences(realdata) -> dict[int, str]:
    path = realdata / "reports" / "uw_pet_sentences.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return {number: json.loads(line)["text"] for number, line in enumerate(lines, start=1) if line.strip()}


@pytest.fixture(scope="module")
def danish_reports(realdata) -> list[str]:
    text = (realdata / "reports" / "danish_lymphoma_series.md").read_text(encoding="utf-8")
    return [part for part in text.split("\n---\n") if part.strip()]


def test_every_uw_sentence_has_expectations(uw_sentences):
    assert set(uw_sentences) == set(UW_EXPECTED)


@pytest.mark.parametrize("number", sorted(UW_EXPECTED))
def test_uw_values_timepoints_roles(uw_sentences, number):
    text = uw_sentences[number]
    mentions = extract_suv(text)
    assert [(m.value, m.timepoint, m.role) for m in mentions] == UW_EXPECTED[number]
    for m in mentions:  # the span holds the number that was read
        assert float(text[m.start : m.end].replace(",", ".")) == m.value


def test_uw_prior_dates(uw_sentences):
    """'2.3 on 5/6/2014 versus 4.9 on 2/5/2014': each prior keeps its own date."""
    dated = [(m.value, m.prior_date) for m in extract_suv(uw_sentences[15]) if m.prior_date]
    assert dated == [(2.3, "5/6/2014"), (4.9, "2/5/2014")]
    assert all(m.prior_date is None for m in extract_suv(uw_sentences[16]))  # the same without dates


@pytest.mark.parametrize("number", sorted(UW_SITES))
def test_uw_sites_and_sizes(uw_sentences, number):
    mentions = extract_suv(uw_sentences[number])
    assert [(m.value, m.site, m.size_mm) for m in mentions if m.role == "lesion"] == UW_SITES[number]


def test_uw_numbers_that_are_not_suv(uw_sentences):
    """Slice, series and image numbers, sizes, CT locations and dates are never read as SUV values."""
    for number, text in uw_sentences.items():
        read = {m.value for m in extract_suv(text)}
        expected = {value for value, _, _ in UW_EXPECTED[number]}
        assert read == expected, number
    assert 595.14 not in {m.value for m in extract_suv(uw_sentences[2])}


def test_uw_new_lesion_statement(uw_sentences):
    assert parse_report(uw_sentences[2]).facts.new_lesion  # "New hypermetabolic mesenteric lymph node"
    assert not parse_report(uw_sentences[10]).facts.new_lesion


#: Danish series: SUVmax values (decimal comma) per report, and the Deauville score per report
DANISH_VALUES = [[14.3, 17.8, 19.5, 11.6], [3.2, 4.5, 5.8, 3.9], [2.1], [], []]
DANISH_DEAUVILLE = [None, 3, 2, 1, 1]


def test_danish_decimal_commas(danish_reports):
    assert len(danish_reports) == 5
    for text, expected in zip(danish_reports, DANISH_VALUES, strict=True):
        mentions = extract_suv(text)
        assert [m.value for m in mentions] == expected
        assert all(m.timepoint == "current" and m.role == "lesion" for m in mentions)
        for m in mentions:
            assert re.fullmatch(r"\d+,\d", text[m.start : m.end])  # read with its comma


def test_danish_report_statements(danish_reports):
    parsed = [parse_report(text) for text in danish_reports]
    assert [p.facts.current_deauville for p in parsed] == DANISH_DEAUVILLE
    assert [p.facts.stated_class for p in parsed[1:]] == ["response"] * 4  # "partiel / komplet respons"
    assert not any(p.facts.new_lesion for p in parsed)  # "Ingen nytilkomne patologiske fund"
