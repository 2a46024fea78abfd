"""DICOM discovery and series assembly: folders of files as a PACS exports them -> checked 3D volumes.

Discovery (:func:`discover`) walks a tree of files with any names, nested or flat, with non-DICOM files and
DICOMDIRs mixed in, reads each header once (no pixels), groups instances by study and series, keeps PET and
CT image series and says why it skipped everything else.

Assembly (:func:`assemble_volume`) turns one series' instances into a volume that obeys the geometry
contract: ``array[i, j, k]`` (float32, i = column, j = row, k = slice along the slice normal) with a 4×4
``affine`` such that ``affine @ [i, j, k, 1]`` is the RAS+ position in mm (nibabel's convention; DICOM is LPS,
so the first two world axes are negated). It checks one orientation, one frame of reference, no gantry
tilt, uniform spacing, no missing or duplicate slices, and raises a named :class:`SeriesGeometryError`
subclass naming the series, the rule and the slices otherwise; it never returns a silently wrong volume.

Example (``series_dir`` holds one PET or CT series)::

    volume = load_series(series_dir)
    volume.array.shape, volume.affine
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import UID

from onconet.data.fast_read import TruncatedFileError, fast_read
from onconet.data.header import (
    Header,
    header_bytes,
    header_int,
    header_number,
    header_numbers,
    header_text,
)
from onconet.data.slices import SeriesReader, SliceHeader
from onconet.errors import DicomError, SeriesGeometryError

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------- errors


class NotDicomError(DicomError):
    """A file is not DICOM at all."""


class UnreadableDicomError(DicomError):
    """A DICOM file is truncated or corrupt (header or pixel data shorter than declared)."""


class UnsupportedImageError(DicomError):
    """A DICOM image cannot be used by this reader (multi-frame, colour, compressed without a decoder)."""


class MixedSeriesError(DicomError):
    """Files handed over as one series belong to several series."""


class MissingSeriesError(DicomError):
    """A study lacks the PET or CT series that ingestion needs."""


class MixedOrientationError(SeriesGeometryError):
    """The slices of one series have different ImageOrientationPatient."""


class MixedFrameOfReferenceError(SeriesGeometryError):
    """The slices of one series (or a PET and its CT) lie in different frames of reference."""


class InconsistentSliceError(SeriesGeometryError):
    """Slices of one series differ in size or pixel spacing."""


class GantryTiltError(SeriesGeometryError):
    """Slice positions do not advance along the slice normal (gantry tilt or a sheared stack)."""


class DuplicateSliceError(SeriesGeometryError):
    """Two different instances sit at the same slice position."""


class MissingSliceError(SeriesGeometryError):
    """A gap between neighbouring slices is a multiple of the regular spacing."""


class NonUniformSpacingError(SeriesGeometryError):
    """Slice spacing varies by more than the tolerance."""


# ------------------------------------------------------------------------------------------ constants

PET_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.130"})
CT_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"})
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
STRUCTURED_REPORT_PREFIX = "1.2.840.10008.5.1.4.1.1.88"

#: Orientation cosines may differ this much between slices of one series (rounding in the header).
ORIENTATION_TOLERANCE = 1e-4
#: A slice gap may deviate from the median gap by this much (mm, and fraction of the median) before the
#: series counts as non-uniform; real scanners round bed-position boundaries (STS_001: 3.19 vs 3.27 mm).
SPACING_TOLERANCE_MM = 0.1
SPACING_TOLERANCE_FRACTION = 0.05
#: A gap this many times the median gap means slices are missing.
MISSING_SLICE_RATIO = 1.5
#: Slice positions may stray sideways from the slice normal by this fraction of a pixel (rounding).
TILT_TOLERANCE_PIXELS = 0.05

# The header fields anything in onconet.data uses. Reading only these (plus pixels) halves the parse time.
_PRIVATE_TAGS = [Tag(group, (slot << 8) | offset) for group in (0x0009, 0x7053) for slot in range(0x10, 0x14)
                 for offset in (0x00, 0x09, 0x0D)] + [Tag(group, slot) for group in (0x0009, 0x7053)
                                                      for slot in range(0x10, 0x14)]  # fmt: skip
HEADER_KEYWORDS = (
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality", "ImageType", "PatientID", "StudyDate", "StudyTime", "SeriesDate", "SeriesTime",
    "AcquisitionDate", "AcquisitionTime", "InstitutionName", "Manufacturer", "SeriesDescription",
    "SeriesNumber", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "SliceThickness", "SpacingBetweenSlices", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
    "BitsStored",
    "PixelRepresentation", "SamplesPerPixel", "NumberOfFrames", "RescaleSlope", "RescaleIntercept",
    "Units", "SUVType", "DecayCorrection", "CorrectedImage", "PatientWeight", "PatientSize", "PatientSex",
    "RadiopharmaceuticalInformationSequence", "FrameReferenceTime", "ActualFrameDuration", "NumberOfSlices",
)  # fmt: skip
_READ_TAGS = [Tag(keyword) for keyword in HEADER_KEYWORDS] + _PRIVATE_TAGS
_READ_TAGS_WITH_PIXELS = [*_READ_TAGS, Tag("PixelData")]
_READ_TAG_SET = frozenset(int(tag) for tag in _READ_TAGS)
#: What discovery needs: all below (0054,1001), so the fast reader stops well before the pixel data.
DISCOVERY_KEYWORDS = (
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "StudyDate", "SeriesDate", "StudyTime", "SeriesTime",
    "Modality", "Manufacturer", "InstitutionName", "SeriesDescription", "PatientID", "StudyInstanceUID",
    "SeriesInstanceUID", "FrameOfReferenceUID", "NumberOfFrames", "Units",
)  # fmt: skip
_DISCOVERY_TAG_SET = frozenset(int(Tag(keyword)) for keyword in DISCOVERY_KEYWORDS)

_NATIVE_DTYPES = {(8, 0): "u1", (8, 1): "i1", (16, 0): "<u2", (16, 1): "<i2", (32, 0): "<u4", (32, 1): "<i4"}


# ------------------------------------------------------------------------------------------- reading


def read_dataset(
    path: str | os.PathLike, *, pixels: bool = True, tags: frozenset[int] | None = None
) -> Dataset:
    """Read the header fields OncoNet uses (or ``tags``), and the pixel data when ``pixels``, of one file.

    Raises:
        NotDicomError: the file is not DICOM.
        UnreadableDicomError: the file is truncated or corrupt.
    """
    path = Path(path)
    # Every read keeps the whole header set (discovery's records use more than ``tags``); the fast reader
    # takes it as a prebuilt frozenset, which saves building one per file.
    tags = _READ_TAGS_WITH_PIXELS if pixels else _READ_TAGS
    try:
        ds = fast_read(path, _READ_TAG_SET, pixels=pixels)
    except TruncatedFileError as err:
        raise UnreadableDicomError(f"{err}: truncated DICOM file; re-export it") from err
    except OSError as err:
        raise UnreadableDicomError(f"{path}: cannot read ({err})") from err
    if ds is not None:
        if pixels and "PixelData" in ds:
            _check_pixel_length(ds, path)
        ds.filename = str(path)
        return ds
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=not pixels, specific_tags=tags)
    except InvalidDicomError:
        ds = _read_without_preamble(path, pixels, tags)
    except (EOFError, OSError, ValueError, KeyError, IndexError, TypeError) as err:
        raise UnreadableDicomError(f"{path}: truncated or corrupt DICOM ({err}); re-export the file") from err
    if pixels and "PixelData" in ds:
        _check_pixel_length(ds, path)
    ds.filename = str(path)
    return ds


def _read_without_preamble(path: Path, pixels: bool, tags: list) -> Dataset:
    """Old exports omit the 128-byte preamble; accept them only if they hold a real image header."""
    try:
        with warnings.catch_warnings():  # pydicom warns at length while it reads text as if it were DICOM
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=not pixels, specific_tags=tags, force=True)
        if "SOPInstanceUID" in ds and "Modality" in ds:
            return ds
    except Exception:
        pass
    raise NotDicomError(f"{path}: not a DICOM file (no DICM preamble and no image header)")


def _check_pixel_length(ds: Header, path: str | os.PathLike) -> None:
    layout = _native_layout(ds) if type(ds) is SliceHeader else None
    if layout is not None:
        expected = layout[3]
    else:
        syntax = _transfer_syntax(ds)
        if syntax.is_compressed or syntax.is_deflated:
            return
        expected = (
            _int(ds, "Rows")
            * _int(ds, "Columns")
            * _int(ds, "NumberOfFrames", 1)
            * (_int(ds, "BitsAllocated") // 8)
        )
        expected *= _int(ds, "SamplesPerPixel", 1)
    pixel_data = header_bytes(ds, "PixelData") or b""
    if len(pixel_data) < expected:
        raise UnreadableDicomError(
            f"{path}: truncated pixel data ({len(pixel_data)} of {expected} bytes); re-export the file"
        )


def _int(ds: Header, keyword: str, default: int | None = None) -> int:
    value = header_int(ds, keyword, default)
    if value is None:
        raise UnreadableDicomError(f"{_name(ds)}: {keyword} is missing; the image cannot be decoded")
    return value


def _transfer_syntax(ds: Header) -> UID:
    if type(ds) is SliceHeader:
        return _syntax_uid(ds.transfer_syntax)
    meta = getattr(ds, "file_meta", None)
    text = header_text(meta, 0x00020010) if meta is not None else ""
    return _syntax_uid(text or "1.2.840.10008.1.2")


@lru_cache(maxsize=64)
def _syntax_uid(text: str) -> UID:
    # pydicom validates a UID against a regular expression each time one is made: once per syntax suffices
    return UID(text)


_FORMAT_TAGS = tuple(
    int(Tag(keyword))
    for keyword in (
        "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated", "BitsStored",
        "PixelRepresentation",
    )
)  # fmt: skip
_PIXEL_DATA = int(Tag("PixelData"))
_LAYOUTS: dict[tuple, tuple[str, int, int, int] | None] = {}


def _native_layout(ds: SliceHeader) -> tuple[str, int, int, int] | None:
    """``(dtype, rows, columns, bytes)`` when the slice's pixels are plain little-endian single-frame
    grayscale that ``numpy.frombuffer`` reads, else ``None``.

    Keyed on the raw bytes of the format elements and the transfer syntax, so the checks run once per
    series, not per slice: equal bytes give equal answers.
    """
    key = (ds.transfer_syntax, *map(ds.values.get, _FORMAT_TAGS))
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    if len(_LAYOUTS) > 1024:  # formats are few; a flood of distinct keys would mean odd files
        _LAYOUTS.clear()
    rows, cols, bits = (header_int(ds, keyword) for keyword in ("Rows", "Columns", "BitsAllocated"))
    layout = None
    if rows is not None and cols is not None and bits is not None:
        dtype = _NATIVE_DTYPES.get((bits, header_int(ds, "PixelRepresentation", 0)))  # type: ignore[arg-type]
        syntax = _transfer_syntax(ds)
        native = (
            header_int(ds, "NumberOfFrames", 1) == 1
            and header_int(ds, "SamplesPerPixel", 1) == 1
            and header_int(ds, "BitsStored", bits) == bits
            and not (syntax.is_compressed or syntax.is_deflated)
            and syntax.is_little_endian
        )
        layout = (dtype, rows, cols, rows * cols * (bits // 8)) if dtype and native else None
    _LAYOUTS[key] = layout
    return layout


def pixel_matrix(ds: Header) -> np.ndarray:
    """The stored values of a single-frame grayscale image as a ``(rows, columns)`` array (no rescale)."""
    if type(ds) is SliceHeader:
        layout = _native_layout(ds)
        pixels = ds.values.get(_PIXEL_DATA)
        if layout is not None and pixels is not None:  # the checks below passed for this format already
            dtype, rows, cols, _size = layout
            return np.frombuffer(pixels[1], dtype=dtype, count=rows * cols).reshape(rows, cols)
    label = _name(ds)
    if "PixelData" not in ds:
        raise UnreadableDicomError(f"{label}: no pixel data (truncated file?); re-export it")
    if _int(ds, "NumberOfFrames", 1) != 1:
        raise UnsupportedImageError(
            f"{label}: multi-frame images are not supported; export single-frame slices"
        )
    if _int(ds, "SamplesPerPixel", 1) != 1:
        raise UnsupportedImageError(f"{label}: colour images are not supported (SamplesPerPixel != 1)")
    syntax = _transfer_syntax(ds)
    bits = _int(ds, "BitsAllocated")
    stored = _int(ds, "BitsStored", bits)
    dtype = _NATIVE_DTYPES.get((bits, _int(ds, "PixelRepresentation", 0)))
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    raw = header_bytes(ds, "PixelData")
    if (
        dtype
        and stored == bits
        and not (syntax.is_compressed or syntax.is_deflated)
        and syntax.is_little_endian
    ):
        return np.frombuffer(
            raw if raw is not None else ds.PixelData, dtype=dtype, count=rows * cols
        ).reshape(rows, cols)
    try:  # compressed, big-endian or packed: let pydicom's handlers decode
        if type(ds) is SliceHeader:
            return _decode_with_pydicom(ds, syntax, rows, cols, bits, stored)
        return np.asarray(ds.pixel_array).reshape(rows, cols)
    except Exception as err:
        raise UnsupportedImageError(f"{label}: cannot decode pixel data ({syntax.name}): {err}") from err


def _decode_with_pydicom(
    ds: SliceHeader, syntax: UID, rows: int, cols: int, bits: int, stored: int
) -> np.ndarray:
    """pydicom's decoder for the syntax on a slice's pixel bytes: what ``Dataset.pixel_array`` runs, with the
    Image Pixel module given from the header values instead of a Dataset."""
    from pydicom.pixels import get_decoder

    pixels = header_bytes(ds, "PixelData")
    array, _meta = get_decoder(syntax).as_array(
        bytes(pixels) if isinstance(pixels, memoryview) else pixels,  # pydicom takes bytes, not views
        rows=rows,
        columns=cols,
        number_of_frames=1,
        samples_per_pixel=1,
        bits_allocated=bits,
        bits_stored=stored,
        pixel_representation=_int(ds, "PixelRepresentation", 0),
        photometric_interpretation=header_text(ds, "PhotometricInterpretation"),
    )
    return np.asarray(array).reshape(rows, cols)


def read_datasets(paths: Iterable[str | os.PathLike], *, pixels: bool = True) -> list[Dataset]:
    """Read several files (see :func:`read_dataset`)."""
    return [read_dataset(path, pixels=pixels) for path in paths]


def read_series(paths: Iterable[str | os.PathLike]) -> list[Header]:
    """Read the files of one series, pixels included, as :func:`read_dataset` would, but faster.

    Files the :class:`~onconet.data.slices.SeriesReader` handles come back as
    :class:`~onconet.data.slices.SliceHeader` objects (same header values, no pydicom Dataset per slice);
    the others go through :func:`read_dataset`, which also raises its named errors for them.

    Raises:
        NotDicomError: a file is not DICOM.
        UnreadableDicomError: a file is truncated or corrupt.
    """
    reader = SeriesReader(_READ_TAG_SET)
    return [_read_slice(reader, path) for path in paths]


def _read_slice(reader: SeriesReader, path: str | os.PathLike) -> Header:
    """One file of a series through ``reader``, or through :func:`read_dataset` when it declines."""
    try:
        header = reader.read(path)
    except OSError as err:
        raise UnreadableDicomError(f"{path}: cannot read ({err})") from err
    if header is None:
        return read_dataset(path, pixels=True)
    _check_pixel_length(header, path)
    return header


# ------------------------------------------------------------------------------------------ discovery


@dataclass
class SeriesRecord:
    """One series found by discovery (headers only)."""

    series_uid: str
    study_uid: str
    modality: str
    files: list[Path] = field(default_factory=list)
    frame_of_reference_uid: str = ""
    description: str = ""
    image_type: tuple[str, ...] = ()
    units: str = ""
    manufacturer: str = ""

    @property
    def is_original(self) -> bool:
        """ImageType starts with ORIGINAL (not a derived or re-sampled copy)."""
        return bool(self.image_type) and self.image_type[0].upper() == "ORIGINAL"


@dataclass
class StudyRecord:
    """One study: its identifying fields and its usable PET and CT series."""

    study_uid: str
    patient_id: str = ""
    study_date: str = ""  # ISO YYYY-MM-DD, empty when unknown
    study_time: str = ""
    site: str = ""
    manufacturer: str = ""
    series: list[SeriesRecord] = field(default_factory=list)

    @property
    def source_dir(self) -> Path:
        """The deepest folder holding every file of this study."""
        files = [str(f.parent) for s in self.series for f in s.files]
        return Path(os.path.commonpath(files)) if files else Path()

    def series_of(self, modality: str) -> list[SeriesRecord]:
        """This study's series of one modality (``PT`` or ``CT``)."""
        return [s for s in self.series if s.modality == modality]


