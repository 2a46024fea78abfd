"""Word lists of PET/CT report language, lower-cased (English, with the few Danish words of Nordic reports).

Written from radiology usage (PERCIST / Lugano reporting, real report sentences), never from the
synthetic report generator: the parser must be measured on text it was not built from.
"""

from __future__ import annotations

from typing import Final

# --- SUV cues (matched as token patterns in labeling.patterns) ------------------------------------------

#: one-token cues after tokenisation ("SUVmax", "SUV_max" ...) -> metric
SUV_WORD_METRIC: Final[dict[str, str]] = {
    "suvmax": "max",
    "suv_max": "max",
    "suvmaks": "max",
    "suvmaximum": "max",
    "suvpeak": "peak",
    "suv_peak": "peak",
    "suvmean": "mean",
    "suv_mean": "mean",
    "suvgns": "mean",
    "suv": "unspecified",
    "suvs": "unspecified",
    "suvbw": "unspecified",
    "suvlbm": "unspecified",
    "sul": "unspecified",
    "sulmax": "max",
    "sulpeak": "peak",
}
#: metric words that may stand before or after "SUV"
METRIC_WORDS: Final[dict[str, str]] = {
    "max": "max",
    "max.": "max",
    "maximum": "max",
    "maximal": "max",
    "maks": "max",
    "peak": "peak",
    "mean": "mean",
    "average": "mean",
}

# --- numbers and what they are not -----------------------------------------------------------------

#: a token right after a number that makes it a size, a dose, a time ... (never an SUV)
NON_SUV_UNITS: Final[frozenset[str]] = frozenset(
    [
        "mm",
        "cm",
        "m",
        "mm.",
        "cm.",
        "millimeter",
        "millimeters",
        "millimetre",
        "millimetres",
        "centimeter",
        "centimeters",
        "centimetre",
        "centimetres",
        "x",
        "×",
        "by",
        "%",
        "percent",
        "hu",
        "hounsfield",
        "mci",
        "mbq",
        "gbq",
        "kbq",
        "kg",
        "kgs",
        "g",
        "lb",
        "lbs",
        "mg/dl",
        "mmol/l",
        "mg",
        "ml",
        "cc",
        "min",
        "mins",
        "min.",
        "minute",
        "minutes",
        "h",
        "hr",
        "hrs",
        "hour",
        "hours",
        "day",
        "days",
        "wk",
        "wks",
        "week",
        "weeks",
        "month",
        "months",
        "mo",
        "year",
        "years",
        "yr",
        "yrs",
        "y",
        "-year",
        "sec",
        "seconds",
        "s",
        "cycles",
        "cycle",
        "°",
        "mm2",
        "mm3",
        "cm2",
        "cm3",
        "ml/min",
    ]
)
#: SUV units, skipped after a value
SUV_UNITS: Final[frozenset[str]] = frozenset({"g/ml", "g/cc", "bw", "(bw)"})

#: words that make the next number a position, a count or a score, never an SUV
POSITION_WORDS: Final[frozenset[str]] = frozenset(
    [
        "slice",
        "slices",
        "series",
        "image",
        "images",
        "im",
        "im.",
        "img",
        "img.",
        "location",
        "loc",
        "level",
        "levels",
        "station",
        "stations",
        "segment",
        "segments",
        "seg",
        "number",
        "no.",
        "#",
        "axial",
        "coronal",
        "sagittal",
        "minus",
        "plus",
        "ser",
        "ser.",
        "se",
        "sl",
        "sl.",
        "frame",
        "bed",
        "position",
        "table",
        "deauville",
        "ds",
        "score",
        "scale",
        "grade",
        "stage",
        "cycle",
        "cycles",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
        "ki-67",
        "ki67",
        "rib",
        "ribs",
        "gleason",
    ]
)

MONTHS: Final[frozenset[str]] = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "jan.",
        "feb.",
        "mar.",
        "apr.",
        "jun.",
        "jul.",
        "aug.",
        "sep.",
        "sept.",
        "oct.",
        "nov.",
        "dec.",
    ]
)

