"""Reading a series' slices without a pydicom Dataset per slice: raw header values and zero-copy pixels.

A PET or CT series is hundreds of files written by one exporter, whose headers differ in a handful of
elements (instance UID and number, position, rescale, times) and agree byte for byte in the rest. Walking
every element of every file in Python, and building a pydicom Dataset of them, cost ~10x reading the bytes.
:class:`SeriesReader` walks the first files element by element (the same rules as
:func:`~onconet.data.fast_read.fast_read`), learns which top-level elements vary, and reads later files by
comparing each run of constant elements with the first file's bytes in one ``bytes.startswith`` (memcmp)
and parsing only the varying elements. A run that does not match exactly sends the file back to the
element walk, so what is read never depends on a guess: equal bytes are equal elements.

Each file becomes a :class:`SliceHeader`: the requested header values as raw bytes (what
:mod:`onconet.data.header` reads), and the pixel data as a view of the file's bytes (decoded with
``numpy.frombuffer``). Anything else a caller asks of it (``ds.PatientWeight``, ``ds.get(...)``,
``ds.keys()``) is answered by a pydicom Dataset parsed on first use from the header bytes, identical to
what :func:`~onconet.data.fast_read.fast_read` gives. Compressed transfer syntaxes (explicit VR little endian
data sets with encapsulated pixel data) are read the same way and their pixel bytes handed to pydicom's
decoder, so that decoding is all that is left. Files this reader does not handle (no preamble, big endian,
deflated, truncated or odd structure) give ``None``: the caller falls back to the pydicom path, which also
names every error.
"""

from __future__ import annotations

import os
import struct
from collections.abc import KeysView
from functools import lru_cache

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID

from onconet.data.fast_read import (
    _HEADER,
    _LONG_VRS,
    _UNDEFINED,
    EXPLICIT_LE,
    IMPLICIT_LE,
    PIXEL_DATA,
    _implicit_vr,
    _Malformed,
    _skip_undefined_sequence,
)

_TRANSFER_SYNTAX = 0x00020010
_GROUP_LENGTH = 0x00020000
_U32 = struct.Struct("<I")
#: After this many walked files in a row that did not follow the layout (mixed exporters, a new series in
#: a long discovery run), forget it and learn afresh from the next file.
MAX_RELEARNS = 8


@lru_cache(maxsize=64)
def encapsulated(syntax: str) -> bool:
    """A compressed transfer syntax whose data set is explicit VR little endian (all but deflate)."""
    uid = UID(syntax)
    return uid.is_encapsulated and uid.is_little_endian and not uid.is_implicit_VR and not uid.is_deflated


@lru_cache(maxsize=1024)
def tag_of(key: str | int | tuple[int, int]) -> int:
    """A keyword, tag number or (group, element) pair as a tag number."""
    return int(Tag(key))


