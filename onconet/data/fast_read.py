"""A fast reader for the common case: Part-10 files in implicit or explicit VR little endian, uncompressed.

pydicom's general reader spends about a millisecond per file building element objects for everything in the
header. This reader walks the top-level elements with ``struct``, keeps only the requested tags as raw
elements (pydicom converts them lazily on access, sequences included) and stops as soon as it is past the
last tag it needs, so discovery and series reading cost a fraction of that. Anything it does not handle
(no preamble, big endian, deflated or compressed transfer syntaxes, malformed structure) returns ``None``, and
the caller falls back to :func:`pydicom.dcmread`; it never guesses.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from functools import lru_cache

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
_TRANSFER_SYNTAX = BaseTag(0x00020010)
#: explicit VRs with a 2-byte reserved field and a 4-byte length
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_HEADER = struct.Struct("<HHI")
_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_EXPLICIT_LONG = struct.Struct("<HH2s2xI")


class _Malformed(Exception):
    """The structure is not what this reader handles; fall back to pydicom."""


class TruncatedFileError(OSError):
    """An element's value runs past the end of the file."""


@lru_cache(maxsize=4096)
def _implicit_vr(tag: int) -> str:
    if (tag >> 16) % 2:  # private
        return "UN"
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return "OW" if vr in ("OB or OW", "US or OW", "US or SS or OW") else vr.split(" or ")[0]


@lru_cache(maxsize=16)
def _wanted(tags: frozenset[int], pixels: bool) -> tuple[frozenset[int], int]:
    """The tags to keep (PixelData too when ``pixels``) and the last one: made once per tag set."""
    wanted = tags | {PIXEL_DATA} if pixels else tags
    return wanted, max(wanted)


def _element_header(data: bytes, pos: int, implicit: bool) -> tuple[int, str | None, int, int]:
    """``(tag, explicit VR or None, value length, header size)`` of the element at ``pos``."""
    if implicit:
        group, element, length = _HEADER.unpack_from(data, pos)
        return (group << 16) | element, None, length, 8
    group, element, vr, length = _EXPLICIT_SHORT.unpack_from(data, pos)
    tag = (group << 16) | element
    if group == 0xFFFE:  # item and delimiters carry no VR
        return tag, None, _HEADER.unpack_from(data, pos)[2], 8
    if vr in _LONG_VRS:
        return tag, vr.decode(), _EXPLICIT_LONG.unpack_from(data, pos)[3], 12
    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise _Malformed("not an explicit VR")
    return tag, vr.decode(), length, 8


def _skip_undefined_sequence(data: bytes, pos: int, implicit: bool) -> int:
    """From the first item of an undefined-length sequence to just after its delimiter."""
    end = len(data)
    while pos + 8 <= end:
        tag, _vr, length, size = _element_header(data, pos, True)
        pos += size
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            raise _Malformed("expected a sequence item")
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # an undefined-length item: its elements up to the item delimiter
            tag, vr, length, size = _element_header(data, pos, implicit)
            if tag == _ITEM_END:
                pos += 8
                break
            pos += size
            if length == _UNDEFINED:
                pos = _skip_undefined_sequence(data, pos, implicit or vr == "UN")
            else:
                pos += length
            if pos > end:
                raise _Malformed("item runs past the end of the file")
    raise _Malformed("unterminated sequence")


def _raw(
    tag: int, vr: str | None, data: bytes, start: int, size: int, implicit: bool, length: int | None = None
) -> RawDataElement:
    """A lazily converted element (pydicom parses the value, sequences too, on first access)."""
    value_length = size if length is None else length
    value = data[start : start + size]
    return RawDataElement(BaseTag(tag), vr or _implicit_vr(tag), value_length, value, start, implicit, True)


def _read_meta(data: bytes) -> tuple[FileMetaDataset, int]:
    meta_elements = {}
    pos = 132
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        tag, vr, length, size = _element_header(data, pos, False)
        if pos + size + length > len(data):
            raise TruncatedFileError(f"file meta element {tag:08X} runs past the end of the file")
        meta_elements[BaseTag(tag)] = _raw(tag, vr, data, pos + size, length, False)
        pos += size + length
    group_length = meta_elements.get(BaseTag(0x00020000))
    if group_length is not None and len(group_length.value) == 4:
        meta_end = group_length.value_tell + 4 + int.from_bytes(group_length.value, "little")
        if meta_end > len(data):
            raise TruncatedFileError("the file ends inside the file meta information")
    meta = FileMetaDataset(meta_elements)
    return meta, pos


