"""Fast, lenient reads of text and number fields from pydicom Datasets.

pydicom converts an element on first access (DS strings to validated ``DSfloat`` objects and so on), which
costs about a millisecond per slice for the handful of geometry fields. These helpers parse the raw bytes
directly when the element is still raw, and accept already-converted values too (Datasets built in memory).
:func:`header_text` and :func:`header_numbers` read text VRs (CS, DS, IS, LO, DA, TM, DT, UN holding text);
:func:`header_int` reads integers of any VR (US, UL, SS, SL binary, or IS text).

>>> from pydicom.dataset import Dataset
>>> ds = Dataset(); ds.PixelSpacing = ["4.0", "4.0"]; ds.Units = "BQML "
>>> header_numbers(ds, "PixelSpacing")
[4.0, 4.0]
>>> header_text(ds, "Units")
'BQML'
>>> ds.Rows = 128; header_int(ds, "Rows")
128
"""

from __future__ import annotations

import math

from pydicom.dataelem import RawDataElement
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


_BINARY_INTS = {"US": (2, False), "SS": (2, True), "UL": (4, False), "SL": (4, True)}


def header_int(ds: Dataset, key: str | int | tuple[int, int], default: int | None = None) -> int | None:
    """An integer element (first value), binary (US/SS/UL/SL) or text (IS); ``default`` when absent."""
    tag = _tag(key)
    if tag not in ds:
        return default
    element = ds.get_item(tag)
    value = element.value
    if isinstance(element, RawDataElement) and isinstance(value, bytes):
        vr = element.VR
        if vr in _BINARY_INTS:
            size, signed = _BINARY_INTS[vr]
            if len(value) < size:
                return default
            order = "little" if element.is_little_endian else "big"
            return int.from_bytes(value[:size], order, signed=signed)
        text = value.decode("ascii", errors="replace").strip(" \x00").split("\\")[0]
        try:
            return int(float(text)) if text else default
        except ValueError:
            return default
    value = ds[tag].value
    if value is None or value == "":
        return default
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else default  # type: ignore[arg-type, index]
    return default if value is None else int(value)


def header_bytes(ds: Dataset, key: str | int | tuple[int, int]) -> bytes | None:
    """The raw value bytes of an element (pixel data, sequences), unconverted; ``None`` if absent."""
    tag = _tag(key)
    if tag not in ds:
        return None
    value = ds.get_item(tag).value
    return value if isinstance(value, bytes) else None