@dataclass(frozen=True)
class Skipped:
    """Something discovery left out, and why (``path`` is a file, or a series UID for a whole series)."""

    path: str
    reason: str
    detail: str = ""


@dataclass
class Discovery:
    """What a folder tree holds: studies with PET/CT series, and everything skipped with a reason."""

    studies: dict[str, StudyRecord] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class InstanceHeader:
    """The discovery-relevant fields of one file (small and picklable, for worker processes)."""

    path: Path
    study_uid: str
    series_uid: str
    modality: str
    skip_reason: str | None
    frame_of_reference_uid: str
    image_type: tuple[str, ...]
    series_description: str
    units: str
    manufacturer: str
    institution: str
    patient_id: str
    study_date: str
    study_time: str


def iter_files(root: str | os.PathLike) -> list[Path]:
    """Every regular file under ``root`` (or ``root`` itself when it is a file), sorted, hidden ones too."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DicomError(f"{root}: no such folder; pass the folder that holds the DICOM export")
    found: list[Path] = []
    for folder, _dirs, names in os.walk(root):
        found.extend(Path(folder) / name for name in names)
    return sorted(found)


def series_skip_reason(ds: Header) -> str | None:
    """Why an instance's series is not a PET or CT image series (``None`` when it is one)."""
    sop = header_text(ds, "SOPClassUID")
    modality = header_text(ds, "Modality").upper()
    image_type = header_text(ds, "ImageType").upper().split("\\")
    if modality in ("RTSTRUCT", "REG", "SEG", "KO", "PR") or modality.startswith("RT"):
        return f"not an image series ({modality})"
    if modality == "SR" or sop.startswith(STRUCTURED_REPORT_PREFIX):
        return "structured report (SR)"
    if sop.startswith(SECONDARY_CAPTURE_PREFIX):
        return "secondary capture"
    if "LOCALIZER" in image_type or "SCOUT" in image_type:
        return "localizer/scout image"
    if modality not in ("PT", "CT"):
        return f"modality {modality or 'missing'} is not PET or CT"
    if sop and sop not in PET_SOP_CLASSES | CT_SOP_CLASSES:
        return f"{modality} object of SOP class {sop} is not a PET/CT image"
    if _int(ds, "NumberOfFrames", 1) > 1:
        return "multi-frame (enhanced) image; export as single-frame slices"
    return None