# --- timepoint -----------------------------------------------------------------------------------

#: explicit words that put a value at the prior exam
PRIOR_WORDS: Final[frozenset[str]] = frozenset(
    [
        "previously",
        "prior",
        "previous",
        "before",
        "earlier",
        "baseline",
        "initially",
        "originally",
        "pretreatment",
        "pre-treatment",
        "formerly",
        "preceding",
        "tidligere",
    ]
)
#: "previously described" and the like: anaphora, not a prior value
ANAPHORA_AFTER_PRIOR: Final[frozenset[str]] = frozenset(
    [
        "described",
        "noted",
        "seen",
        "mentioned",
        "identified",
        "demonstrated",
        "reported",
        "visualized",
        "visualised",
        "documented",
        "known",
        "treated",
        "irradiated",
        "biopsied",
    ]
)
#: past tense that, next to a value, marks the prior exam
PAST_WORDS: Final[frozenset[str]] = frozenset({"was", "were"})
#: explicit words that put a value at the current exam
CURRENT_WORDS: Final[frozenset[str]] = frozenset(
    ["now", "today", "currently", "current", "presently", "present", "nu", "aktuelt"]
)
#: words that introduce a comparison value ("X versus Y", "compared to Y")
COMPARATIVE_WORDS: Final[frozenset[str]] = frozenset(
    ["versus", "vs", "vs.", "v.", "compared", "compare", "comparison", "mod", "sammenlignet"]
)
FROM_WORDS: Final[frozenset[str]] = frozenset({"from", "fra"})
TO_WORDS: Final[frozenset[str]] = frozenset({"to", "til"})
ARROWS: Final[frozenset[str]] = frozenset({"->", "=>", "→", "⇒", "➔"})
#: words that make "from X to Y" a range rather than a change
RANGE_WORDS: Final[frozenset[str]] = frozenset(
    ["ranging", "range", "ranges", "varying", "between", "spanning", "interval-range"]
)
#: verbs of change before "from X to Y" / "to Y"
CHANGE_VERBS: Final[frozenset[str]] = frozenset(
    [
        "increased",
        "decreased",
        "increasing",
        "decreasing",
        "increase",
        "decrease",
        "rose",
        "risen",
        "fallen",
        "fell",
        "dropped",
        "declined",
        "improved",
        "reduced",
        "changed",
        "gone",
        "went",
        "down",
        "up",
        "progressed",
        "regressed",
        "steget",
        "faldet",
    ]
)
#: list connectors between values of one group ("2.7 and 3.5", "3.1-5.6")
LIST_WORDS: Final[frozenset[str]] = frozenset(
    {",", "and", "&", "-", "–", "—", "/", "or", "og", "respectively"}
)

#: filler words allowed inside a value chain ("of up to approximately", "on the prior exam")
FILLER_WORDS: Final[frozenset[str]] = frozenset(
    [
        "of",
        ":",
        "=",
        "is",
        "are",
        "was",
        "were",
        "measuring",
        "measures",
        "measured",
        "measure",
        "measure:",
        "reaching",
        "reaches",
        "reached",
        "at",
        "value",
        "values",
        "with",
        "an",
        "a",
        "the",
        "approximately",
        "approx",
        "approx.",
        "about",
        "around",
        "roughly",
        "nearly",
        "almost",
        "~",
        "≈",
        "up",
        "to",
        "has",
        "have",
        "had",
        "been",
        "remains",
        "remained",
        "remain",
        "still",
        "which",
        "that",
        "this",
        "it",
        "on",
        "in",
        "of",
        "at",
        "as",
        "level",
        "levels",
        "respectively",
        "examination",
        "exam",
        "study",
        "studies",
        "scan",
        "scans",
        "pet",
        "pet/ct",
        "pet-ct",
        "ct",
        "imaging",
        "side",
        "sides",
        "contralateral",
        "opposite",
        "other",
        "normal",
        "unaffected",
        "dated",
        "date",
        "g/ml",
        "g/cc",
        "mildly",
        "slightly",
        "markedly",
        "significantly",
        "minimally",
        "moderately",
        "modestly",
        "only",
        "<",
        ">",
        "≤",
        "≥",
        "less",
        "more",
        "than",
        "below",
        "above",
        "under",
        "over",
        "greater",
        "lower",
        "higher",
        "measurement",
        "measurements",
        "med",
        "på",
        "af",
        "ved",
        "ca.",
        "cirka",
    ]
)
#: words that end a chain outright
CHAIN_STOPS: Final[frozenset[str]] = frozenset({".", ";", "!", "?", "however", "but", "whereas", "while"})
#: bound qualifiers before a value
BELOW_WORDS: Final[frozenset[str]] = frozenset({"<", "≤", "below", "under", "less"})
ABOVE_WORDS: Final[frozenset[str]] = frozenset({">", "≥", "above", "over", "greater", "exceeding"})