class SliceHeader:
    """One slice as read by :class:`SeriesReader`: raw header values, pixel bytes, a Dataset on demand.

    ``values`` maps a tag number to ``(VR, value bytes)`` (little endian; the pixel data as a memoryview of
    the file's bytes), for the tags the reader was asked for.
    """

    __slots__ = ("_data", "_dataset", "_raw_cache", "_undefined", "filename", "transfer_syntax", "values")
    is_little_endian = True

    def __init__(
        self,
        filename: str,
        values: dict[int, tuple[str, bytes | memoryview]],
        data: bytes,
        transfer_syntax: str,
        undefined: frozenset[int],
        raw_cache: dict | None = None,
    ) -> None:
        self.filename = filename
        self.values = values
        self.transfer_syntax = transfer_syntax
        self._data = data  # the file's bytes (the pixel views point into them); dropped with the pixels
        self._undefined = undefined  # tags of undefined length (sequences, encapsulated pixel data)
        # RawDataElements made for other slices of the series, by (tag, (VR, value), syntax, length)
        self._raw_cache = {} if raw_cache is None else raw_cache
        self._dataset: Dataset | None = None

    def __contains__(self, key: object) -> bool:
        return tag_of(key) in self.values  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"SliceHeader({self.filename!r}, {len(self.values)} elements)"

    def drop_pixels(self) -> None:
        """Forget the pixel data (and the file's bytes after the header): the volume holds the values now."""
        if self.values.pop(PIXEL_DATA, None) is not None:
            self._data = b""
            self._dataset = None

    @property
    def dataset(self) -> Dataset:
        """A pydicom Dataset of the same raw elements (made once, on first use).

        pydicom converts them on access exactly as it converts the Dataset of
        :func:`~onconet.data.fast_read.fast_read`: same tags, VRs, lengths, values and encoding. Only the
        file offsets of the values (``value_tell``, used by pydicom's deferred reads) are not kept, and
        there is no ``file_meta`` (the transfer syntax is :attr:`transfer_syntax`).
        """
        if self._dataset is None:
            implicit = self.transfer_syntax == IMPLICIT_LE
            elements, cache = {}, self._raw_cache
            for tag, item in sorted(self.values.items()):
                undefined = tag in self._undefined
                if tag == PIXEL_DATA:  # a view into this file's bytes: never shared
                    raw = _raw_element(tag, item, implicit, undefined)
                else:  # equal raw values are equal elements: a series builds each only once
                    key = (tag, item, implicit, undefined)
                    raw = cache.get(key)
                    if raw is None:
                        raw = cache[key] = _raw_element(tag, item, implicit, undefined)
                elements[raw.tag] = raw
            ds = Dataset(elements)
            ds.set_original_encoding(implicit, True, None)
            ds.filename = self.filename
            self._dataset = ds
        return self._dataset

    def __getattr__(self, name: str) -> object:  # anything else: ask the Dataset
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key: object) -> object:
        return self.dataset[key]  # type: ignore[index]

    def get(self, key: object, default: object = None) -> object:
        """``Dataset.get`` of :attr:`dataset`."""
        return self.dataset.get(key, default)  # type: ignore[arg-type]

    def keys(self) -> KeysView:
        """``Dataset.keys`` of :attr:`dataset`."""
        return self.dataset.keys()


def _raw_element(
    tag: int, item: tuple[str, bytes | memoryview], implicit: bool, undefined: bool
) -> RawDataElement:
    """The element as :func:`~onconet.data.fast_read.fast_read` makes it (offset in the file not kept)."""
    vr, value = item
    length = _UNDEFINED if undefined else len(value)
    return RawDataElement(BaseTag(tag), vr, length, bytes(value), 0, implicit, True)


# A walked element: (tag, start of its header, start of its value, end, VR, explicit VR, undefined length)
_Element = tuple[int, int, int, int, str, bool, bool]


def walk(data: bytes) -> tuple[list[_Element], str] | None:
    """The top-level elements of a Part-10 file up to and including its pixel data, and its syntax.

    ``None`` when this reader does not handle the file: no preamble, a transfer syntax other than implicit or
    explicit VR little endian, encapsulated pixel data, no or truncated pixel data, odd structure.
    """
    end = len(data)
    if end < 140 or data[128:132] != b"DICM":
        return None
    elements: list[_Element] = []
    pos, in_meta, implicit, syntax = 132, True, False, ""
    try:
        while pos + 8 <= end:
            group, element, length = _HEADER.unpack_from(data, pos)
            tag = (group << 16) | element
            if tag > PIXEL_DATA:
                return None  # past where the pixel data belongs (fast_read would stop here too)
            if in_meta and group != 2:  # the file meta (always explicit) ends: the data set's syntax rules
                in_meta = False
                if syntax not in (IMPLICIT_LE, EXPLICIT_LE) and not encapsulated(syntax):
                    return None
                implicit = syntax == IMPLICIT_LE
            explicit = (in_meta or not implicit) and group != 0xFFFE
            size = 8
            if explicit:
                vr_bytes = data[pos + 4 : pos + 6]
                if vr_bytes in _LONG_VRS:
                    length, size = _U32.unpack_from(data, pos + 8)[0], 12
                elif 65 <= vr_bytes[0] <= 90 and 65 <= vr_bytes[1] <= 90:
                    length >>= 16
                else:
                    return None
                vr = vr_bytes.decode()
            else:
                vr = _implicit_vr(tag)
            value_at = pos + size
            if length == _UNDEFINED:
                if in_meta or (tag == PIXEL_DATA and not encapsulated(syntax)):
                    return None
                # a sequence, or encapsulated pixel data: items of defined length up to the delimiter
                pos = _skip_undefined_sequence(data, value_at, not explicit or vr == "UN")
                elements.append((tag, value_at - size, value_at, pos, vr, explicit, True))
                if tag == PIXEL_DATA:
                    return (elements, syntax) if _ends_cleanly(data, pos) else None
                continue
            if tag == PIXEL_DATA and encapsulated(syntax):
                return None  # compressed data must be encapsulated
            if value_at + length > end:
                return None  # truncated: the pydicom path names the file and the problem
            pos = value_at + length
            elements.append((tag, value_at - size, value_at, pos, vr, explicit, False))
            if tag == _GROUP_LENGTH and length == 4:
                meta_end = pos + _U32.unpack_from(data, value_at)[0]
                if meta_end > end:
                    return None
            elif tag == _TRANSFER_SYNTAX:
                syntax = data[value_at:pos].decode("ascii", "replace").strip("\x00 ")
            elif tag == PIXEL_DATA:
                return (elements, syntax) if not in_meta and _ends_cleanly(data, pos) else None
    except (_Malformed, struct.error):
        return None
    return None  # no pixel data


