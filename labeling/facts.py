"""Report-level statements: new lesions, Deauville scores, qualitative change, the impression's category.

Each reader takes the Matcher hits of one label and the report's :class:`~labeling.view.DocView`, and
checks negation in a short window before the hit ("no new lesions", "no evidence of progression").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from labeling import lexicon as lx
from labeling.sections import section_at
from labeling.view import DocView

#: hits in these sections describe the current exam
FINDING_SECTIONS: Final = frozenset({"findings", "impression", "unknown"})
#: words after "new" that make it about disease (not "new chemotherapy")
_NEW_OBJECTS: Final = lx.LESION_NOUNS | frozenset(
    [
        "hypermetabolic",
        "avid",
        "fdg-avid",
        "fdg",
        "uptake",
        "site",
        "sites",
        "area",
        "areas",
        "activity",
        "focal",
        "involvement",
        "manifestation",
        "manifestations",
        "appeared",
        "appearing",
        "developed",
        "identified",
        "seen",
        "detected",
        "abnormality",
        "abnormalities",
        "sclerotic",
        "lytic",
        "osseous",
        "pulmonary",
        "hepatic",
        "nodal",
        "patologiske",
        "fund",
        "foci",
    ]
)
_NEGATION_WINDOW: Final = 5
_DEAUVILLE_SKIP: Final = frozenset(
    {
        "score",
        "scores",
        "of",
        ":",
        "=",
        "is",
        "was",
        "(",
        "point",
        "points",
        "-",
        "scale",
        "criteria",
        "category",
        "ps",
        "5-point",
        "five-point",
        "grade",
        "now",
        "currently",
        "today",
    }
)
_DEAUVILLE_FILLERS: Final = frozenset(
    {"(", ")", ",", "to", "at", "on", "the", "scan", "exam", "study", "and"}
)
_SCORES: Final = frozenset({"1", "2", "3", "4", "5"})
_CLASS_OF_LABEL: Final = {
    "CHANGE_RESPONSE": "response",
    "CHANGE_STABLE": "stable",
    "CHANGE_PROGRESSION": "progression",
    "CATEGORY_RESPONSE": "response",
    "CATEGORY_STABLE": "stable",
    "CATEGORY_PROGRESSION": "progression",
}
#: a category phrase whose first word is one of these is a PERCIST / Lugano term (weight 2)
_STRONG_FIRST: Final = frozenset(
    {"complete", "partial", "komplet", "partiel", "cmr", "pmr", "smd", "pmd", "progressive", "progressiv"}
)


@dataclass(frozen=True, slots=True)
class DeauvilleScore:
    """A Deauville five-point score as written, with its timepoint."""

    score: int
    timepoint: str
    start: int
    section: str


@dataclass(slots=True)
class ReportFacts:
    """What a report states besides SUV values."""

    new_lesion: bool = False
    new_lesion_spans: list[tuple[int, int, bool]] = field(default_factory=list)
    deauville: list[DeauvilleScore] = field(default_factory=list)
    change_counts: dict[str, int] = field(
        default_factory=lambda: {"response": 0, "stable": 0, "progression": 0}
    )
    stated_class: str | None = None

    @property
    def current_deauville(self) -> int | None:
        """The current exam's score: the impression's last, else the last one written."""
        current = [d for d in self.deauville if d.timepoint == "current"]
        in_impression = [d for d in current if d.section == "impression"]
        chosen = in_impression or current
        return chosen[-1].score if chosen else None

    @property
    def prior_deauville(self) -> int | None:
        """A prior exam's score when the report quotes one."""
        prior = [d for d in self.deauville if d.timepoint == "prior"]
        return prior[-1].score if prior else None


def _negated_before(view: DocView, first: int, window: int = _NEGATION_WINDOW) -> bool:
    """A negation word within ``window`` words before token ``first``, in the same clause."""
    lower = view.lower
    sent_start, _ = view.sentence_range(first)
    seen = 0
    k = first - 1
    while k >= sent_start and seen < window:
        w = lower[k]
        if view.space[k]:
            k -= 1
            continue
        if w in lx.NEGATION_SCOPE_ENDS or w == ",":
            return False
        if w in lx.NEGATION_WORDS:
            return True
        seen += 1
        k -= 1
    return False


