"""A blank-English spaCy tokenizer with the extra rules radiology reports need.

The default English rules keep ``SUVmax=4.5`` and ``SUV(max`` in one token, split dates such as
``01-03-2024`` into five and glue ``4.5g/mL``. The rules here split the cue from its value, keep dates,
``g/mL`` and decimal commas (``4,8``) whole, and split arrows, en dashes and ``8x6`` between numbers.

Example:
    >>> nlp = make_nlp()
    >>> [t.text for t in nlp("SUVmax=4.5 g/mL; SUV(max):4,8 on 01-03-2024, 8x6mm")]
    ['SUVmax', '=', '4.5', 'g/mL', ';', 'SUV', '(', 'max', ')', ':', '4,8', 'on', '01-03-2024', ',', '8', 'x', '6', 'mm']
"""

from __future__ import annotations

import re

import spacy
from spacy.language import Language
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

#: Whole tokens never split: dates (d/m/y in any order of 1-2-4 digits) and SUV units.
TOKEN_MATCH = re.compile(
    r"^(?:\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|g/m[lL]|g/cc|mg/d[lL]|mmol/[lL])$"
)

_EXTRA_INFIXES = [
    # "SUVmax=4.5", "SUVmax:4.5", "SUV(max):4.5": a sign between a word (or ")") and a number
    r"(?<=[A-Za-z)])[:=](?=[0-9.,])",
    # "SUV(max)": parentheses inside a word
    r"(?<=[^\s(])\((?=\S)",
    r"(?<=[A-Za-z])\)(?=\S)",
    # "SUVmax4.5", "SUVpeak4.5": a cue glued to its value
    r"(?<=[Mm][Aa][Xx])(?=[0-9])",
    r"(?<=[Pp][Ee][Aa][Kk])(?=[0-9])",
    r"(?<=[Mm][Ee][Aa][Nn])(?=[0-9])",
    r"(?<=[Ss][Uu][Vv])(?=[0-9])",
    # "6.2->4.5", "6.2→4.5", "3.1–5.6", "2.7/3.5", "8x6"
    r"(?<=[0-9])(?:->|=>|→|⇒|➔|[–—/])(?=[0-9.])",
    r"(?<=[0-9])[x×X](?=[0-9.])",
]

_EXTRA_SUFFIXES = [
    # "4.5g/mL"
    r"(?<=[0-9])(?:g/m[lL]|g/cc)",
]

_EXTRA_PREFIXES = [r"~", r"≈", r"≤", r"≥", r"<", r">"]

_EMOTICON_CHARS = frozenset("()[]{}:;=<>^_*|/\\@")

#: Abbreviations whose full stop must not end a sentence.
_ABBREVIATIONS = [
    "approx.",
    "Approx.",
    "appr.",
    "vs.",
    "Vs.",
    "VS.",
    "cf.",
    "incl.",
    "prev.",
    "Fig.",
    "fig.",
    "ca.",
    "Ca.",
    "ser.",
    "Ser.",
    "img.",
    "Img.",
    "im.",
    "Im.",
    "sl.",
    "bilat.",
    "max.",
    "Max.",
    "pt.",
    "Dr.",
    "e.g.",
    "i.e.",
]


def customize_tokenizer(nlp: Language) -> None:
    """Add the report rules to ``nlp``'s tokenizer in place."""
    tokenizer = nlp.tokenizer
    # Emoticon exceptions such as "):" or "8)" would glue a value to its bracket.
    tokenizer.rules = {
        text: tokens for text, tokens in tokenizer.rules.items() if not _EMOTICON_CHARS.intersection(text)
    }
    tokenizer.infix_finditer = compile_infix_regex([*_EXTRA_INFIXES, *nlp.Defaults.infixes]).finditer
    tokenizer.suffix_search = compile_suffix_regex([*_EXTRA_SUFFIXES, *nlp.Defaults.suffixes]).search
    tokenizer.prefix_search = compile_prefix_regex([*_EXTRA_PREFIXES, *nlp.Defaults.prefixes]).search
    tokenizer.token_match = TOKEN_MATCH.match
    for abbreviation in _ABBREVIATIONS:
        tokenizer.add_special_case(abbreviation, [{"ORTH": abbreviation}])


def make_nlp() -> Language:
    """A blank English pipeline with the report tokenizer and no components."""
    nlp = spacy.blank("en")
    customize_tokenizer(nlp)
    return nlp
