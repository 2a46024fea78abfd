"""spaCy Matcher patterns: SUV cues and report-level statements (new lesions, Deauville, change, category).

Each pattern list is keyed by a match label; :func:`build_matcher` puts them all in one Matcher so a
report is scanned once.
"""

from __future__ import annotations

from typing import Any, Final

from spacy.matcher import Matcher
from spacy.vocab import Vocab

from labeling.lexicon import METRIC_WORDS, SUV_WORD_METRIC

Pattern = list[dict[str, Any]]

_METRIC = {"LOWER": {"IN": sorted(METRIC_WORDS)}}
_SUV = {"LOWER": {"IN": ["suv", "sul"]}}
_SUV_VALUE = {"LOWER": {"IN": ["value", "values"]}}
_STANDARDIZED = {"LOWER": {"IN": ["standardized", "standardised"]}}

SUV_CUE_PATTERNS: Final[list[Pattern]] = [
    [{"LOWER": {"IN": sorted(SUV_WORD_METRIC)}}],
    [_SUV, _METRIC],
    [_SUV, {"ORTH": {"IN": ["-", "_"]}}, _METRIC],
    [_SUV, {"ORTH": "("}, _METRIC, {"ORTH": ")"}],
    [_SUV, {"ORTH": "["}, _METRIC, {"ORTH": "]"}],
    [_METRIC, _SUV],
    [_METRIC, {"ORTH": "-"}, _SUV],
    [_METRIC, _STANDARDIZED, {"LOWER": "uptake"}, _SUV_VALUE],
    [_STANDARDIZED, {"LOWER": "uptake"}, _SUV_VALUE],
]

_CHANGE_OBJECTS = ["size", "uptake", "activity", "avidity", "intensity", "suv", "suvmax", "metabolic", "fdg"]

NEW_LESION_PATTERNS: Final[list[Pattern]] = [
    [{"LOWER": {"IN": ["new", "newly"]}}],
    [{"LOWER": "interval"}, {"LOWER": {"IN": ["development", "appearance", "emergence"]}}],
    [{"LOWER": {"IN": ["nytilkomne", "nytilkommen", "nytilkomment", "nye"]}}],
]

DEAUVILLE_PATTERNS: Final[list[Pattern]] = [
    [{"LOWER": {"IN": ["deauville", "5-ps", "5ps", "d-score"]}}],
    [{"LOWER": "ds"}, {"ORTH": ":", "OP": "?"}, {"LOWER": {"IN": ["1", "2", "3", "4", "5"]}}],
]

#: qualitative change, by the class it argues for
CHANGE_PATTERNS: Final[dict[str, list[Pattern]]] = {
    "CHANGE_RESPONSE": [
        [
            {"LOWER": "interval"},
            {"LOWER": {"IN": ["decrease", "decreased", "reduction", "improvement", "resolution", "regression"]}},
        ],
        [{"LOWER": {"IN": ["decreased", "decrease", "reduction", "reduced"]}}, {"LOWER": {"IN": ["in", "since"]}}],
        [
            {"LOWER": {"IN": ["has", "have", "had"]}},
            {"LOWER": {"IN": ["decreased", "improved", "regressed", "resolved", "diminished", "normalized"]}},
        ],
        [
            {
                "LOWER": {
                    "IN": [
                        "decreasing",
                        "improvement",
                        "improved",
                        "regression",
                        "regressed",
                        "resolved",
                        "resolution",
                        "diminished",
                        "smaller",
                        "normalized",
                        "normalised",
                        "reduktion",
                        "reducerede",
                        "reduceret",
                        "normalisering",
                    ]
                }
            }
        ],
        [{"LOWER": "no"}, {"LOWER": "longer"}],
        [{"LOWER": {"IN": ["less", "mindre"]}}, {"LOWER": {"IN": ["avid", "intense", "hypermetabolic", "udtalt"]}}],
        [{"LOWER": "no"}, {"LOWER": {"IN": ["residual", "remaining"]}}],
    ],
    "CHANGE_PROGRESSION": [
        [
            {"LOWER": "interval"},
            {"LOWER": {"IN": ["increase", "increased", "enlargement", "growth", "worsening", "progression"]}},
        ],
        [{"LOWER": {"IN": ["increased", "increase", "enlargement"]}}, {"LOWER": {"IN": ["in", "since"]}}],
        [
            {"LOWER": {"IN": ["has", "have", "had"]}},
            {"LOWER": {"IN": ["increased", "progressed", "enlarged", "grown", "worsened"]}},
        ],
        [
            {
                "LOWER": {
                    "IN": [
                        "increasing",
                        "progression",
                        "progressive",
                        "progressed",
                        "worsening",
                        "worsened",
                        "enlarging",
                        "growing",
                        "tiltagende",
                    ]
                }
            }
        ],
        [{"LOWER": {"IN": ["more", "mere"]}}, {"LOWER": {"IN": ["avid", "intense", "hypermetabolic", "udtalt"]}}],
    ],
    "CHANGE_STABLE": [
        [{"LOWER": {"IN": ["unchanged", "stable", "uændret", "uændrede", "stationær", "stationære"]}}],
        [{"LOWER": {"IN": ["no", "without"]}}, {"LOWER": "significant", "OP": "?"}, {"LOWER": "interval", "OP": "?"},
         {"LOWER": {"IN": ["change", "changes"]}}],
        [{"LOWER": "not"}, {"LOWER": {"IN": ["significantly", "substantially", "appreciably"]}},
         {"LOWER": "changed"}],
        [{"LOWER": "similar"}, {"LOWER": {"IN": ["in", "to"]}},
         {"LOWER": {"IN": [*_CHANGE_OBJECTS, "prior", "previous", "appearance", "baseline"]}}],
    ],
}

