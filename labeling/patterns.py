"""Token patterns: SUV cues and report-level statements (new lesions, Deauville, change, category).

Written in spaCy's Matcher pattern syntax (``LOWER`` / ``IN`` / ``OP: "?"``) for readability; each list
is keyed by a match label, and :func:`build_matcher` spells them out into one PhraseMatcher so a report
is scanned once.
"""

from __future__ import annotations

from typing import Any, Final

from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc
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
            {
                "LOWER": {
                    "IN": ["decrease", "decreased", "reduction", "improvement", "resolution", "regression"]
                }
            },
        ],
        [
            {"LOWER": {"IN": ["decreased", "decrease", "reduction", "reduced"]}},
            {"LOWER": {"IN": ["in", "since"]}},
        ],
        # postpositive: "SUV max 3.1, decreased compared with the prior study", "..., decreased."
        [
            {"LOWER": {"IN": [",", "is", "are", "was"]}},
            {"LOWER": {"IN": ["decreased", "reduced", "improved"]}},
        ],
        [
            {"LOWER": {"IN": ["decreased", "reduced", "improved"]}},
            {"LOWER": {"IN": ["compared", "relative", "from", ".", ";"]}},
        ],
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
        [
            {"LOWER": {"IN": ["less", "mindre"]}},
            {"LOWER": {"IN": ["avid", "intense", "hypermetabolic", "udtalt"]}},
        ],
        [{"LOWER": "no"}, {"LOWER": {"IN": ["residual", "remaining"]}}],
    ],
    "CHANGE_PROGRESSION": [
        [
            {"LOWER": "interval"},
            {"LOWER": {"IN": ["increase", "increased", "enlargement", "growth", "worsening", "progression"]}},
        ],
        [{"LOWER": {"IN": ["increased", "increase", "enlargement"]}}, {"LOWER": {"IN": ["in", "since"]}}],
        [{"LOWER": {"IN": [",", "is", "are"]}}, {"LOWER": {"IN": ["increased", "worse", "enlarged"]}}],
        [
            {"LOWER": {"IN": ["increased", "worse", "enlarged"]}},
            {"LOWER": {"IN": ["compared", "relative", "from", ".", ";"]}},
        ],
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
        [
            {"LOWER": {"IN": ["more", "mere"]}},
            {"LOWER": {"IN": ["avid", "intense", "hypermetabolic", "udtalt"]}},
        ],
    ],
    "CHANGE_STABLE": [
        [{"LOWER": {"IN": ["unchanged", "stable", "uændret", "uændrede", "stationær", "stationære"]}}],
        [
            {"LOWER": {"IN": ["no", "without"]}},
            {"LOWER": "significant", "OP": "?"},
            {"LOWER": "interval", "OP": "?"},
            {"LOWER": {"IN": ["change", "changes"]}},
        ],
        [
            {"LOWER": "not"},
            {"LOWER": {"IN": ["significantly", "substantially", "appreciably"]}},
            {"LOWER": "changed"},
        ],
        [
            {"LOWER": "similar"},
            {"LOWER": {"IN": ["in", "to"]}},
            {"LOWER": {"IN": [*_CHANGE_OBJECTS, "prior", "previous", "appearance", "baseline"]}},
        ],
    ],
}