def _section(view: DocView, token: int) -> str:
    return section_at(view.sections, view.start[token]).name


def read_new_lesions(view: DocView, hits: list[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """(start char, end char, negated) of each statement of a new lesion in findings / impression."""
    lower = view.lower
    out = []
    for first, stop in hits:
        if _section(view, first) not in FINDING_SECTIONS:
            continue
        word = lower[first]
        if word in ("new", "newly"):
            _, sent_end = view.sentence_range(first)
            following = [lower[k] for k in range(stop, min(sent_end, stop + 8)) if not view.space[k]][:6]
            if not any(w in _NEW_OBJECTS for w in following):
                continue
        out.append((view.start[first], view.end[stop - 1], _negated_before(view, first)))
    return out


def read_deauville(view: DocView, hits: list[tuple[int, int]]) -> list[DeauvilleScore]:
    """Deauville scores: the first 1-5 after the cue; a second one after "previously" / "versus" is prior."""
    lower = view.lower
    scores = []
    for first, _ in hits:
        _, sent_end = view.sentence_range(first)
        section = _section(view, first)
        before = [lower[k] for k in range(max(0, first - 4), first)]
        timepoint = "prior" if any(w in lx.PRIOR_WORDS or w in lx.PAST_WORDS for w in before) else "current"
        words = [k for k in range(first + 1, min(sent_end, first + 24)) if not view.space[k]][:12]
        found = 0
        pending_prior = False
        for position, k in enumerate(words):
            w = lower[k]
            after = lower[words[position + 1]] if position + 1 < len(words) else ""
            if w in _SCORES:
                if after in ("-", "point", "points", "-point"):  # "5-point scale"
                    continue
                if found and not pending_prior:
                    break
                score_time = "prior" if found or pending_prior or after in lx.PRIOR_WORDS else timepoint
                scores.append(DeauvilleScore(int(w), score_time, view.start[k], section))
                found += 1
                pending_prior = False
                if found == 2:
                    break
            elif w in lx.PRIOR_WORDS or w in lx.COMPARATIVE_WORDS or w in lx.FROM_WORDS or w in lx.PAST_WORDS:
                if found:
                    pending_prior = True
                else:
                    timepoint = "prior"
            elif w not in _DEAUVILLE_SKIP and w not in _DEAUVILLE_FILLERS:
                break
    return scores


def count_change_words(view: DocView, hits: list[tuple[str, int, int]]) -> dict[str, int]:
    """Qualitative change words per class in findings (and unsectioned text), negations dropped."""
    counts = {"response": 0, "stable": 0, "progression": 0}
    has_findings = any(s.name == "findings" for s in view.sections)
    allowed = {"findings"} if has_findings else {"findings", "unknown", "impression"}
    for label, first, _ in hits:
        if _section(view, first) not in allowed:
            continue
        cls = _CLASS_OF_LABEL[label]
        if cls != "stable" and view.lower[first] not in ("no", "not") and _negated_before(view, first, 4):
            continue  # "no interval increase", "without progression"
        counts[cls] += 1
    return counts


def stated_class(view: DocView, hits: list[tuple[str, int, int]]) -> str | None:
    """The response class the impression states, PERCIST terms counting double; None when unclear or mixed."""
    has_impression = any(s.name == "impression" for s in view.sections)
    scores = {"response": 0, "stable": 0, "progression": 0}
    mixed, strong = False, False
    for label, first, _ in hits:
        section = _section(view, first)
        if has_impression and section != "impression":
            continue
        if not has_impression and section not in FINDING_SECTIONS:
            continue
        if view.lower[first] not in ("no", "without") and _negated_before(view, first, 4):
            continue
        if label == "CATEGORY_MIXED":
            mixed = True
            continue
        cls = _CLASS_OF_LABEL[label]
        strong |= view.lower[first] in _STRONG_FIRST
        scores[cls] += 2 if view.lower[first] in _STRONG_FIRST else 1
    best = max(scores.values())
    # "mixed response" states no category unless a PERCIST / Lugano term settles it
    if best == 0 or (mixed and not strong):
        return None
    winners = [cls for cls, score in scores.items() if score == best]
    return winners[0] if len(winners) == 1 else None