_MEDIA_SOP_CLASS = 0x00020002


def discovery_reader() -> SeriesReader:
    """A series reader for discovery (the header tags it reads and the media storage SOP class)."""
    return SeriesReader(_READ_TAG_SET | {_MEDIA_SOP_CLASS})


#: One reader per process for discovery: files come sorted by folder, so consecutive files are mostly
#: slices of one series and follow its learnt layout.
_DISCOVERY_READER = discovery_reader()


def read_instance_header(
    path: str | os.PathLike, reader: SeriesReader | None = None
) -> InstanceHeader | Skipped:
    """The discovery fields of one file, or why the file is skipped.

    ``reader``: a :func:`discovery_reader` that read this file's series so far (default: one per process).
    """
    return instance_header(path, read_discovery_slice(path, reader))


def read_discovery_slice(path: str | os.PathLike, reader: SeriesReader | None = None) -> SliceHeader | None:
    """``path`` as the discovery series reader reads it, or ``None`` when that reader cannot (not an image
    file it handles, or unreadable: :func:`instance_header` then asks the general reader, which names it)."""
    try:
        return (reader or _DISCOVERY_READER).read(path)
    except OSError:
        return None


def instance_header(path: str | os.PathLike, slice_header: SliceHeader | None) -> InstanceHeader | Skipped:
    """The discovery fields of the file at ``path`` from ``slice_header``, its :func:`read_discovery_slice`,
    or why the file is skipped (``None``: the file is read with the general reader)."""
    path = Path(path)
    ds: Header | None = slice_header
    try:
        if ds is None:  # not an image file the series reader handles: the general reader, as before
            ds = read_dataset(path, pixels=False, tags=_DISCOVERY_TAG_SET)
    except NotDicomError:
        return Skipped(str(path), "not a DICOM file")
    except UnreadableDicomError as err:
        return Skipped(str(path), "unreadable DICOM file (truncated or corrupt)", str(err))
    if type(ds) is SliceHeader:
        meta_sop = header_text(ds, _MEDIA_SOP_CLASS)
    else:
        meta_sop = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    if meta_sop == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        return Skipped(str(path), "DICOMDIR (directory index, not an image)")
    study_uid, series_uid = header_text(ds, "StudyInstanceUID"), header_text(ds, "SeriesInstanceUID")
    if not study_uid or not series_uid:
        return Skipped(str(path), "no StudyInstanceUID or SeriesInstanceUID")
    from onconet.data.dicom_datetime import parse_da

    date = parse_da(header_text(ds, "StudyDate")) or parse_da(header_text(ds, "SeriesDate"))
    return InstanceHeader(
        path=path,
        study_uid=study_uid,
        series_uid=series_uid,
        modality=header_text(ds, "Modality").upper(),
        skip_reason=series_skip_reason(ds),
        frame_of_reference_uid=header_text(ds, "FrameOfReferenceUID"),
        image_type=tuple(v for v in header_text(ds, "ImageType").split("\\") if v),
        series_description=header_text(ds, "SeriesDescription"),
        units=header_text(ds, "Units").upper(),
        manufacturer=header_text(ds, "Manufacturer"),
        institution=header_text(ds, "InstitutionName"),
        patient_id=header_text(ds, "PatientID"),
        study_date=date.isoformat() if date else "",
        study_time=header_text(ds, "StudyTime") or header_text(ds, "SeriesTime"),
    )


