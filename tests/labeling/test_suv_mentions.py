"""SUV mention reading on written phrasings: cues, linkers, lists, ranges, timepoints, roles, distractors."""

from __future__ import annotations

import pytest

from labeling import extract_suv

C, P = "current", "prior"
LES, REF, CMP = "lesion", "reference", "comparison"


def readings(text: str) -> list[tuple[float, str, str]]:
    return [(m.value, m.timepoint, m.role) for m in extract_suv(text)]


@pytest.mark.parametrize(
    ("text", "metric"),
    [
        ("Right axillary node, SUVmax 4.5.", "max"),
        ("Right axillary node, SUV max 4.5.", "max"),
        ("Right axillary node, max SUV 4.5.", "max"),
        ("Right axillary node, maximum SUV of 4.5.", "max"),
        ("Right axillary node, SUV(max) 4.5.", "max"),
        ("Right axillary node, SUV-max: 4.5.", "max"),
        ("Right axillary node, SUVmax=4.5 g/mL.", "max"),
        ("Right axillary node with a maximum standardized uptake value (SUVmax) of 4.5.", "max"),
        ("Right axillary node, SUVpeak 4.5.", "peak"),
        ("Right axillary node, peak SUV 4.5.", "peak"),
        ("Right axillary node with an SUV of 4.5.", "unspecified"),
    ],
)
def test_cues(text, metric):
    (mention,) = extract_suv(text)
    assert (mention.value, mention.timepoint, mention.role, mention.metric) == (4.5, C, LES, metric)
    assert text[mention.start : mention.end] == "4.5"


@pytest.mark.parametrize(
    "text",
    [
        "The node has an SUVmax of 6.1.",
        "The node SUVmax: 6.1.",
        "The node has SUVmax = 6.1.",
        "The SUVmax is 6.1 in the node.",
        "The node measuring SUVmax 6.1.",
        "A node measures SUV max of up to 6.1.",
        "A node with SUVmax of approximately 6.1.",
        "Node SUVmax 6,1.",
    ],
)
def test_linkers(text):
    assert readings(text) == [(6.1, C, LES)]


def test_lists_and_ranges():
    assert readings("Nodes show SUV max of 2.7 and 3.5 respectively.") == [(2.7, C, LES), (3.5, C, LES)]
    assert readings("Several nodes, SUVmax 4.1, 3.2 and 2.8.") == [
        (4.1, C, LES),
        (3.2, C, LES),
        (2.8, C, LES),
    ]
    assert readings("Multiple nodes with SUVmax 3.1-5.6.") == [(3.1, C, LES), (5.6, C, LES)]
    assert readings("Nodes with SUVmax ranging from 3.1 to 5.6.") == [(3.1, C, LES), (5.6, C, LES)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Node SUVmax 4.5 (previously 6.2).", [(4.5, C, LES), (6.2, P, LES)]),
        ("Node SUVmax 4.5, previously 6.2.", [(4.5, C, LES), (6.2, P, LES)]),
        ("Node SUVmax 4.5 (6.2 previously).", [(4.5, C, LES), (6.2, P, LES)]),
        ("Node SUVmax 11.5 versus 8.7 previously.", [(11.5, C, LES), (8.7, P, LES)]),
        ("Node SUVmax 11.5 vs. 8.7 on the prior study.", [(11.5, C, LES), (8.7, P, LES)]),
        ("Node SUVmax decreased from 6.2 to 4.5.", [(6.2, P, LES), (4.5, C, LES)]),
        ("Node SUVmax has increased to 8.2 from 5.1.", [(8.2, C, LES), (5.1, P, LES)]),
        ("Node SUVmax 6.2 -> 4.5.", [(6.2, P, LES), (4.5, C, LES)]),
        ("Node now SUVmax 1.5 compared to prior SUV max of 1.7.", [(1.5, C, LES), (1.7, P, LES)]),
        ("The node SUVmax was 6.2 and is now 4.1.", [(6.2, P, LES), (4.1, C, LES)]),
        ("On the prior study the node had SUVmax 6.2.", [(6.2, P, LES)]),
        ("Node (SUV max 4.7) on prior examination.", [(4.7, P, LES)]),
        ("Node SUVmax 3.3 on slice 94 compared to 6.3 on the prior PET/CT.", [(3.3, C, LES), (6.3, P, LES)]),
        ("Node SUVmax 4.5 today (previously 6.2).", [(4.5, C, LES), (6.2, P, LES)]),
        ("Node max SUV 7.3 (prior max SUV 6.9), 30 mm.", [(7.3, C, LES), (6.9, P, LES)]),
        ("Node SUVmax 3.1, decreased compared with the prior study.", [(3.1, C, LES)]),
    ],
)
def test_timepoints(text, expected):
    assert readings(text) == expected