#: the impression's stated response category (weight 2: a PERCIST / Lugano term; 1: plain wording)
CATEGORY_PATTERNS: Final[dict[str, list[Pattern]]] = {
    "CATEGORY_RESPONSE": [
        [{"LOWER": {"IN": ["complete", "partial", "komplet", "partiel"]}},
         {"LOWER": {"IN": ["metabolic", "metabolisk"]}, "OP": "?"},
         {"LOWER": {"IN": ["response", "remission", "respons"]}}],
        [{"LOWER": {"IN": ["cmr", "pmr", "cr", "pr"]}}],
        [{"LOWER": {"IN": ["treatment", "therapy", "therapeutic", "metabolic", "favorable", "favourable", "good",
                           "excellent", "behandlingsrespons"]}},
         {"LOWER": {"IN": ["response", "respons"]}, "OP": "?"}],
        [{"LOWER": {"IN": ["response", "responding", "responded", "respons"]}}],
    ],
    "CATEGORY_STABLE": [
        [{"LOWER": {"IN": ["stable", "stationær"]}}, {"LOWER": {"IN": ["metabolic", "metabolisk"]}, "OP": "?"},
         {"LOWER": {"IN": ["disease", "sygdom"]}}],
        [{"LOWER": "smd"}],
        [{"LOWER": "no"}, {"LOWER": "metabolic"}, {"LOWER": "response"}],
        [{"LOWER": {"IN": ["unchanged", "uændret", "stable"]}}],
        [{"LOWER": {"IN": ["no", "without"]}}, {"LOWER": "significant", "OP": "?"}, {"LOWER": "interval", "OP": "?"},
         {"LOWER": "change"}],
    ],
    "CATEGORY_PROGRESSION": [
        [{"LOWER": {"IN": ["progressive", "progressiv"]}}, {"LOWER": {"IN": ["metabolic", "metabolisk"]}, "OP": "?"},
         {"LOWER": {"IN": ["disease", "sygdom"]}}],
        [{"LOWER": {"IN": ["pmd", "pd"]}}],
        [{"LOWER": {"IN": ["disease", "metabolic"]}}, {"LOWER": "progression"}],
        [{"LOWER": "progression"}, {"LOWER": "of"}, {"LOWER": "disease"}],
        [{"LOWER": {"IN": ["progression", "progressive", "progressing", "progressed", "worsening"]}}],
    ],
}

#: labels whose match means a strong (PERCIST-term) statement in the impression
STRONG_CATEGORY_FIRST_WORDS: Final[frozenset[str]] = frozenset(
    {"complete", "partial", "komplet", "partiel", "cmr", "pmr", "stable", "smd", "progressive", "pmd",
     "progressiv", "disease", "metabolic"}
)


def build_matcher(vocab: Vocab) -> Matcher:
    """One Matcher holding every pattern of this module, keyed by label."""
    matcher = Matcher(vocab)
    matcher.add("SUV_CUE", SUV_CUE_PATTERNS, greedy="LONGEST")
    matcher.add("NEW_LESION", NEW_LESION_PATTERNS)
    matcher.add("DEAUVILLE", DEAUVILLE_PATTERNS)
    for label, patterns in (CHANGE_PATTERNS | CATEGORY_PATTERNS).items():
        matcher.add(label, patterns, greedy="LONGEST")
    return matcher