def discover(root: str | os.PathLike, *, workers: int = 1) -> Discovery:
    """Walk ``root`` and group every PET/CT image instance by study and series (headers only).

    Args:
        root: the folder tree (or a single file).
        workers: processes reading headers in parallel (1 reads in this process); each takes whole
            subtrees and hands back runs of a series' files (:mod:`onconet.data.discovery`).
    """
    from onconet.data.discovery import discover_tree

    return discover_tree(root, workers)


def group_headers(headers: Iterable[InstanceHeader | Skipped]) -> Discovery:
    """Instances grouped into studies and series; non-PET/CT series skipped with their reason."""
    from onconet.data.discovery import group_runs

    return group_runs((header, ()) for header in headers)


def group_by_series(datasets: Sequence[Header]) -> dict[str, list[Header]]:
    """Datasets grouped by SeriesInstanceUID, in first-seen order."""
    groups: dict[str, list[Header]] = defaultdict(list)
    for ds in datasets:
        groups[header_text(ds, "SeriesInstanceUID")].append(ds)
    return dict(groups)


# ------------------------------------------------------------------------------------------- assembly


@dataclass
class Volume:
    """A 3D image on the geometry contract: ``array[i, j, k]`` and ``affine`` (voxel -> RAS+ mm).

    ``datasets`` are the slice headers in k order (pixel data dropped): pydicom Datasets, or
    :class:`~onconet.data.slices.SliceHeader` objects (which answer the same questions) from
    :func:`read_series`.
    """

    array: np.ndarray
    affine: np.ndarray
    datasets: list[Header]
    series_uid: str
    frame_of_reference_uid: str
    modality: str

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def label(self) -> str:
        """How messages name this series."""
        return f"{self.modality} series {self.series_uid}"


LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _floats(ds: Header, keyword: str, count: int, label: str) -> np.ndarray:
    values = header_numbers(ds, keyword)
    if values is None or len(values) != count:
        raise SeriesGeometryError(
            f"{label}: {keyword} is missing or malformed ({header_text(ds, keyword)!r}) in {_name(ds)}"
        )
    return np.asarray(values, dtype=np.float64)


def _name(ds: Header) -> str:
    if getattr(ds, "filename", None):
        return str(ds.filename)
    return f"instance {header_text(ds, 'InstanceNumber') or '?'} ({header_text(ds, 'SOPInstanceUID') or '?'})"


def _series_label(datasets: Sequence[Header]) -> str:
    first = datasets[0]
    return f"{header_text(first, 'Modality') or '?'} series {header_text(first, 'SeriesInstanceUID') or '?'}"


def _drop_repeated_instances(datasets: Sequence[Header]) -> list[Header]:
    """The same instance exported twice (same SOPInstanceUID) is one slice, not a duplicate."""
    seen: dict[str, Header] = {}
    unique = []
    for ds in datasets:
        uid = header_text(ds, "SOPInstanceUID") or str(id(ds))
        if uid in seen:
            log.debug("instance %s appears twice (%s, %s); using one", uid, _name(seen[uid]), _name(ds))
            continue
        seen[uid] = ds
        unique.append(ds)
    return unique


