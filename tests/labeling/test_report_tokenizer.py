"""The report tokenizers: the cases the rules exist for, both implementations agreeing, losslessness."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeling.tokenizer import make_nlp, make_rule_nlp

FAST = make_nlp()
RULES = make_rule_nlp()

CASES = {
    "SUVmax=4.5": ["SUVmax", "=", "4.5"],
    "SUVmax:4.5": ["SUVmax", ":", "4.5"],
    "SUVmax4.5": ["SUVmax", "4.5"],
    "SUV(max) 13": ["SUV", "(", "max", ")", "13"],
    "SUV(max):4,8": ["SUV", "(", "max", ")", ":", "4,8"],
    "SUV-max 12,3.": ["SUV", "-", "max", "12,3", "."],
    "(SUV max 8)": ["(", "SUV", "max", "8", ")"],
    "4.5 g/mL": ["4.5", "g/mL"],
    "4.5g/mL": ["4.5", "g/mL"],
    "8x6mm": ["8", "x", "6", "mm"],
    "8 x 6 mm": ["8", "x", "6", "mm"],
    "on 01-03-2024.": ["on", "01-03-2024", "."],
    "on 5/6/2014,": ["on", "5/6/2014", ","],
    "(2024-01-03)": ["(", "2024-01-03", ")"],
    "6.2->4.5": ["6.2", "->", "4.5"],
    "6.2→4.5": ["6.2", "→", "4.5"],
    "3.1–5.6": ["3.1", "–", "5.6"],
    "2.7/3.5": ["2.7", "/", "3.5"],
    "Deauville 4/5": ["Deauville", "4", "/", "5"],
    "vs. 6.2": ["vs.", "6.2"],
    "approx. 5": ["approx.", "5"],
    "8.3…(PET": ["8.3", "…", "(", "PET"],
    "~4.5 <2.5": ["~", "4.5", "<", "2.5"],
    "1.\nInterval": ["1", ".", "\n", "Interval"],
}


@pytest.mark.parametrize("text", sorted(CASES))
@pytest.mark.parametrize("nlp", [FAST, RULES], ids=["fast", "rules"])
def test_report_rules(nlp, text):
    assert [t.text for t in nlp(text)] == CASES[text]


def test_default_english_rules_get_these_wrong():
    """Why the custom rules exist: blank English keeps cue and value together and splits dates."""
    import spacy

    blank = spacy.blank("en")
    assert [t.text for t in blank("SUVmax=4.5")] == ["SUVmax=4.5"]
    assert len(blank("01-03-2024")) == 5


def test_whitespace_runs_are_tokens_and_single_spaces_are_not():
    doc = FAST("  lead \n\n x  y ")
    assert [t.text for t in doc] == ["  ", "lead", "\n\n ", "x", " ", "y"]
    assert doc.text == "  lead \n\n x  y "


REPORT_ALPHABET = st.sampled_from(
    [
        *"SUVmaxpeak0123456789.,:;=()-/x ~<>\n\t'’…→–",
        *["SUVmax", "SUV", " max ", "g/mL", "mm", "cm", "slice ", "prior ", "vs.", "é", "ø", "İ", "\u00a0"],
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(REPORT_ALPHABET, max_size=60).map("".join) | st.text(max_size=120))
def test_tokenizers_are_lossless_and_never_crash(text):
    for nlp in (FAST, RULES):
        doc = nlp(text)
        assert doc.text == text
        assert all(token.text for token in doc)
