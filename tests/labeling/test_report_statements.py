"""Report-level statements: sections, new lesions, Deauville scores, change wording, the stated category."""

from __future__ import annotations

import pytest

from labeling import parse_report
from labeling.sections import find_sections


def test_sections_and_regions():
    text = (
        "INDICATION: lymphoma restaging.\nTECHNIQUE: 10 mCi FDG.\nCOMPARISON: PET/CT 2024-01-03.\n"
        "FINDINGS:\nHead and neck: normal.\nChest: node.\n\nIMPRESSION:\n1. Better.\n"
    )
    sections = find_sections(text)
    assert [(s.name, s.region) for s in sections] == [
        ("indication", None),
        ("technique", None),
        ("comparison", None),
        ("findings", None),
        ("findings", "head and neck"),
        ("findings", "chest"),
        ("impression", None),
    ]
    assert text[sections[-1].start :].startswith("IMPRESSION")
    assert sections[0].start == 0 and sections[-1].end == len(text)
    assert [s.name for s in find_sections("## Beskrivelse\nx\n## Konklusion\ny")] == [
        "findings",
        "impression",
    ]
    assert [s.name for s in find_sections("no headers at all")] == ["unknown"]


@pytest.mark.parametrize(
    ("text", "new"),
    [
        ("FINDINGS: New hypermetabolic left axillary lymph node, SUVmax 5.1.", True),
        ("FINDINGS: Interval development of a right iliac bone lesion.", True),
        ("FINDINGS: A newly identified FDG-avid focus in the liver.", True),
        ("FINDINGS: No new FDG-avid lesions.", False),
        ("FINDINGS: There is no evidence of new disease.", False),
        ("FINDINGS: Without new lesions.", False),
        ("INDICATION: new chemotherapy regimen.\nFINDINGS: Node unchanged.", False),
        ("INDICATION: new lesion on outside CT.\nFINDINGS: Node unchanged.", False),
    ],
)
def test_new_lesions(text, new):
    assert parse_report(text).facts.new_lesion is new


@pytest.mark.parametrize(
    ("text", "current", "prior"),
    [
        ("IMPRESSION: Deauville score 4.", 4, None),
        ("IMPRESSION: Deauville 5-point scale: 3.", 3, None),
        ("IMPRESSION: Deauville score of 2 (previously 4).", 2, 4),
        ("IMPRESSION: DS 5.", 5, None),
        ("FINDINGS: Deauville 3. IMPRESSION: Deauville 2.", 2, None),
        ("IMPRESSION: Complete metabolic response.", None, None),
    ],
)
def test_deauville(text, current, prior):
    facts = parse_report(text).facts
    assert (facts.current_deauville, facts.prior_deauville) == (current, prior)


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        ("Interval decrease in size and uptake of the right axillary node.", "response"),
        ("The node has resolved. The other node is smaller.", "response"),
        ("Node SUVmax 3.1, decreased compared with the prior study.", "response"),
        ("Interval increase in uptake. The liver lesion has enlarged.", "progression"),
        ("Node SUVmax 9.1, increased compared with the prior study.", "progression"),
        ("The node is unchanged. No significant interval change.", "stable"),
        ("Similar in size and activity to the prior study.", "stable"),
        ("No interval increase in uptake.", None),
        ("Focus of increased FDG uptake in the right lung.", None),
    ],
)
def test_change_wording(findings, expected):
    counts = parse_report(f"FINDINGS:\n{findings}\n").facts.change_counts
    top = max(counts.values())
    winners = [cls for cls, n in counts.items() if n == top and n > 0]
    assert (winners[0] if len(winners) == 1 else None) == expected


@pytest.mark.parametrize(
    ("impression", "expected"),
    [
        ("Complete metabolic response.", "response"),
        ("Partial metabolic response (PERCIST).", "response"),
        ("Favorable treatment response.", "response"),
        ("Stable metabolic disease.", "stable"),
        ("No significant interval change.", "stable"),
        ("Progressive metabolic disease with new osseous lesions.", "progression"),
        ("Findings consistent with disease progression.", "progression"),
        ("No evidence of disease progression.", None),
        ("Mixed findings, see above.", None),
        ("Mixed response: some lesions decreased while others increased in FDG avidity.", None),
        ("Dissociated metabolic response.", None),
        ("Mixed response; overall progressive metabolic disease.", "progression"),
        ("Good treatment response.", "response"),
    ],
)
def test_stated_category(impression, expected):
    text = f"FINDINGS:\nNode SUVmax 4.0.\n\nIMPRESSION:\n{impression}\n"
    assert parse_report(text).facts.stated_class == expected


def test_category_only_read_from_the_impression():
    text = (
        "FINDINGS:\nProgressive disease was suspected on CT.\n\nIMPRESSION:\nComplete metabolic response.\n"
    )
    assert parse_report(text).facts.stated_class == "response"