def slice_geometry(datasets: Sequence[Header], label: str | None = None) -> tuple[list[Header], np.ndarray]:
    """Check one series' geometry and return its slices sorted along the normal, with the LPS affine.

    Raises:
        MixedSeriesError, MixedOrientationError, MixedFrameOfReferenceError, InconsistentSliceError,
        DuplicateSliceError, MissingSliceError, NonUniformSpacingError, GantryTiltError.
    """
    if not datasets:
        raise DicomError(f"{label or 'series'}: no instances")
    datasets = _drop_repeated_instances(datasets)
    label = label or _series_label(datasets)
    uids = {header_text(ds, "SeriesInstanceUID") for ds in datasets}
    if len(uids) > 1:
        raise MixedSeriesError(
            f"{label}: the files belong to {len(uids)} series ({sorted(uids)}); pass one series"
        )
    first = datasets[0]
    orientation = _floats(first, "ImageOrientationPatient", 6, label)
    spacing = _floats(first, "PixelSpacing", 2, label)
    size = (_int(first, "Rows"), _int(first, "Columns"))
    frames = {header_text(ds, "FrameOfReferenceUID") for ds in datasets}
    if len(frames) > 1:
        raise MixedFrameOfReferenceError(
            f"{label}: slices in {len(frames)} frames of reference {sorted(frames)}"
        )
    same = _raw_fields(first)
    for ds in datasets[1:]:
        if same is not None and _raw_fields(ds) == same:
            continue  # byte-identical fields parse to the same numbers: the checks below pass
        if (
            np.max(np.abs(_floats(ds, "ImageOrientationPatient", 6, label) - orientation))
            > ORIENTATION_TOLERANCE
        ):
            raise MixedOrientationError(
                f"{label}: {_name(ds)} has ImageOrientationPatient {list(ds.ImageOrientationPatient)}, "
                f"{_name(first)} has {list(first.ImageOrientationPatient)}; a series has one orientation"
            )
        if (_int(ds, "Rows"), _int(ds, "Columns")) != size or np.max(
            np.abs(_floats(ds, "PixelSpacing", 2, label) - spacing)
        ) > 1e-4:
            raise InconsistentSliceError(
                f"{label}: {_name(ds)} is {ds.Rows}x{ds.Columns} with PixelSpacing {list(ds.PixelSpacing)}, "
                f"{_name(first)} is {size[0]}x{size[1]} with {list(first.PixelSpacing)}"
            )
    row_cosine, col_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, col_cosine)
    positions = _positions(datasets, label)
    order = np.argsort(positions @ normal, kind="stable")
    datasets = [datasets[i] for i in order]
    positions = positions[order]
    along = positions @ normal
    step = _slice_step(datasets, positions, along, normal, float(min(spacing)), label)
    affine = np.eye(4)
    affine[:3, 0] = row_cosine * spacing[1]  # i = column index: moves along a row, by the column spacing
    affine[:3, 1] = col_cosine * spacing[0]  # j = row index
    affine[:3, 2] = step
    affine[:3, 3] = positions[0]
    return datasets, affine


