"""Fast, lenient reads of text and number fields from pydicom Datasets and :class:`SliceHeader` objects.

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

from onconet.data.slices import SliceHeader

#: What the helpers read: a pydicom Dataset, or a :class:`SliceHeader` (raw values, no Dataset per slice).
Header = Dataset | SliceHeader

_TAGS: dict[str, BaseTag] = {}


def _tag(key: str | int | tuple[int, int]) -> BaseTag:
    if isinstance(key, str):
        tag = _TAGS.get(key)
        if tag is None:
            tag = _TAGS[key] = Tag(key)
        return tag
    return Tag(key)


_NUMBERS: dict[str | int | tuple[int, int], int] = {}


def _slice_item(ds: SliceHeader, key: str | int | tuple[int, int]) -> tuple[str, bytes | memoryview] | None:
    """``(VR, raw value)`` of a :class:`SliceHeader`'s element: two plain dict lookups (no BaseTag
    comparisons), as these run a few dozen times per slice."""
    tag = _NUMBERS.get(key)
    if tag is None:
        tag = _NUMBERS[key] = int(Tag(key))
    return ds.values.get(tag)


def _raw(ds: Header, key: str | int | tuple[int, int]) -> object:
    if type(ds) is SliceHeader:
        item = _slice_item(ds, key)
        return None if item is None else item[1]
    tag = _tag(key)
    if tag not in ds:
        return None
    return ds.get_item(tag).value


def header_text(ds: Header, key: str | int | tuple[int, int]) -> str:
    """A text element, stripped of padding; multi-valued elements joined by ``\\``; ``""`` when absent."""
    value = _raw(ds, key)
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace").strip(" \x00")
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v).strip() for v in value)  # type: ignore[union-attr]
    return str(value).strip(" \x00")


def header_numbers(ds: Header, key: str | int | tuple[int, int]) -> list[float] | None:
    """A DS/IS element as floats (one per value); ``None`` when absent, empty or not numeric."""
    text = header_text(ds, key)
    if not text:
        return None
    try:
        numbers = [float(part) for part in text.split("\\")]
    except ValueError:
        return None
    return numbers if all(math.isfinite(n) for n in numbers) else None


def header_number(ds: Header, key: str | int | tuple[int, int]) -> float | None:
    """The first value of a DS/IS element, or ``None``."""
    numbers = header_numbers(ds, key)
    return numbers[0] if numbers else None


_BINARY_INTS = {"US": (2, False), "SS": (2, True), "UL": (4, False), "SL": (4, True)}


def header_int(ds: Header, key: str | int | tuple[int, int], default: int | None = None) -> int | None:
    """An integer element (first value), binary (US/SS/UL/SL) or text (IS); ``default`` when absent."""
    if type(ds) is SliceHeader:
        item = _slice_item(ds, key)
        return default if item is None else _raw_int(item[0], item[1], True, default)  # type: ignore[arg-type]
    tag = _tag(key)
    if tag not in ds:
        return default
    element = ds.get_item(tag)
    value = element.value
    if isinstance(element, RawDataElement) and isinstance(value, bytes):
        return _raw_int(element.VR, value, element.is_little_endian, default)
    value = ds[tag].value
    if value is None or value == "":
        return default
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else default  # type: ignore[arg-type, index]
    return default if value is None else int(value)


def _raw_int(vr: str, value: bytes, little_endian: bool, default: int | None) -> int | None:
    """The first integer of an unconverted element value."""
    if vr in _BINARY_INTS:
        size, signed = _BINARY_INTS[vr]
        if len(value) < size:
            return default
        return int.from_bytes(value[:size], "little" if little_endian else "big", signed=signed)
    text = value.decode("ascii", errors="replace").strip(" \x00").split("\\")[0]
    try:
        return int(float(text)) if text else default
    except ValueError:
        return default


def header_bytes(ds: Header, key: str | int | tuple[int, int]) -> bytes | memoryview | None:
    """The raw value bytes of an element (pixel data, sequences), unconverted; ``None`` if absent.

    A :class:`SliceHeader`'s pixel data comes as a memoryview of the file's bytes (no copy).
    """
    if type(ds) is SliceHeader:
        item = _slice_item(ds, key)
        return None if item is None else item[1]
    tag = _tag(key)
    if tag not in ds:
        return None
    value = ds.get_item(tag).value
    return value if isinstance(value, bytes) else None