def _ends_cleanly(data: bytes, pos: int) -> bool:
    """After the pixel data: the end of the file, or an element past it (trailing padding). A stray tail
    of fewer than 8 bytes, or an element that belongs before the pixel data, goes to the pydicom path
    (the general reader calls the first truncation)."""
    rest = len(data) - pos
    if rest == 0:
        return True
    if rest < 8:
        return False
    group, element = struct.unpack_from("<HH", data, pos)
    return ((group << 16) | element) > PIXEL_DATA


class SeriesReader:
    """Reads the files of one series as :class:`SliceHeader` objects, learning their common layout.

    Args:
        tags: the header tags to keep (the pixel data is always kept).
    """

    def __init__(self, tags: frozenset[int]) -> None:
        self.tags = tags
        self._wanted = tags | {PIXEL_DATA}
        self._reference: tuple[bytes, list[_Element], str] | None = None
        self._variable: set[int] = set()
        self._steps: list[tuple] | None = None
        self._relearns = 0
        self._encapsulated = False
        self._undefined: frozenset[int] = frozenset()
        self._raw_cache: dict = {}  # shared by this series' slices (see SliceHeader.dataset)
        #: files read by following the learnt layout, and by the element walk (for tests and benchmarks)
        self.followed = 0
        self.walked = 0

    def read(self, path: str | os.PathLike) -> SliceHeader | None:
        """One file as a :class:`SliceHeader`, or ``None`` when the caller must use the pydicom path.

        Raises:
            OSError: the file cannot be opened or read.
        """
        with open(path, "rb") as handle:
            data = handle.read()
        return self.parse(data, str(path))

    def parse(self, data: bytes, filename: str) -> SliceHeader | None:
        """:meth:`read` of bytes already in memory."""
        if self._steps is not None:
            followed = self._follow(data)
            if followed is not None:
                self.followed += 1
                self._relearns = 0
                syntax = self._reference[2]  # type: ignore[index]
                return SliceHeader(filename, followed, data, syntax, self._undefined, self._raw_cache)
        walked = walk(data)
        if walked is None:
            return None
        self.walked += 1
        elements, syntax = walked
        self._learn(data, elements, syntax)
        wanted = self._wanted
        values: dict[int, tuple[str, bytes | memoryview]] = {
            tag: (vr, data[value_at:stop])
            for tag, _start, value_at, stop, vr, _explicit, _undefined in elements
            if tag in wanted and tag != PIXEL_DATA
        }
        _tag, _start, value_at, stop, vr, _explicit, _undefined = elements[-1]
        if encapsulated(syntax):
            stop -= 8  # pydicom's value of encapsulated pixel data stops before the sequence delimiter
        values[PIXEL_DATA] = (vr, memoryview(data)[value_at:stop])
        undefined = frozenset(element[0] for element in elements if element[6])
        return SliceHeader(filename, values, data, syntax, undefined, self._raw_cache)

    def _learn(self, data: bytes, elements: list[_Element], syntax: str) -> None:
        """Update the layout from a walked file: which elements vary, and the steps to follow it."""
        if self._reference is not None and self._relearns >= MAX_RELEARNS:
            self._reference, self._variable, self._relearns = None, set(), 0
        if self._reference is not None:
            ref_data, ref_elements, ref_syntax = self._reference
            self._relearns += 1
            same_layout = syntax == ref_syntax and [e[0] for e in elements] == [e[0] for e in ref_elements]
            if same_layout:
                for ours, theirs in zip(elements, ref_elements, strict=True):
                    if data[ours[1] : ours[3]] != ref_data[theirs[1] : theirs[3]]:
                        self._variable.add(ours[0])
                return self._build_steps()
        header_end = elements[-1][1]  # keep the header bytes only, not the pixels
        self._reference = (data[:header_end], elements, syntax)
        self._build_steps()

    def _build_steps(self) -> None:
        """Runs of constant elements (their bytes and kept values) and single varying elements."""
        ref_data, elements, _syntax = self._reference  # type: ignore[misc]
        steps: list[tuple] = []
        run: list[_Element] = []

        def close_run() -> None:
            if run:
                values = {
                    tag: (vr, ref_data[value_at:stop])
                    for tag, _start, value_at, stop, vr, _explicit, _undefined in run
                    if tag in self._wanted
                }
                steps.append((True, ref_data[run[0][1] : run[-1][3]], values))
                run.clear()

        for element in elements:
            tag, start, value_at, _stop, vr, explicit, _undefined = element
            # the transfer syntax never varies within a followed layout: a file with another one is walked
            varies = tag in self._variable and tag != _TRANSFER_SYNTAX
            if varies or tag == PIXEL_DATA:
                close_run()
                vr_bytes = vr.encode() if explicit else None
                steps.append((False, tag, vr, vr_bytes, value_at - start, tag in self._wanted))
            else:
                run.append(element)
        close_run()
        self._steps = steps
        self._encapsulated = encapsulated(self._reference[2])  # type: ignore[index]
        self._undefined = frozenset(element[0] for element in elements if element[6])

    def _follow(self, data: bytes) -> dict[int, tuple[str, bytes | memoryview]] | None:
        """The kept values, when ``data`` follows the learnt layout exactly (else ``None``: walk it)."""
        pos, end = 132, len(data)
        values: dict[int, tuple[str, bytes | memoryview]] = {}
        unpack, u32 = _HEADER.unpack_from, _U32.unpack_from
        try:
            for step in self._steps:  # type: ignore[union-attr]
                if step[0]:  # a run of constant elements: byte-equal to the reference's
                    if not data.startswith(step[1], pos):
                        return None
                    pos += len(step[1])
                    values.update(step[2])
                    continue
                _const, tag, vr, vr_bytes, size, wanted = step
                group, element, length = unpack(data, pos)
                if (group << 16) | element != tag:
                    return None
                if vr_bytes is not None:  # explicit VR: the same VR, so the same header layout
                    if data[pos + 4 : pos + 6] != vr_bytes:
                        return None
                    length = u32(data, pos + 8)[0] if size == 12 else length >> 16
                value_at = pos + size
                if length == _UNDEFINED:
                    if tag != PIXEL_DATA or not self._encapsulated:
                        return None
                    # the fragments, without the sequence delimiter (as pydicom's value)
                    length = _skip_undefined_sequence(data, value_at, True) - value_at - 8
                elif value_at + length > end or (tag == PIXEL_DATA and self._encapsulated):
                    return None
                if tag == PIXEL_DATA:
                    if not _ends_cleanly(data, value_at + length + (8 if self._encapsulated else 0)):
                        return None
                    values[tag] = (vr, memoryview(data)[value_at : value_at + length])
                    return values
                if wanted:
                    values[tag] = (vr, data[value_at : value_at + length])
                pos = value_at + length
        except (_Malformed, struct.error):
            return None
        return None