# --- role ----------------------------------------------------------------------------------------

#: reference regions (PERCIST liver, Deauville mediastinal blood pool, background)
REFERENCE_WORDS: Final[frozenset[str]] = frozenset(
    [
        "liver",
        "hepatic",
        "blood",
        "pool",
        "bloodpool",
        "background",
        "reference",
        "aorta",
        "aortic",
        "physiologic",
        "physiological",
        "lever",
        "leveren",
        "baggrund",
    ]
)
LIVER_WORDS: Final[frozenset[str]] = frozenset({"liver", "hepatic", "lever", "leveren"})
BLOOD_POOL_WORDS: Final[frozenset[str]] = frozenset({"blood", "pool", "bloodpool", "aorta", "aortic"})
BACKGROUND_WORDS: Final[frozenset[str]] = frozenset({"background", "reference", "baggrund"})
#: organs with physiological FDG uptake: a value there ("normal cerebral FDG distribution (SUVmax 9)") is
#: background, not disease, unless a lesion word comes with it ("brain metastasis")
PHYSIOLOGIC_ORGANS: Final[frozenset[str]] = frozenset(
    [
        "brain",
        "cerebral",
        "cerebellum",
        "cerebellar",
        "cortex",
        "cortical",
        "myocardium",
        "myocardial",
        "cardiac",
        "heart",
        "bladder",
        "urinary",
        "kidney",
        "kidneys",
        "renal",
        "ureter",
        "ureters",
        "salivary",
        "parotids",
        "tonsils",
        "hjerne",
        "hjernen",
    ]
)
#: words that make the reference multi-word ("blood pool") or qualify it
REFERENCE_PHRASE_HEADS: Final[frozenset[str]] = frozenset({"pool", "bloodpool", "background", "reference"})
#: contralateral comparison
CONTRALATERAL_WORDS: Final[frozenset[str]] = frozenset({"contralateral", "contra-lateral", "kontralateral"})
SIDE_QUALIFIERS: Final[frozenset[str]] = frozenset({"opposite", "other", "normal", "unaffected", "healthy"})

