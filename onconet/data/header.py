"""Fast, lenient reads of text and number fields from pydicom Datasets.

pydicom converts an element on first access (DS strings to validated ``DSfloat`` objects and so on), which
costs about a millisecond per slice for the handful of geometry fields. These helpers parse the raw bytes
directly when the element is still raw, and accept already-converted values too (Datasets built in memory).
They read text VRs (CS, DS, IS, LO, DA, TM, DT, UN holding text), not binary ones (US, FD).

>>> from pydicom.dataset import Dataset
>>> ds = Dataset(); ds.PixelSpacing = ["4.0", "4.0"]; ds.Units = "BQML "
>>> header_numbers(ds, "PixelSpacing")
[4.0, 4.0]
>>> header_text(ds, "Units")
'BQML'
"""

from __future__ import annotations

import math

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

_TAGS: dict[str, BaseTag] = {}


def _tag(key: str | int | tuple[int, int]) -> BaseTag:
    if isinstance(key, str):
        tag = _TAGS.get(key)
        if tag is None:
            tag = _TAGS[key] = Tag(key)
        return tag
    return Tag(key)


def _raw(ds: Dataset, key: str | int | tuple[int, int]) -> object:
    tag = _tag(key)
    if tag not in ds:
        return None
    return ds.get_item(tag).value


def header_text(ds: Dataset, key: str | int | tuple[int, int]) -> str:
    """A text element, stripped of padding; multi-valued elements joined by ``\\``; ``""`` when absent."""
    value = _raw(ds, key)
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace").strip(" \x00")
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v).strip() for v in value)  # type: ignore[union-attr]
    return str(value).strip(" \x00")


def header_numbers(ds: Dataset, key: str | int | tuple[int, int]) -> list[float] | None:
    """A DS/IS element as floats (one per value); ``None`` when absent, empty or not numeric."""
    text = header_text(ds, key)
    if not text:
        return None
    try:
        numbers = [float(part) for part in text.split("\\")]
    except ValueError:
        return None
    return numbers if all(math.isfinite(n) for n in numbers) else None


def header_number(ds: Dataset, key: str | int | tuple[int, int]) -> float | None:
    """The first value of a DS/IS element, or ``None``."""
    numbers = header_numbers(ds, key)
    return numbers[0] if numbers else None
