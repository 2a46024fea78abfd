"""Report sections (INDICATION, TECHNIQUE, COMPARISON, FINDINGS, IMPRESSION) and body-region sub-headers.

A header is a known name at the start of a line (after optional markdown ``#`` or a list number),
followed by a colon or the end of the line: ``IMPRESSION:``, ``## Konklusion``, ``Chest: ...``.

Example:
    >>> [(s.name, s.region) for s in find_sections("FINDINGS:\\nChest: node.\\nIMPRESSION: better.")]
    [('findings', None), ('findings', 'chest'), ('impression', None)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: header text (lower case) -> canonical section
SECTION_NAMES: Final[dict[str, str]] = {
    "indication": "indication",
    "indications": "indication",
    "clinical indication": "indication",
    "reason for exam": "indication",
    "reason for examination": "indication",
    "reason for study": "indication",
    "history": "indication",
    "clinical history": "indication",
    "clinical information": "indication",
    "clinical data": "indication",
    "indikation": "indication",
    "technique": "technique",
    "procedure": "technique",
    "protocol": "technique",
    "examination": "technique",
    "exam": "technique",
    "radiopharmaceutical": "technique",
    "teknik": "technique",
    "comparison": "comparison",
    "comparisons": "comparison",
    "prior studies": "comparison",
    "prior exams": "comparison",
    "sammenligning": "comparison",
    "findings": "findings",
    "finding": "findings",
    "report": "findings",
    "description": "findings",
    "beskrivelse": "findings",
    "fund": "findings",
    "impression": "impression",
    "impressions": "impression",
    "conclusion": "impression",
    "conclusions": "impression",
    "summary": "impression",
    "opinion": "impression",
    "assessment": "impression",
    "interpretation": "impression",
    "konklusion": "impression",
}

#: body-region sub-headers inside FINDINGS
REGION_NAMES: Final[frozenset[str]] = frozenset(
    """head and neck|head/neck|head & neck|neck|brain|chest|thorax|lungs|mediastinum|abdomen|pelvis|
    abdomen and pelvis|abdomen/pelvis|abdomen & pelvis|musculoskeletal|bones|skeleton|skeletal|
    extremities|lymph nodes|other|hals|thorax|abdomen og bækken|knogler""".replace("\n", "")
    .replace("    ", "")
    .split("|")
)

_LIST_NUMBER = re.compile(r"\d{1,2}[.)][ \t]+")
_MAX_HEADER = 41


def _header_name(line: str) -> str | None:
    """The lower-cased header text a line opens with ("FINDINGS:", "## Konklusion", "Chest: ..."), if any."""
    body = line.lstrip(" \t#")
    numbered = _LIST_NUMBER.match(body)
    if numbered:
        body = body[numbered.end() :]
    colon = body.find(":", 0, _MAX_HEADER + 1)
    if colon > 0:
        return body[:colon].strip().lower()
    body = body.strip()
    return body.lower() if 0 < len(body) <= _MAX_HEADER else None


@dataclass(frozen=True, slots=True)
class Section:
    """One stretch of a report: its canonical name, body region if any, and character span."""

    name: str
    region: str | None
    start: int
    end: int


def find_sections(text: str) -> list[Section]:
    """Split ``text`` at known headers; text before the first header is section ``"unknown"``."""
    marks: list[tuple[int, str, str | None]] = []
    current = "unknown"
    offset = 0
    for line in text.split("\n"):
        line_start, offset = offset, offset + len(line) + 1
        header = _header_name(line)
        if header is None:
            continue
        if header in SECTION_NAMES:
            current = SECTION_NAMES[header]
            marks.append((line_start, current, None))
        elif header in REGION_NAMES:
            section = current if current in ("findings", "unknown") else "findings"
            marks.append((line_start, section, header))
    if not marks or marks[0][0] > 0:
        marks.insert(0, (0, "unknown", None))
    sections = []
    for (start, name, region), following in zip(marks, [*marks[1:], (len(text), "", None)], strict=True):
        if following[0] > start or not sections:
            sections.append(Section(name, region, start, following[0]))
    return sections


def section_at(sections: list[Section], char: int) -> Section:
    """The section that holds character offset ``char``."""
    for section in reversed(sections):
        if section.start <= char:
            return section
    return sections[0]