#: lesion head nouns (a lesion word near a reference word makes "liver lesion" a lesion)
LESION_NOUNS: Final[frozenset[str]] = frozenset(
    [
        "lesion",
        "lesions",
        "node",
        "nodes",
        "nodal",
        "lymphadenopathy",
        "adenopathy",
        "nodule",
        "nodules",
        "mass",
        "masses",
        "tumor",
        "tumors",
        "tumour",
        "tumours",
        "metastasis",
        "metastases",
        "metastatic",
        "focus",
        "foci",
        "deposit",
        "deposits",
        "implant",
        "implants",
        "conglomerate",
        "disease",
        "lymfeknude",
        "lymfeknuder",
        "lymph",
    ]
)
#: head nouns that end a lesion site phrase
SITE_HEADS: Final[frozenset[str]] = frozenset(
    [
        "node",
        "nodes",
        "nodule",
        "nodules",
        "mass",
        "masses",
        "lesion",
        "lesions",
        "tumor",
        "tumour",
        "focus",
        "foci",
        "deposit",
        "deposits",
        "implant",
        "implants",
        "conglomerate",
        "bed",
        "lobe",
        "breast",
        "lung",
        "tonsil",
        "tonsils",
        "scapula",
        "rib",
        "vertebra",
        "vertebrae",
        "vertebral",
        "body",
        "sternum",
        "pelvis",
        "ilium",
        "sacrum",
        "femur",
        "humerus",
        "acetabulum",
        "spleen",
        "liver",
        "adrenal",
        "kidney",
        "pancreas",
        "colon",
        "rectum",
        "stomach",
        "esophagus",
        "oesophagus",
        "cervix",
        "uterus",
        "ovary",
        "prostate",
        "bladder",
        "thyroid",
        "parotid",
        "nasopharynx",
        "oropharynx",
        "hypopharynx",
        "larynx",
        "tongue",
        "pleura",
        "peritoneum",
        "omentum",
        "skin",
        "lymfeknude",
        "lymfeknuder",
        "milt",
    ]
)
#: words that stop a site phrase when walking left from its head noun
SITE_STOPS: Final[frozenset[str]] = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "there",
        "is",
        "are",
        "was",
        "were",
        "of",
        "in",
        "within",
        "with",
        "and",
        "or,",
        ",",
        ";",
        ":",
        "(",
        ")",
        "new",
        "hypermetabolic",
        "fdg-avid",
        "avid",
        "fdg",
        "intense",
        "intensely",
        "mild",
        "mildly",
        "moderate",
        "moderately",
        "focal",
        "increased",
        "decreased",
        "uptake",
        "activity",
        "largest",
        "most",
        "dominant",
        "index",
        "known",
        "previously",
        "described",
        "residual",
        "persistent",
        "multiple",
        "several",
        "small",
        "large",
        "enlarged",
        "prominent",
        "other",
        "additional",
        "another",
        "some",
        "few",
        "which",
        "also",
        "again",
        "still",
        "now",
        "today",
        "noted",
        "seen",
        "identified",
        "demonstrates",
        "demonstrating",
        "shows",
        "showing",
        "-",
        "x",
        "mm",
        "cm",
        "der",
        "ses",
        "flere",
        "med",
        "kun",
        "en",
        "et",
        "den",
        "det",
        "største",
        "i",
        "og",
        "af",
        "på",
        "hvor",
        "er",
        "nu",
    ]
)
LATERALITY: Final[frozenset[str]] = frozenset({"right", "left", "bilateral", "midline", "højre", "venstre"})

# --- negation and resolution ---------------------------------------------------------------------

NEGATION_WORDS: Final[frozenset[str]] = frozenset(
    [
        "no",
        "not",
        "without",
        "absent",
        "absence",
        "negative",
        "neither",
        "nor",
        "none",
        "ingen",
        "uden",
        "ikke",
    ]
)
#: words after a negation that make it about change, not about a lesion ("no significant change")
NEGATED_CHANGE_WORDS: Final[frozenset[str]] = frozenset(
    [
        "change",
        "changes",
        "significant",
        "significantly",
        "interval",
        "longer",
        "appreciable",
        "substantial",
        "definite",
        "measurable",
    ]
)
RESOLUTION_WORDS: Final[frozenset[str]] = frozenset(
    [
        "resolved",
        "resolution",
        "resolving",
        "disappeared",
        "disappearance",
        "normalized",
        "normalised",
        "normalization",
        "normalisation",
        "normalisering",
    ]
)
#: "no longer <visible>"
NO_LONGER_OBJECTS: Final[frozenset[str]] = frozenset(
    [
        "seen",
        "visualized",
        "visualised",
        "identified",
        "evident",
        "present",
        "avid",
        "hypermetabolic",
        "fdg-avid",
        "demonstrated",
        "apparent",
        "detected",
        "visible",
        "discernible",
        "appreciated",
        "identifiable",
        "measurable",
    ]
)
#: clause boundaries that end the scope of a negation
NEGATION_SCOPE_ENDS: Final[frozenset[str]] = frozenset(
    {";", ":", ".", "but", "however", "although", "though", "while", "whereas", "which", "and", "men"}
)