def fast_read(path: str | os.PathLike, tags: Iterable[int], *, pixels: bool) -> Dataset | None:
    """The requested top-level ``tags`` (and PixelData when ``pixels``) of a file, or ``None``: fall back.

    Raises:
        OSError: the file cannot be read (:class:`TruncatedFileError`: it ends inside an element).
    """
    with open(path, "rb") as handle:
        data = handle.read()
    return parse_part10(data, path, tags, pixels=pixels)


def parse_part10(
    data: bytes, path: str | os.PathLike, tags: Iterable[int], *, pixels: bool
) -> Dataset | None:
    """:func:`fast_read` of a file's bytes already in memory (``path`` only names it in errors)."""
    if len(data) < 140 or data[128:132] != b"DICM":
        return None
    try:
        meta, pos = _read_meta(data)
        # the raw bytes: converting the element would validate the UID with a regular expression
        syntax_element = meta.get_item(_TRANSFER_SYNTAX)
        syntax = syntax_element.value if syntax_element is not None else b""
        syntax = syntax.decode("ascii", "replace") if isinstance(syntax, bytes) else str(syntax)
        syntax = syntax.strip("\x00 ")
        if syntax not in (IMPLICIT_LE, EXPLICIT_LE):
            return None
        implicit = syntax == IMPLICIT_LE
        tag_set = tags if isinstance(tags, frozenset) else frozenset(int(t) for t in tags)
        wanted, last = _wanted(tag_set, pixels)
        elements = {}
        end = len(data)
        start, stopped = pos, False
        short_header, long_header = _HEADER.unpack_from, _EXPLICIT_LONG.unpack_from
        while pos + 8 <= end:
            group, element, length = short_header(data, pos)  # implicit layout; explicit fixed below
            tag = (group << 16) | element
            if tag > last:
                stopped = True
                break
            vr_bytes = None
            size = 8
            if not implicit and group != 0xFFFE:
                vr_bytes = data[pos + 4 : pos + 6]
                if vr_bytes in _LONG_VRS:
                    length, size = long_header(data, pos)[3], 12
                elif 65 <= vr_bytes[0] <= 90 and 65 <= vr_bytes[1] <= 90:
                    length >>= 16  # the 2-byte length follows the 2-byte VR
                else:
                    raise _Malformed("not an explicit VR")
            value_at = pos + size
            if length == _UNDEFINED:
                if tag == PIXEL_DATA:
                    return None  # encapsulated (compressed) pixel data
                vr = vr_bytes.decode() if vr_bytes else None
                stop = _skip_undefined_sequence(data, value_at, implicit or vr == "UN")
                if tag in wanted:
                    elements[BaseTag(tag)] = _raw(
                        tag, vr, data, value_at, stop - value_at, implicit, _UNDEFINED
                    )
                pos = stop
                continue
            if value_at + length > end:
                if (
                    tag == PIXEL_DATA
                ):  # truncated pixel data: keep what is there, the caller checks its length
                    length = end - value_at
                else:
                    raise TruncatedFileError(f"element {tag:08X} runs past the end of the file")
            if tag in wanted:  # inline of _raw: this runs for ~50 elements of every slice
                key = BaseTag(tag)
                vr = vr_bytes.decode() if vr_bytes else _implicit_vr(tag)
                value = data[value_at : value_at + length]
                elements[key] = RawDataElement(key, vr, length, value, value_at, implicit, True)
            pos = value_at + length
    except (_Malformed, struct.error):
        return None
    except TruncatedFileError as err:
        raise TruncatedFileError(f"{path}: {err}") from None
    if pos == start or (pos < end and end - pos < 8 and not stopped):
        raise TruncatedFileError(f"{path}: the file ends inside the data set header")
    ds = Dataset(elements)
    ds.file_meta = meta
    ds.set_original_encoding(implicit, True, None)
    ds.preamble = data[:128]
    return ds
