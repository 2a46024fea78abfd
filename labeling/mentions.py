"""SUV mentions: read the values after each SUV cue and decide their timepoint, role, site and size.

After a cue (``SUVmax``, ``SUV max``, ``maximum SUV``, ``SUV(max)``, ``SUVpeak`` ...) a *value chain* is
read: values joined by list words (``2.7 and 3.5 respectively``, ``3.1-5.6``), comparisons
(``11.5 versus 8.7 previously``, ``compared to 4.0 on the contralateral side``), changes (``from 6.2 to
4.5``, ``6.2 -> 4.5``) and their modifiers (``today``, ``(previously 2.8)``, ``on 5/6/2014``, ``on the
prior PET/CT``). Slice, series and image numbers, sizes, dates and scores inside or beside the chain are
skipped and never read as values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final, Literal

from labeling import lexicon as lx
from labeling.sections import section_at
from labeling.view import DATE, NUMBER, YEAR, DocView

Timepoint = Literal["current", "prior"]
Role = Literal["lesion", "reference", "comparison"]

#: a value above this is not an SUV (slice locations, doses, counts)
MAX_SUV: Final = 150.0

_CONNECTORS: Final = (
    lx.COMPARATIVE_WORDS | lx.FROM_WORDS | lx.TO_WORDS | lx.ARROWS | lx.LIST_WORDS | frozenset({"(", "than"})
)
_GROUP_BREAKERS: Final = lx.COMPARATIVE_WORDS | lx.FROM_WORDS | lx.TO_WORDS | lx.ARROWS | frozenset({"("})
_CHAIN_WORDS: Final = (
    lx.FILLER_WORDS
    | lx.PRIOR_WORDS
    | lx.CURRENT_WORDS
    | lx.PAST_WORDS
    | lx.CHANGE_VERBS
    | lx.RANGE_WORDS
    | lx.CONTRALATERAL_WORDS
    | lx.SIDE_QUALIFIERS
    | lx.SUV_UNITS
    | _CONNECTORS
    | frozenset({")", "'", "down", "respectively", "both", "each", "again", "still"})
)
_POSITION_JOINERS: Final = frozenset({",", "and", "&", "-", "/", "to", "through", "og"})
_WINDOW_STOPS: Final = frozenset({".", ";", "!", "?"})
_TEMPORAL_WINDOW_STOPS: Final = _WINDOW_STOPS | frozenset({",", "(", ")", ":", "[", "]"})
_REFERENCE_PREPOSITIONS: Final = frozenset({"in", "within", "of", "at", "over", "for", "i"})
_STRONG_REFERENCE: Final = frozenset(
    {"pool", "bloodpool", "background", "reference", "physiologic", "physiological", "parenchyma", "baggrund"}
)
_NUMBER_STARTS: Final = frozenset("0123456789.,")
_SIZE_UNITS: Final = {
    "mm": 1.0,
    "cm": 10.0,
    "millimeter": 1.0,
    "millimeters": 1.0,
    "centimeter": 10.0,
    "centimeters": 10.0,
    "mm.": 1.0,
    "cm.": 10.0,
}


@dataclass(frozen=True, slots=True)
class SuvMention:
    """One SUV value written in a report.

    Attributes:
        value: the number as a float (decimal point or comma).
        timepoint: ``"current"`` (this exam) or ``"prior"`` (an earlier exam).
        role: ``"lesion"``, ``"reference"`` (liver, blood pool, mediastinum, background) or ``"comparison"``
            (a contralateral / other-side value).
        start: character offset of the value in the report text.
        end: character offset just past the value.
        metric: ``"max"``, ``"peak"``, ``"mean"`` or ``"unspecified"`` (a plain "SUV").
        cue_start: character offset of the SUV cue the value follows.
        cue_end: character offset just past that cue.
        prior_date: the prior exam's date as written, when given next to a prior value.
        site: the lesion site as written (e.g. ``"right axillary lymph node"``), when found.
        size_mm: the lesion's largest written dimension in mm, when found.
        negated: inside a negation ("no FDG-avid lymph nodes (SUVmax < 2.5)").
        resolved: in a clause that says the finding resolved / is no longer seen.
        section: the report section (``indication``, ``technique``, ``comparison``, ``findings``,
            ``impression`` or ``unknown``).
        bound: ``"below"`` or ``"above"`` when written as a threshold (``< 2.5``), else None.
        reference_region: for a reference value, ``"liver"``, ``"blood_pool"``, ``"background"`` or
            ``"physiologic"`` (normal organ uptake: brain, bladder ...; never a PERCIST reference).
        sentence: index of the sentence in the report.
    """

    value: float
    timepoint: Timepoint
    role: Role
    start: int
    end: int
    metric: str = "max"
    cue_start: int = -1
    cue_end: int = -1
    prior_date: str | None = None
    site: str | None = None
    size_mm: float | None = None
    negated: bool = False
    resolved: bool = False
    section: str = "unknown"
    bound: str | None = None
    sentence: int = 0
    reference_region: str | None = None


@dataclass(slots=True)
class _Item:
    """A value token inside a chain with the words written before and after it."""

    index: int
    pre: list[tuple[str, str]] = field(default_factory=list)
    post: list[tuple[str, str]] = field(default_factory=list)
    #: (timepoint, date) from its own words, filled on first use (after the chain is split)
    explicit: tuple[Timepoint | None, str | None] | None = None


@dataclass(frozen=True, slots=True)
class Cue:
    """An SUV cue: first token, one past the last token, metric."""

    first: int
    stop: int
    metric: str


def reference_region(words: list[str]) -> str:
    """Which reference a window of words names: liver first, then blood pool, organ, background.

    Example:
        >>> reference_region(["activity", "background", "hepatic"]), reference_region(["urinary", "bladder"])
        ('liver', 'physiologic')
    """
    found = set(words)
    if found & lx.LIVER_WORDS:
        return "liver"
    if found & lx.BLOOD_POOL_WORDS:
        return "blood_pool"
    if found & lx.PHYSIOLOGIC_ORGANS:
        return "physiologic"
    if found & lx.BACKGROUND_WORDS:
        return "background"
    return "physiologic"


def parse_value(text: str) -> float:
    """A report number as float: ``"4,8"`` and ``"4.8"`` are both 4.8.

    Example:
        >>> parse_value("12,3"), parse_value(".8")
        (12.3, 0.8)
    """
    return float(text.replace(",", "."))


class MentionReader:
    """Reads every SUV mention of one report from its view and its cue matches."""

    def __init__(self, view: DocView, cues: list[Cue]) -> None:
        self.view = view
        self.cues = cues
        self.cue_at = {cue.first: cue for cue in cues}
        self._sizes_by_sentence: dict[int, list[tuple[int, int, float]]] = {}

    # --- public --------------------------------------------------------------------------------

    def read(self) -> list[SuvMention]:
        """All mentions, in text order."""
        mentions: list[SuvMention] = []
        previous_chain_end = 0
        for cue in self.cues:
            if cue.first < previous_chain_end:  # "(SUVmax)" inside a spelled-out cue's chain
                continue
            sent_start, sent_end = self.view.sentence_range(cue.first)
            floor = max(sent_start, previous_chain_end)
            items, _, pre_words = self._read_chain(cue, sent_end)
            if items:
                mentions.extend(self._mentions(cue, items, pre_words, floor, sent_start, sent_end))
                previous_chain_end = items[-1].index + 1
        return mentions

    # --- chain reading -----------------------------------------------------------------------------

    def _read_chain(self, cue: Cue, sent_end: int) -> tuple[list[_Item], int, list[str]]:
        """Values after ``cue`` up to the end of its chain; also the words between cue and first value."""
        v = self.view
        lower = v.lower
        items: list[_Item] = []
        pending: list[tuple[str, str]] = []
        unknown_before_first = 0
        j = cue.stop
        j = self._skip_abbreviation(j, sent_end)
        while j < sent_end:
            word = lower[j]
            if v.space[j]:
                if "\n" in word and word.count("\n") > 1:
                    break
                j += 1
                continue
            if j in self.cue_at or word in lx.CHAIN_STOPS:
                break
            if word == "(":
                close = self._closing_paren(j, sent_end)
                if close is not None:
                    date = self._paren_date(j + 1, close)
                    if date is not None:
                        pending.append(("date", date))
                        j = close + 1
                        continue
                    if self._paren_is_skippable(j + 1, close):
                        j = close + 1
                        continue
                pending.append(("word", "("))
                j += 1
                continue
            if word in lx.POSITION_WORDS:
                j = self._skip_position(j, sent_end)
                continue
            date_end = self._date_at(j, sent_end)
            if date_end is not None:
                pending.append(("date", v.span_text(j, date_end - 1)))
                j = date_end
                continue
            if NUMBER.fullmatch(word):
                if not self._is_value(j, sent_end):
                    break
                items.append(_Item(j, pending))
                pending = []
                j += 1
                continue
            if word in _CHAIN_WORDS:
                pending.append(("word", word))
                j += 1
                continue
            if not items and unknown_before_first < 6 and word[:1].isalpha():
                unknown_before_first += 1
                pending.append(("word", word))
                j += 1
                continue
            break
        if not items:
            return [], j, []
        self._split_gaps(items, pending)
        pre_words = [w for kind, w in items[0].pre if kind == "word"]
        return items, j, pre_words

    def _skip_abbreviation(self, j: int, sent_end: int) -> int:
        """Skip "(SUVmax)" after a spelled-out cue ("maximum standardized uptake value (SUVmax) of 4.5")."""
        v = self.view
        k = v.next_word(j - 1, sent_end)
        if k < sent_end and v.lower[k] == "(" and k + 1 in self.cue_at:
            inner = self.cue_at[k + 1]
            close = v.next_word(inner.stop - 1, sent_end)
            if close < sent_end and v.lower[close] == ")":
                return close + 1
        return j

    @staticmethod
    def _split_gaps(items: list[_Item], trailing: list[tuple[str, str]]) -> None:
        """Share the words between two values: before the first connector they follow the earlier value."""
        for previous, item in pairwise(items):
            gap = item.pre
            cut = next((k for k, (kind, w) in enumerate(gap) if kind == "word" and w in _CONNECTORS), None)
            if cut is None:
                continue
            previous.post = gap[:cut]
            item.pre = gap[cut:]
        # words after a trailing connector introduce something unread ("7.3 (prior max SUV 6.9)")
        cut = next((k for k, (kind, w) in enumerate(trailing) if kind == "word" and w in _CONNECTORS), None)
        items[-1].post = trailing if cut is None else trailing[:cut]

    def _closing_paren(self, j: int, sent_end: int) -> int | None:
        depth = 0
        for k in range(j, min(sent_end, j + 30)):
            w = self.view.lower[k]
            if w == "(":
                depth += 1
            elif w == ")":
                depth -= 1
                if depth == 0:
                    return k
        return None

    def _paren_date(self, first: int, close: int) -> str | None:
        words = [k for k in range(first, close) if not self.view.space[k]]
        if words and self._date_at(words[0], close) == words[-1] + 1:
            return self.view.span_text(words[0], words[-1])
        return None

    def _paren_is_skippable(self, first: int, close: int) -> bool:
        """A bracket of slice / series references or sizes, without values or time words."""
        lower = self.view.lower
        has_position = False
        for k in range(first, close):
            w = lower[k]
            if k in self.cue_at or w in lx.PRIOR_WORDS or w in lx.CURRENT_WORDS or w in lx.COMPARATIVE_WORDS:
                return False
            if w in lx.POSITION_WORDS or w in _SIZE_UNITS:
                has_position = True
        return has_position

    def _skip_position(self, j: int, sent_end: int) -> int:
        """Skip a position reference: "slice 144 series 2", "CT slice location minus 595.14"."""
        v = self.view
        lower = v.lower
        k = j
        just_keyword = False
        while k < sent_end:
            w = lower[k]
            if v.space[k]:
                k += 1
                continue
            if w in lx.POSITION_WORDS:
                just_keyword = True
                k += 1
                continue
            if NUMBER.fullmatch(w) and (just_keyword or w.isdigit()):
                just_keyword = False
                k += 1
                continue
            if w in _POSITION_JOINERS:
                nxt = v.next_word(k, sent_end)
                if nxt < sent_end and lower[nxt].isdigit():
                    k = nxt
                    continue
            break
        return k

    def _date_at(self, j: int, limit: int) -> int | None:
        """One past the last token of a date starting at ``j``, or None."""
        v = self.view
        lower = v.lower
        w = lower[j]
        if DATE.fullmatch(w):
            return j + 1
        if YEAR.fullmatch(w):
            prev = v.previous_word(j, 0)
            if prev >= 0 and lower[prev] in ("in", "on", "of", "from", "dated", "i", "fra"):
                return j + 1
        if w in lx.MONTHS:
            k = v.next_word(j, limit)
            end = None
            if k < limit and lower[k].isdigit() and len(lower[k]) <= 2:
                end = k + 1
                k = v.next_word(k, limit)
                if k < limit and lower[k] == ",":
                    k = v.next_word(k, limit)
            if k < limit and YEAR.fullmatch(lower[k]):
                end = k + 1
            return end
        if w.isdigit() and len(w) <= 2:  # "6 May 2014"
            k = v.next_word(j, limit)
            if k < limit and lower[k] in lx.MONTHS:
                month_end = self._date_at(k, limit)
                return month_end if month_end is not None else k + 1
        return None

    def _is_value(self, j: int, sent_end: int) -> bool:
        """Whether the number at ``j`` can be an SUV (not a size, position, score, dose or count)."""
        v = self.view
        lower = v.lower
        if parse_value(lower[j]) > MAX_SUV:
            return False
        nxt = v.next_word(j, sent_end)
        after = lower[nxt] if nxt < sent_end else ""
        if after in lx.NON_SUV_UNITS or after in lx.MONTHS:
            return False
        if after in ("-", "–", "/", "to") and nxt < sent_end:
            nn = v.next_word(nxt, sent_end)
            if nn < sent_end:
                if lower[nn] in ("point", "points"):
                    return False
                if NUMBER.fullmatch(lower[nn]):
                    unit = v.next_word(nn, sent_end)
                    if unit < sent_end and lower[unit] in lx.NON_SUV_UNITS:
                        return False
        prev = v.previous_word(j, 0)
        return not (prev >= 0 and lower[prev] in lx.POSITION_WORDS)

    # --- interpretation --------------------------------------------------------------------------------

    def _mentions(
        self, cue: Cue, items: list[_Item], pre_words: list[str], floor: int, sent_start: int, sent_end: int
    ) -> list[SuvMention]:
        v = self.view
        cue_time = self._cue_timepoint(cue.first, floor)
        cue_role = self._cue_role(cue.first, floor, pre_words)
        resolved = self._clause_resolved(cue.first, sent_start, sent_end)
        negated = self._negated(cue.first, floor)
        section = section_at(v.sections, v.start[cue.first]).name
        range_context = any(w in lx.RANGE_WORDS for kind, w in items[0].pre if kind == "word")
        change_context = any(w in lx.CHANGE_VERBS for w in pre_words)
        groups = self._groups(items, range_context)
        timepoints = self._timepoints(items, groups, range_context, change_context)
        sizes = self._sizes(cue, items, sent_start, sent_end)
        site = self._site(cue.first, floor, sent_start, items[-1].index, sent_end)

        mentions = []
        for k, item in enumerate(items):
            explicit, date = self._explicit(item)
            role, region = self._item_role(item, k, cue_role)
            if role == "lesion":
                timepoint = timepoints[k] or cue_time
                if timepoint is None:
                    timepoint = "prior" if resolved or section in ("indication", "comparison") else "current"
            else:  # a reference or a contralateral value is read at this exam unless a prior is explicit
                timepoint = explicit if explicit is not None else (cue_time or "current")
            if date is None and timepoint == "prior":
                date = self._group_date(items, groups, k)
            mentions.append(
                SuvMention(
                    value=parse_value(v.lower[item.index]),
                    timepoint=timepoint,
                    role=role,
                    start=v.start[item.index],
                    end=v.end[item.index],
                    metric=cue.metric,
                    cue_start=v.start[cue.first],
                    cue_end=v.end[cue.stop - 1],
                    prior_date=date if timepoint == "prior" else None,
                    site=site if role == "lesion" else None,
                    reference_region=region if role == "reference" else None,
                    size_mm=sizes[k] if role == "lesion" else None,
                    negated=negated,
                    resolved=resolved,
                    section=section,
                    bound=self._bound(item),
                    sentence=v.sentence[item.index],
                )
            )
        return mentions

    @staticmethod
    def _groups(items: list[_Item], range_context: bool) -> list[int]:
        """Group id per item: list words keep a group, comparisons and time words start a new one."""
        groups = [0]
        for item in items[1:]:
            words = [w for kind, w in item.pre if kind == "word"]
            dated = any(kind == "date" for kind, _ in item.pre)
            breaks = any(w in _GROUP_BREAKERS for w in words) and not (
                range_context and all(w not in lx.COMPARATIVE_WORDS for w in words)
            )
            timed = any(w in lx.PRIOR_WORDS or w in lx.CURRENT_WORDS or w in lx.PAST_WORDS for w in words)
            groups.append(groups[-1] + 1 if breaks or timed or dated else groups[-1])
        return groups

    def _timepoints(
        self, items: list[_Item], groups: list[int], range_context: bool, change_context: bool
    ) -> list[Timepoint | None]:
        """Timepoint per item from explicit words, then its group's words, then comparison structure."""
        n_groups = groups[-1] + 1
        group_time: list[Timepoint | None] = [None] * n_groups
        members: list[list[int]] = [[] for _ in range(n_groups)]
        for k, g in enumerate(groups):
            members[g].append(k)
        for g in range(n_groups):
            for k in members[g]:
                explicit, _ = self._explicit(items[k])
                if explicit is not None:
                    group_time[g] = explicit
                    break
        for g in range(n_groups):
            if group_time[g] is not None or range_context:
                continue
            words = [w for kind, w in items[members[g][0]].pre if kind == "word"]
            if any(w in lx.ARROWS for w in words):
                group_time[g] = "current"
            elif any(w in lx.COMPARATIVE_WORDS or w in lx.FROM_WORDS for w in words):
                group_time[g] = "prior"
            elif any(w in lx.TO_WORDS for w in words) and (
                change_context or (g > 0 and group_time[g - 1] == "prior")
            ):
                group_time[g] = "current"
        for g in range(n_groups - 1):  # "6.2 -> 4.5": the value before an arrow is the earlier one
            following = [w for kind, w in items[members[g + 1][0]].pre if kind == "word"]
            if group_time[g] is None and any(w in lx.ARROWS for w in following):
                group_time[g] = "prior"
        result: list[Timepoint | None] = []
        for k, item in enumerate(items):
            explicit, _ = self._explicit(item)
            result.append(explicit if explicit is not None else group_time[groups[k]])
        return result

    def _explicit(self, item: _Item) -> tuple[Timepoint | None, str | None]:
        """Time words next to one value: the first after it, else the nearest before it; and its date."""
        if item.explicit is None:
            item.explicit = self._find_explicit(item)
        return item.explicit

    def _find_explicit(self, item: _Item) -> tuple[Timepoint | None, str | None]:
        date = next((w for kind, w in item.post if kind == "date"), None)
        if date is None:
            date = next((w for kind, w in reversed(item.pre) if kind == "date"), None)
        post = self._time_word([w for kind, w in item.post if kind == "word"])
        if post is not None:
            return post, date
        pre = self._time_word([w for kind, w in reversed(item.pre) if kind == "word"])
        if pre is not None:
            return pre, date
        if date is not None:
            return "prior", date
        return None, None

    @staticmethod
    def _time_word(words: list[str]) -> Timepoint | None:
        for k, w in enumerate(words):
            if w in lx.PRIOR_WORDS:
                return "prior"
            if w in lx.PAST_WORDS:
                return "prior"
            if w in lx.CURRENT_WORDS and not (w == "present" and k and words[k - 1] == "longer"):
                return "current"
        return None

    @staticmethod
    def _bound(item: _Item) -> str | None:
        words = [w for kind, w in item.pre if kind == "word"][-3:]
        if any(w in lx.BELOW_WORDS for w in words):
            return "below"
        if any(w in lx.ABOVE_WORDS for w in words):
            return "above"
        return None

    def _group_date(self, items: list[_Item], groups: list[int], k: int) -> str | None:
        for other, g in enumerate(groups):
            if g == groups[k] and other != k:
                _, date = self._explicit(items[other])
                if date is not None:
                    return date
        return None

    # --- context around the cue ------------------------------------------------------------------------

    def _window(self, cue_first: int, floor: int, stops: frozenset[str], size: int) -> list[int]:
        """Non-space token indices before the cue, nearest first, up to a stop word or ``floor``."""
        v = self.view
        out: list[int] = []
        k = cue_first - 1
        while k >= floor and len(out) < size:
            if v.space[k]:
                if "\n" in v.lower[k]:
                    break
                k -= 1
                continue
            if v.lower[k] in stops:
                break
            out.append(k)
            k -= 1
        return out

    def _cue_timepoint(self, cue_first: int, floor: int) -> Timepoint | None:
        """Time words just before the cue ("compared to prior SUV max of", "currently SUV max is")."""
        lower = self.view.lower
        window = self._window(cue_first, floor, _TEMPORAL_WINDOW_STOPS, 8)
        for position, k in enumerate(window):
            w = lower[k]
            if w in lx.PRIOR_WORDS:
                following = lower[window[position - 1]] if position else ""
                if following in lx.ANAPHORA_AFTER_PRIOR:
                    continue
                return "prior"
            if w in lx.PAST_WORDS:
                return "prior"
            if w in lx.CURRENT_WORDS:
                return "current"
        return None

    def _cue_role(self, cue_first: int, floor: int, pre_words: list[str]) -> tuple[Role, str | None]:
        """Reference (and which region) if one is written just before the cue or between cue and value."""
        lower = self.view.lower
        window = [lower[k] for k in self._window(cue_first, floor, _WINDOW_STOPS, 10)]
        words = [*reversed(pre_words), *window]  # nearest first
        if any(w in lx.CONTRALATERAL_WORDS for w in words):
            return "comparison", None
        reference_at = next(
            (i for i, w in enumerate(words) if w in lx.REFERENCE_WORDS or w in lx.PHYSIOLOGIC_ORGANS), None
        )
        if reference_at is None:
            return "lesion", None
        region = reference_region(words)
        if not any(w in lx.LESION_NOUNS for w in words):
            return "reference", region
        strong = any(w in _STRONG_REFERENCE for w in words) or any(
            w == "normal" and i > 0 and words[i - 1] in lx.REFERENCE_WORDS for i, w in enumerate(words)
        )
        lesion_at = next(i for i, w in enumerate(words) if w in lx.LESION_NOUNS)
        return ("reference", region) if strong and reference_at < lesion_at else ("lesion", None)

    def _item_role(self, item: _Item, k: int, cue_role: tuple[Role, str | None]) -> tuple[Role, str | None]:
        """A value's own words can make it a contralateral comparison or a reference."""
        words = [w for kind, w in (*item.pre, *item.post) if kind == "word"]
        if any(w in lx.CONTRALATERAL_WORDS for w in words) or any(
            w in lx.SIDE_QUALIFIERS and words[i + 1 : i + 2] == ["side"] for i, w in enumerate(words)
        ):
            return "comparison", None
        region = self._reference_after(item.index)
        if region is not None:
            return "reference", region
        if k > 0 and any(w in lx.COMPARATIVE_WORDS for w in words) and cue_role[0] == "reference":
            return "lesion", None
        return cue_role

    def _reference_after(self, j: int) -> str | None:
        """ "4.5 in the liver", "1.9 within the mediastinal blood pool"."""
        v = self.view
        end = v.sentence_range(j)[1]
        words: list[str] = []
        k = j + 1
        while k < end and len(words) < 5:
            if not v.space[k]:
                words.append(v.lower[k])
            k += 1
        if not words or words[0] not in _REFERENCE_PREPOSITIONS:
            return None
        rest = words[1:]
        if rest and rest[0] in ("the", "a"):
            rest = rest[1:]
        rest = rest[:3]
        if any(w in lx.LESION_NOUNS for w in rest):
            return None
        if any(w in lx.REFERENCE_WORDS or w in lx.PHYSIOLOGIC_ORGANS for w in rest):
            return reference_region(rest)
        return None

    def _clause_resolved(self, cue_first: int, sent_start: int, sent_end: int) -> bool:
        """Whether the clause around the cue says the finding resolved or is no longer seen."""
        lower = self.view.lower
        clause_start, clause_end = sent_start, sent_end
        for k in range(cue_first - 1, sent_start - 1, -1):
            if lower[k] in (";", "but", "whereas", "while", "however"):
                clause_start = k + 1
                break
        for k in range(cue_first, sent_end):
            if lower[k] in (";", "but", "whereas", "while", "however"):
                clause_end = k
                break
        for k in range(clause_start, clause_end):
            w = lower[k]
            if w in lx.RESOLUTION_WORDS:
                return True
            if w == "longer" and k > clause_start and lower[k - 1] in ("no", "not"):
                nxt = self.view.next_word(k, clause_end)
                if nxt < clause_end and (lower[nxt] in lx.NO_LONGER_OBJECTS or lower[nxt] in ("be", "is")):
                    return True
            if w in ("ikke",) and k + 1 < clause_end and lower[k + 1] == "længere":
                return True
        return False

    def _negated(self, cue_first: int, floor: int) -> bool:
        """Whether a negation ("no FDG-avid nodes", "without uptake") scopes over the cue."""
        v = self.view
        lower = v.lower
        k = cue_first - 1
        while k >= floor:
            w = lower[k]
            if w in lx.NEGATION_SCOPE_ENDS or w == "," or ("\n" in w and v.space[k]):
                return False
            if w in lx.NEGATION_WORDS:
                nxt = v.next_word(k, cue_first + 1)
                return not (nxt <= cue_first and lower[nxt] in lx.NEGATED_CHANGE_WORDS)
            k -= 1
        return False

    # --- site and size -----------------------------------------------------------------------------

    def _sizes(self, cue: Cue, items: list[_Item], sent_start: int, sent_end: int) -> list[float | None]:
        """Size per item: the nearest size in the sentence with no other SUV cue in between."""
        sizes = self._sentence_sizes(sent_start, sent_end)
        if not sizes:
            return [None] * len(items)
        other_cues = [c.first for c in self.cues if sent_start <= c.first < sent_end and c.first != cue.first]
        lower = self.view.lower
        following = lower[items[-1].index + 1 : min(sent_end, items[-1].index + 5)]
        if len(items) > 1 and "respectively" in following:
            before = [
                s for s in sizes if s[1] <= cue.first and not any(s[1] <= c < cue.first for c in other_cues)
            ]
            if len(before) == len(items):
                return [s[2] for s in before]
        result: list[float | None] = []
        for item in items:
            best: tuple[int, float] | None = None
            for first, stop, size_mm in sizes:
                if stop <= cue.first:
                    distance, lo, hi = cue.first - stop, stop, cue.first
                elif first > item.index:
                    distance, lo, hi = first - item.index, item.index, first
                else:
                    continue
                if any(lo <= c < hi for c in other_cues):
                    continue
                after = self.view.next_word(stop - 1, sent_end)
                if after < sent_end and lower[after] in lx.PRIOR_WORDS:
                    continue
                if best is None or distance < best[0]:
                    best = (distance, size_mm)
            result.append(best[1] if best else None)
        return result

    def _sentence_sizes(self, sent_start: int, sent_end: int) -> list[tuple[int, int, float]]:
        """(first token, one past last token, largest dimension in mm) of each size in a sentence."""
        if sent_start not in self._sizes_by_sentence:
            self._sizes_by_sentence[sent_start] = self._find_sizes(sent_start, sent_end)
        return self._sizes_by_sentence[sent_start]

    def _find_sizes(self, sent_start: int, sent_end: int) -> list[tuple[int, int, float]]:
        v = self.view
        lower = v.lower
        sizes = []
        k = sent_start
        while k < sent_end:
            if lower[k][:1] not in _NUMBER_STARTS or not NUMBER.fullmatch(lower[k]):
                k += 1
                continue
            dims = [parse_value(lower[k])]
            first = k
            j = v.next_word(k, sent_end)
            while j < sent_end and lower[j] in ("x", "×", "by"):
                nj = v.next_word(j, sent_end)
                if nj < sent_end and NUMBER.fullmatch(lower[nj]):
                    dims.append(parse_value(lower[nj]))
                    j = v.next_word(nj, sent_end)
                else:
                    break
            if j < sent_end and lower[j] == "-":  # "6-mm"
                j = v.next_word(j, sent_end)
            if j < sent_end and lower[j] in _SIZE_UNITS:
                sizes.append((first, j + 1, max(dims) * _SIZE_UNITS[lower[j]]))
                k = j + 1
            else:
                k += 1
        return sizes

    def _site(
        self, cue_first: int, floor: int, sent_start: int, last_value: int, sent_end: int
    ) -> str | None:
        """The lesion site phrase nearest before the cue (else just after the values) in the sentence."""
        lower = self.view.lower
        fallback = None
        for k in range(cue_first - 1, sent_start - 1, -1):
            if lower[k] in lx.SITE_HEADS:
                phrase, modifiers = self._site_phrase(k, sent_start)
                if modifiers:
                    return phrase
                fallback = fallback or phrase
        for k in range(last_value + 1, min(sent_end, last_value + 16)):
            if k in self.cue_at:
                break
            if lower[k] in lx.SITE_HEADS:
                phrase, modifiers = self._site_phrase(k, last_value + 1)
                if modifiers:
                    return phrase
                fallback = fallback or phrase
        return fallback

    def _site_phrase(self, head: int, floor: int) -> tuple[str, int]:
        """The words left of a head noun up to a determiner, verb or descriptor; sizes left out."""
        v = self.view
        lower = v.lower
        kept = [head]
        k = head - 1
        while k >= floor:
            w = lower[k]
            if v.space[k]:
                if "\n" in w:
                    break
                k -= 1
                continue
            if NUMBER.fullmatch(w) or w in ("x", "×") or w in _SIZE_UNITS:
                k -= 1
                continue
            glued = (
                w in ("-", "/") and v.end[k] == v.start[k + 1] and k > floor and v.end[k - 1] == v.start[k]
            )
            if glued or (w not in lx.SITE_STOPS and (w[:1].isalpha() or w in ("i", "ii", "iii", "iv"))):
                kept.append(k)
                k -= 1
                continue
            break
        kept.reverse()
        parts: list[str] = []
        for position, index in enumerate(kept):
            token = v.text[v.start[index] : v.end[index]]
            if position and v.start[index] == v.end[kept[position - 1]]:
                parts[-1] += token
            else:
                parts.append(token)
        return " ".join(parts), len(kept) - 1
