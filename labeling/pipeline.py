"""The spaCy pipeline: report tokenizer -> sentence and section segmentation -> SUV and statement reader.

Example:
    >>> nlp = build_pipeline()
    >>> nlp.pipe_names
    ['report_segmenter', 'report_reader']
    >>> doc = nlp("FINDINGS: Right axillary node SUVmax 4.5 (previously 6.2).")
    >>> [(m.value, m.timepoint) for m in doc._.suv_mentions]
    [(4.5, 'current'), (6.2, 'prior')]
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc

from labeling import lexicon as lx
from labeling.facts import ReportFacts, count_change_words, read_deauville, read_new_lesions, stated_class
from labeling.mentions import Cue, MentionReader
from labeling.patterns import build_matcher, longest_first
from labeling.tokenizer import TOKENS_KEY, make_nlp
from labeling.view import DocView, doc_view

#: where the segmenter leaves its token view for the reader (removed by the reader)
VIEW_KEY = ("onconet", "report_view")

for _name in ("suv_mentions", "report_facts"):
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=None)


class ReportSegmenter:
    """Marks sentence starts (full stops, blank lines, new statements) and report sections as spans."""

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        view = doc_view(doc, tokens=doc.user_data.pop(TOKENS_KEY, None))
        flags = np.full(len(doc), -1, dtype=np.int64)
        flags[[first for first, _ in view.sentence_bounds]] = 1
        doc.from_array([SENT_START], flags.astype(np.uint64))
        doc.user_data[VIEW_KEY] = view  # handed to the reader, which removes it
        doc.spans["sections"] = [
            span
            for section in view.sections
            if (
                span := doc.char_span(section.start, section.end, label=section.name, alignment_mode="expand")
            )
            is not None
        ]
        return doc


class ReportReader:
    """Finds SUV mentions and report statements; sets ``doc._.suv_mentions`` and ``doc._.report_facts``."""

    def __init__(self, nlp: Language) -> None:
        self.matcher = build_matcher(nlp.vocab)
        self.strings = nlp.vocab.strings

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            doc._.suv_mentions = []
            doc._.report_facts = ReportFacts()
            return doc
        view = doc.user_data.pop(VIEW_KEY, None)
        if view is None:
            view = doc_view(doc, keep_sentences=True)
        by_label: dict[str, list[tuple[int, int]]] = {}
        for match_id, first, stop in self.matcher(doc):
            by_label.setdefault(self.strings[match_id], []).append((first, stop))
        for family in ("CHANGE_", "CATEGORY_"):  # one reading per stretch of words: the longest phrase
            spans = [
                (label, f, s) for label, hits in by_label.items() if label.startswith(family) for f, s in hits
            ]
            for label in [label for label in by_label if label.startswith(family)]:
                del by_label[label]
            for label, first, stop in longest_first(spans):
                by_label.setdefault(label, []).append((first, stop))
        cues = self._cues(view, sorted(by_label.get("SUV_CUE", [])))
        doc._.suv_mentions = MentionReader(view, cues).read()
        facts = ReportFacts()
        facts.new_lesion_spans = read_new_lesions(view, sorted(by_label.get("NEW_LESION", [])))
        facts.new_lesion = any(not negated for _, _, negated in facts.new_lesion_spans)
        facts.deauville = read_deauville(view, sorted(by_label.get("DEAUVILLE", [])))
        change_hits = sorted(
            (label, first, stop)
            for label, hits in by_label.items()
            if label.startswith("CHANGE_")
            for first, stop in hits
        )
        facts.change_counts = count_change_words(view, change_hits)
        category_hits = [
            (label, first, stop)
            for label, hits in by_label.items()
            if label.startswith("CATEGORY_")
            for first, stop in hits
        ]
        facts.stated_class = stated_class(view, category_hits)
        doc._.report_facts = facts
        return doc

    @staticmethod
    def _cues(view: DocView, spans: list[tuple[int, int]]) -> list[Cue]:
        """Non-overlapping cues (longest first wins) with their metric."""
        cues: list[Cue] = []
        for first, stop in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
            if cues and first < cues[-1].stop:
                continue
            words = view.lower[first:stop]
            metric = "unspecified"
            if len(words) == 1:
                metric = lx.SUV_WORD_METRIC.get(words[0], "unspecified")
            else:
                metric = next((lx.METRIC_WORDS[w] for w in words if w in lx.METRIC_WORDS), "unspecified")
            cues.append(Cue(first, stop, metric))
        return cues


@Language.factory("report_segmenter")
def make_report_segmenter(nlp: Language, name: str) -> ReportSegmenter:
    """spaCy factory of :class:`ReportSegmenter`."""
    return ReportSegmenter()


@Language.factory("report_reader")
def make_report_reader(nlp: Language, name: str) -> ReportReader:
    """spaCy factory of :class:`ReportReader`."""
    return ReportReader(nlp)


def new_pipeline() -> Language:
    """A fresh pipeline (blank English, report tokenizer, segmenter, reader); no statistical model."""
    nlp = make_nlp()
    nlp.add_pipe("report_segmenter")
    nlp.add_pipe("report_reader")
    return nlp


@lru_cache(maxsize=1)
def build_pipeline() -> Language:
    """The shared pipeline of this process (built once)."""
    return new_pipeline()