def _positions(datasets: Sequence[Header], label: str) -> np.ndarray:
    """ImagePositionPatient of every slice as an ``(n, 3)`` array (one array, not one per slice)."""
    numbers = [header_numbers(ds, "ImagePositionPatient") for ds in datasets]
    if all(values is not None and len(values) == 3 for values in numbers):
        return np.array(numbers, dtype=np.float64)
    return np.stack([_floats(ds, "ImagePositionPatient", 3, label) for ds in datasets])  # names the bad one


_SHARED_FIELDS = ("ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")


def _raw_fields(ds: Header) -> tuple | None:
    """The raw bytes of the fields every slice of a series shares, or ``None`` if any is converted."""
    fields = tuple(header_bytes(ds, keyword) for keyword in _SHARED_FIELDS)
    return None if None in fields else fields


def _slice_step(
    datasets: Sequence[Header],
    positions: np.ndarray,
    along: np.ndarray,
    normal: np.ndarray,
    pixel: float,
    label: str,
) -> np.ndarray:
    """The vector from one slice to the next (mean over the stack), after the stack checks."""
    if len(datasets) == 1:
        first = datasets[0]
        thickness = (
            header_number(first, "SpacingBetweenSlices") or header_number(first, "SliceThickness") or 1.0
        )
        return normal * float(thickness)
    declared = _int(datasets[0], "NumberOfSlices", 0)  # PET: the slices the scanner reconstructed
    if declared and declared != len(datasets):
        raise MissingSliceError(
            f"{label}: {len(datasets)} slices found but NumberOfSlices (0054,0081) is {declared}: slices are "
            "missing; re-export the complete series"
        )
    gaps = np.diff(along)
    median = float(np.median(gaps))
    tolerance = max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_FRACTION * median)
    duplicates = np.flatnonzero(gaps < min(tolerance, 0.5 * median) if median > 0 else gaps < 1e-3)
    if len(duplicates) or median <= 0:
        k = int(duplicates[0]) if len(duplicates) else 0
        raise DuplicateSliceError(
            f"{label}: {_name(datasets[k])} and {_name(datasets[k + 1])} are both at {along[k]:.3f} mm along "
            f"the slice normal; remove the duplicate instance or split the series"
        )
    missing = np.flatnonzero(gaps > MISSING_SLICE_RATIO * median)
    if len(missing):
        k = int(missing[0])
        count = round(gaps[k] / median) - 1
        raise MissingSliceError(
            f"{label}: gap of {gaps[k]:.3f} mm between {_name(datasets[k])} ({along[k]:.3f} mm) and "
            f"{_name(datasets[k + 1])} ({along[k + 1]:.3f} mm), regular spacing {median:.3f} mm: "
            f"about {count} slice(s) missing ({len(missing)} gap(s) in all); re-export the complete series"
        )
    nominal = header_number(datasets[0], "SpacingBetweenSlices") or header_number(
        datasets[0], "SliceThickness"
    )
    if nominal and median > MISSING_SLICE_RATIO * nominal:
        raise MissingSliceError(
            f"{label}: slices are {median:.3f} mm apart but {nominal:.3f} mm thick "
            f"({len(datasets)} slices from {_name(datasets[0])}): slices are missing; "
            "re-export the complete series"
        )
    uneven = np.flatnonzero(np.abs(gaps - median) > tolerance)
    if len(uneven):
        k = int(uneven[0])
        raise NonUniformSpacingError(
            f"{label}: slice gap {gaps[k]:.3f} mm between {_name(datasets[k])} and {_name(datasets[k + 1])} "
            f"differs from the regular {median:.3f} mm by more than {tolerance:.3f} mm"
        )
    offsets = positions - positions[0]
    sideways = np.linalg.norm(offsets - np.outer(offsets @ normal, normal), axis=1)
    if sideways.max() > TILT_TOLERANCE_PIXELS * pixel:
        k = int(np.argmax(sideways))
        angle = np.degrees(np.arctan2(sideways[k], abs(along[k] - along[0])))
        raise GantryTiltError(
            f"{label}: slice positions move {sideways[k]:.2f} mm sideways over "
            f"{abs(along[k] - along[0]):.1f} mm (about {angle:.2f} degrees of gantry tilt or shear, at "
            f"{_name(datasets[k])}); resample the series to an untilted grid before ingestion"
        )
    return (positions[-1] - positions[0]) / (len(datasets) - 1)