def test_prior_dates():
    mentions = extract_suv("Node SUVmax 3.8 versus 2.3 on 5/6/2014 versus 4.9 on 2014-02-05.")
    assert [(m.value, m.timepoint, m.prior_date) for m in mentions] == [
        (3.8, C, None),
        (2.3, P, "5/6/2014"),
        (4.9, P, "2014-02-05"),
    ]
    (_, prior) = extract_suv("Node SUVmax 5.7, compared to 13.3 on January 9, 2025.")
    assert (prior.value, prior.timepoint, prior.prior_date) == (13.3, P, "January 9, 2025")
    (_, prior) = extract_suv("Node SUVmax 2.8, previously 2.3 on 22 Feb 2024.")
    assert (prior.timepoint, prior.prior_date) == (P, "22 Feb 2024")


@pytest.mark.parametrize(
    ("text", "expected", "region"),
    [
        ("Liver SUVmean 2.1.", [(2.1, C, REF)], "liver"),
        ("Physiologic liver uptake (SUVmax 2.4).", [(2.4, C, REF)], "liver"),
        ("Mediastinal blood pool SUVmax 1.8.", [(1.8, C, REF)], "blood_pool"),
        ("Background activity in the mediastinum, SUVmax 1.9.", [(1.9, C, REF)], "background"),
        ("Normal cerebral FDG distribution (SUVmax 9.7).", [(9.7, C, REF)], "physiologic"),
        (
            "Intense physiologic activity in the urinary bladder (SUVmax 32.7).",
            [(32.7, C, REF)],
            "physiologic",
        ),
        ("Node SUVmax 5.2, compared to 2.1 in the liver.", [(5.2, C, LES), (2.1, C, REF)], "liver"),
    ],
)
def test_reference_regions(text, expected, region):
    mentions = extract_suv(text)
    assert [(m.value, m.timepoint, m.role) for m in mentions] == expected
    assert [m.reference_region for m in mentions if m.role == REF] == [region]


@pytest.mark.parametrize(
    "text",
    [
        "Hepatic segment VI lesion with SUVmax 8.4.",
        "A lesion in the liver with SUVmax 8.4.",
        "Mediastinal lymph node, SUVmax 8.4.",
        "Brain metastasis, SUVmax 8.4.",
    ],
)
def test_lesions_in_reference_organs_stay_lesions(text):
    assert readings(text) == [(8.4, C, LES)]


def test_contralateral_comparison():
    assert readings("Left tonsil SUV max of 7.3 compared to 4.0 on the contralateral right side.") == [
        (7.3, C, LES),
        (4.0, C, CMP),
    ]
    assert readings("For comparison, contralateral node SUV max 1.0.") == [(1.0, C, CMP)]
    assert readings("Left node SUVmax 5.0 versus 1.2 on the opposite side.") == [(5.0, C, LES), (1.2, C, CMP)]


@pytest.mark.parametrize(
    "text",
    [
        "A 2.1 x 1.5 cm node (series 3, image 68) with SUVmax 4.1.",
        "Node with SUVmax 4.1 (slice 144 Series 2), 1.6 cm.",
        "Node (CT slice location minus 595.14) with SUVmax 4.1, Deauville 4.",
        "Node with SUVmax 4.1 on 5/6/2014 imaging; attenuation -45 HU.",
        "Node measuring 13 mm, SUVmax 4.1, 2.0 x 1.7 cm.",
    ],
)
def test_distractors_are_never_values(text):
    assert [m.value for m in extract_suv(text)] == [4.1]


def test_sizes_and_sites():
    (mention,) = extract_suv("A 2.1 x 1.5 cm right axillary lymph node with SUVmax 4.1.")
    assert (mention.site, mention.size_mm) == ("right axillary lymph node", 21.0)
    (mention,) = extract_suv("SUVmax 5.2 in the left external iliac lymph node.")
    assert mention.site == "left external iliac lymph node"


def test_negation_and_resolution():
    (negated,) = extract_suv("No hypermetabolic lymph nodes (SUVmax < 2.5).")
    assert negated.negated and negated.bound == "below"
    (mention,) = extract_suv("No significant change in the node, SUVmax 4.5.")
    assert not mention.negated
    (resolved,) = extract_suv("The previously described right axillary node (SUVmax 6.1) has resolved.")
    assert (resolved.timepoint, resolved.resolved) == (P, True)
    (gone,) = extract_suv("The left node (SUVmax 5.0) is no longer seen.")
    assert (gone.timepoint, gone.resolved) == (P, True)


def test_sections_set_defaults():
    text = "CLINICAL HISTORY: lymphoma, SUVmax 15.2 at staging.\n\nFINDINGS:\nNode SUVmax 4.0.\n"
    mentions = extract_suv(text)
    assert [(m.value, m.timepoint, m.section) for m in mentions] == [
        (15.2, P, "indication"),
        (4.0, C, "findings"),
    ]


def test_text_without_suv():
    assert extract_suv("") == []
    assert extract_suv("No abnormal FDG uptake. Slice 42, 3.2 cm.") == []