#: the impression's stated response category (weight 2: a PERCIST / Lugano term; 1: plain wording)
CATEGORY_PATTERNS: Final[dict[str, list[Pattern]]] = {
    # a mixed (dissociated) response names no single category: it outranks the bare word "response"
    "CATEGORY_MIXED": [
        [
            {"LOWER": {"IN": ["mixed", "dissociated", "discordant", "heterogeneous"]}},
            {"LOWER": {"IN": ["metabolic", "treatment"]}, "OP": "?"},
            {"LOWER": {"IN": ["response", "respons"]}},
        ],
    ],
    "CATEGORY_RESPONSE": [
        [
            {"LOWER": {"IN": ["complete", "partial", "komplet", "partiel"]}},
            {"LOWER": {"IN": ["metabolic", "metabolisk"]}, "OP": "?"},
            {"LOWER": {"IN": ["response", "remission", "respons"]}},
        ],
        [{"LOWER": {"IN": ["cmr", "pmr", "cr", "pr"]}}],
        [
            {
                "LOWER": {
                    "IN": [
                        "treatment",
                        "therapy",
                        "therapeutic",
                        "metabolic",
                        "favorable",
                        "favourable",
                        "good",
                        "excellent",
                        "behandlingsrespons",
                    ]
                }
            },
            {"LOWER": {"IN": ["response", "respons"]}, "OP": "?"},
        ],
        [{"LOWER": {"IN": ["response", "responding", "responded", "respons"]}}],
    ],
    "CATEGORY_STABLE": [
        [
            {"LOWER": {"IN": ["stable", "stationær"]}},
            {"LOWER": {"IN": ["metabolic", "metabolisk"]}, "OP": "?"},
            {"LOWER": {"IN": ["disease", "sygdom"]}},
        ],
        [{"LOWER": "smd"}],
        [{"LOWER": "no"}, {"LOWER": "metabolic"}, {"LOWER": "response"}],
        [{"LOWER": {"IN": ["unchanged", "uændret", "stable"]}}],
        [
            {"LOWER": {"IN": ["no", "without"]}},
            {"LOWER": "significant", "OP": "?"},
            {"LOWER": "interval", "OP": "?"},
            {"LOWER": "change"},
        ],
    ],
    "CATEGORY_PROGRESSION": [
        [
            {"LOWER": {"IN": ["progressive", "progressiv"]}},
            {"LOWER": {"IN": ["metabolic", "metabolisk"]}, "OP": "?"},
            {"LOWER": {"IN": ["disease", "sygdom"]}},
        ],
        [{"LOWER": {"IN": ["pmd", "pd"]}}],
        [{"LOWER": {"IN": ["disease", "metabolic"]}}, {"LOWER": "progression"}],
        [{"LOWER": "progression"}, {"LOWER": "of"}, {"LOWER": "disease"}],
        [{"LOWER": {"IN": ["progression", "progressive", "progressing", "progressed", "worsening"]}}],
    ],
}


def expand_pattern(pattern: Pattern) -> list[tuple[str, ...]]:
    """Every word sequence a token pattern matches (``IN`` lists and ``"OP": "?"`` spelled out).

    Example:
        >>> expand_pattern([{"LOWER": "suv"}, {"LOWER": {"IN": ["max", "peak"]}, "OP": "?"}])
        [('suv', 'max'), ('suv', 'peak'), ('suv',)]
    """
    sequences: list[tuple[str, ...]] = [()]
    for token in pattern:
        value = token.get("LOWER", token.get("ORTH"))
        words = value["IN"] if isinstance(value, dict) else [value]
        grown = [(*seq, word.lower()) for seq in sequences for word in words]
        sequences = grown + sequences if token.get("OP") == "?" else grown
    return [seq for seq in sequences if seq]


def all_patterns() -> dict[str, list[Pattern]]:
    """Every pattern list of this module by match label."""
    return {
        "SUV_CUE": SUV_CUE_PATTERNS,
        "NEW_LESION": NEW_LESION_PATTERNS,
        "DEAUVILLE": DEAUVILLE_PATTERNS,
        **CHANGE_PATTERNS,
        **CATEGORY_PATTERNS,
    }


def build_matcher(vocab: Vocab) -> PhraseMatcher:
    """One PhraseMatcher (on lower case) holding every pattern of this module, keyed by label.

    The token patterns are spelled out into phrases: a PhraseMatcher looks each token up once, where a
    Matcher with ``IN`` predicates costs a Python call per token and predicate (50x slower here).
    """
    matcher = PhraseMatcher(vocab, attr="LOWER")
    for label, patterns in all_patterns().items():
        phrases = sorted({seq for pattern in patterns for seq in expand_pattern(pattern)})
        matcher.add(label, [Doc(vocab, words=list(seq)) for seq in phrases])
    return matcher


def longest_first(spans: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Non-overlapping (label, first, stop) spans, the longest winning where they overlap, in text order."""
    kept: list[tuple[str, int, int]] = []
    taken: set[int] = set()
    for label, first, stop in sorted(spans, key=lambda s: (s[1] - s[2], s[1])):
        if not taken.intersection(range(first, stop)):
            kept.append((label, first, stop))
            taken.update(range(first, stop))
    return sorted(kept, key=lambda s: s[1])