def assemble_volume(datasets: Sequence[Header], label: str | None = None) -> Volume:
    """One series' instances (with pixel data) as a checked, rescaled float32 volume on the contract."""
    label = label or _series_label(datasets)
    ordered, affine_lps = slice_geometry(datasets, label)
    rows, cols = _int(ordered[0], "Rows"), _int(ordered[0], "Columns")
    stack = np.empty((len(ordered), rows, cols), dtype=np.float32)  # [k, row, col], C order
    for k, ds in enumerate(ordered):
        slope = header_number(ds, "RescaleSlope")
        slope = 1.0 if slope is None else slope
        intercept = header_number(ds, "RescaleIntercept") or 0.0
        np.multiply(pixel_matrix(ds), slope, out=stack[k], casting="unsafe")
        if intercept:
            stack[k] += intercept
        if type(ds) is SliceHeader:
            ds.drop_pixels()  # the headers stay with the volume, the pixel bytes need not
        elif "PixelData" in ds:
            del ds.PixelData
    first = ordered[0]
    return Volume(
        array=stack.T,  # [col, row, k] = [i, j, k]; a view, Fortran-contiguous
        affine=LPS_TO_RAS @ affine_lps,
        datasets=ordered,
        series_uid=header_text(first, "SeriesInstanceUID"),
        frame_of_reference_uid=header_text(first, "FrameOfReferenceUID"),
        modality=header_text(first, "Modality"),
    )


def load_series_datasets(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Header]:
    """Read every image instance of one series from a folder (or a list of files), pixels included.

    Non-DICOM files and non-image objects (RTSTRUCT, SR, ...) in the folder are ignored; instances of more
    than one image series raise :class:`MixedSeriesError`.
    """
    paths = iter_files(source) if isinstance(source, str | os.PathLike) else [Path(p) for p in source]
    datasets = []
    reader = SeriesReader(_READ_TAG_SET)
    for path in paths:
        try:
            ds = _read_slice(reader, path)
        except NotDicomError:
            continue
        if series_skip_reason(ds) is None:
            datasets.append(ds)
    where = str(source) if isinstance(source, str | os.PathLike) else f"{len(paths)} files"
    if not datasets:
        raise DicomError(f"{where}: no PET or CT image instances found")
    groups = group_by_series(datasets)
    if len(groups) > 1:
        summary = ", ".join(f"{uid} ({len(g)} files)" for uid, g in groups.items())
        raise MixedSeriesError(
            f"{where}: holds {len(groups)} image series: {summary}; pass one series' folder"
        )
    return datasets


def load_series(source: str | os.PathLike | Sequence[str | os.PathLike]) -> Volume:
    """A folder (or list of files) holding one PET or CT series as a rescaled :class:`Volume`."""
    return assemble_volume(load_series_datasets(source))
