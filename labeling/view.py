"""A flat, read-only view of a parsed report: lower-cased token strings, offsets, sentences, sections.

The readers walk Python lists instead of spaCy ``Token`` objects because attribute access per token is
the slowest part of a pure-Python pass; :func:`doc_view` fills the lists from ``Doc.to_array`` in one go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from spacy.attrs import IDX, IS_SPACE, LENGTH, SENT_START
from spacy.tokens import Doc

from labeling.sections import Section, find_sections

#: a decimal number as written in reports: "4.5", "4,5", "13", ".8" (no thousands separators)
NUMBER: Final = re.compile(r"(?:\d{1,3}(?:[.,]\d{1,2}|\.\d{3})?|[.,]\d{1,2})")
#: a date in one token
DATE: Final = re.compile(r"\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")
YEAR: Final = re.compile(r"(?:19|20)\d\d")
#: (text, token strings, token start offsets), as :class:`labeling.tokenizer.ReportTokenizer` keeps them
TokenTable = tuple[str, list[str], list[int]]

_SENTENCE_END: Final = frozenset({".", "!", "?"})
_LINE_OPENERS: Final = frozenset({"-", "*", "•", "#", "##", "###", "–"})


@dataclass(slots=True)
class DocView:
    """Token strings and offsets of one report."""

    text: str
    lower: list[str]
    start: list[int]
    end: list[int]
    space: list[bool]
    sentence: list[int]
    sentence_bounds: list[tuple[int, int]]
    sections: list[Section]

    def __len__(self) -> int:
        return len(self.lower)

    def span_text(self, first: int, last: int) -> str:
        """Original text from token ``first`` to token ``last`` inclusive."""
        return self.text[self.start[first] : self.end[last]]

    def sentence_range(self, token: int) -> tuple[int, int]:
        """(first token, one past the last token) of the sentence holding ``token``."""
        return self.sentence_bounds[self.sentence[token]]

    def next_word(self, i: int, limit: int) -> int:
        """Index of the first non-space token after ``i`` (``limit`` when none)."""
        i += 1
        while i < limit and self.space[i]:
            i += 1
        return i

    def previous_word(self, i: int, floor: int) -> int:
        """Index of the last non-space token before ``i`` (``floor - 1`` when none)."""
        i -= 1
        while i >= floor and self.space[i]:
            i -= 1
        return i


def sentence_starts(text: str, lower: list[str], start: list[int], space: list[bool]) -> list[bool]:
    """Sentence starts: after ``. ! ?``, after a blank line, and at a line that opens a new statement.

    A single line break splits only when the next line starts a statement (a capital, a list bullet or
    number) or the line before ended with ``: ; .``; a lower-case continuation is a wrapped line.
    """
    n = len(lower)
    starts = [False] * n
    if n:
        starts[0] = True
    for i in range(n - 1):
        word = lower[i]
        if word in _SENTENCE_END:
            starts[i + 1] = True
        elif space[i] and "\n" in word:
            following = text[start[i + 1]] if i + 1 < n else ""
            before = lower[i - 1] if i else ""
            if (
                word.count("\n") > 1
                or following.isupper()
                or following.isdigit()
                or lower[i + 1] in _LINE_OPENERS
                or before in (":", ";", ".")
            ):
                starts[i + 1] = True
    return starts


def doc_view(doc: Doc, tokens: TokenTable | None = None, keep_sentences: bool = False) -> DocView:
    """Build the view of a tokenised report.

    Args:
        doc: the tokenised report.
        tokens: (text, token strings, token start offsets) when the tokenizer kept them, which saves
            rebuilding them from the Doc (``Doc.text`` walks every token).
        keep_sentences: use the sentence starts already set on ``doc`` instead of finding them.
    """
    if tokens is not None:
        text, words, start = tokens
        end = [s + len(w) for s, w in zip(start, words, strict=True)]
        space = [w.isspace() for w in words]
    else:
        text = doc.text
        table = doc.to_array([IDX, LENGTH, IS_SPACE]).tolist()
        start = [row[0] for row in table]
        end = [row[0] + row[1] for row in table]
        space = [bool(row[2]) for row in table]
    folded = text.lower()
    if len(folded) == len(text):
        lower = [folded[s:e] for s, e in zip(start, end, strict=True)]
    else:  # rare characters whose lower case changes length
        lower = [text[s:e].lower() for s, e in zip(start, end, strict=True)]
    flags = doc.to_array(SENT_START).tolist() if keep_sentences else []
    if any(flag == 1 for flag in flags[1:]):  # set earlier (Doc.has_annotation walks every token)
        starts = [flag == 1 for flag in flags]
        starts[0] = True
    else:
        starts = sentence_starts(text, lower, start, space)
    if starts:
        starts[0] = True
    sentence = [k - 1 for k in accumulate(starts)]
    firsts = [i for i, is_start in enumerate(starts) if is_start]
    bounds = list(zip(firsts, [*firsts[1:], len(starts)], strict=True))
    return DocView(text, lower, start, end, space, sentence, bounds, find_sections(text))
