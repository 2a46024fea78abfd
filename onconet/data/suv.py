"""PET stored values -> standardised uptake values, following the QIBA vendor-neutral pseudo-code.

The scale factor multiplies the value AFTER RescaleSlope/Intercept; there is one factor per slice because
some rules (DecayCorrection NONE, Philips factors) differ per slice, and the rules look across the whole
series (for example at the earliest acquisition time), so they take all of a series' datasets at once.

Kinds (``kind``):

- ``bw``: SUVbw, g/mL (weight);
- ``lbm_james``: SUL by James-128; ``lbm_janma``: SUL by Janmahasatian (g/mL);
- ``ibw``: SUV by ideal body weight (g/mL);
- ``bsa``: SUVbsa in cm²/mL (the DICOM unit CM2ML);
- ``bqml``: activity concentration decay-corrected to the injection time (Bq/mL), i.e. SUVbw·dose/weight.

Units: BQML (activity), CNTS (Philips: private SUV scale factor (7053,1000), else activity concentration
factor (7053,1009) to Bq/mL), GML (already an SUV, of the type SUVType names, BW by default) and CM2ML
(already SUVbsa). Anything else (PROPCPS, CPS, NONE...) raises :class:`UnsupportedUnitsError`.

Decay correction: START (decayed to the scan reference time: SeriesDate/Time, unless the series time is
after the earliest acquisition time: then GE's private scan datetime (0009,100D), else the QIBA back-computed
frame start (AcquisitionDateTime - FrameReferenceTime + mean-activity time of the frame), else the earliest
acquisition datetime), ADMIN (already decayed to the injection: no decay) and NONE (every slice decays from
the injection to the mean-activity time of its own frame).

Injection time: RadiopharmaceuticalStartDateTime, else RadiopharmaceuticalStartTime on the scan's date, a
day earlier when that would fall after the scan (injection before midnight, scan after).

Nothing is guessed silently: missing weight, dose, half-life, times, height or sex (when the kind needs
them) raise a named :class:`~onconet.errors.SuvError`; the two repairs this module does make (a dose written
in MBq instead of Bq; PatientSize written in cm instead of m) are logged and listed in ``notes``.

Example::

    suv = load_suv("export/PT_series")          # SUVbw
    suv.array.max(), suv.factors[:3]
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from onconet.data import body_size
from onconet.data.dicom import Volume, assemble_volume, load_series_datasets
from onconet.data.dicom_datetime import combine, parse_dt, parse_tm
from onconet.data.header import header_bytes, header_number, header_text
from onconet.data.slices import SliceHeader
from onconet.errors import SuvError

log = logging.getLogger(__name__)

SUV_KINDS: tuple[str, ...] = ("bw", "lbm_james", "lbm_janma", "bsa", "ibw", "bqml")
#: DICOM SUVType (0054,1006) -> kind
SUV_TYPE_TO_KIND = {
    "BW": "bw",
    "LBMJAMES128": "lbm_james",
    "LBMJANMA": "lbm_janma",
    "IBW": "ibw",
    "BSA": "bsa",
}
SUPPORTED_UNITS = ("BQML", "CNTS", "GML", "CM2ML")

PHILIPS_CREATOR = "Philips PET Private Group"
GE_PET_CREATOR = "GEMS_PETD_01"
#: A series time this close after the earliest acquisition time is not "after" it: TM values are often
#: written to whole seconds, so a series starting within the same second reads one second late.
SERIES_AFTER_ACQUISITION_TOLERANCE = dt.timedelta(seconds=1)
#: An injection time this close after the scan time is rounding (dynamic series start at the injection).
INJECTION_AFTER_SCAN_TOLERANCE = dt.timedelta(seconds=60)
#: A dose below this many Bq is not a PET injection in Bq; it is in MBq (a common export mistake).
DOSE_MBQ_THRESHOLD = 1e5


# --------------------------------------------------------------------------------------------- errors


class UnsupportedUnitsError(SuvError):
    """The PET Units (0054,1001) cannot be converted to SUV (e.g. PROPCPS)."""


class UncorrectedImageError(SuvError):
    """The PET is not attenuation- and decay-corrected (CorrectedImage lacks ATTN or DECY)."""


class MissingWeightError(SuvError):
    """PatientWeight (0010,1030) is missing or not positive."""


class MissingDoseError(SuvError):
    """RadionuclideTotalDose (0018,1074) is missing or not positive."""


class MissingTimingError(SuvError):
    """An injection, scan or half-life time needed for the decay correction is missing or inconsistent."""


class MissingBodySizeError(SuvError):
    """PatientSize or PatientSex, needed by the requested SUV kind, is missing."""


class InconsistentSeriesHeaderError(SuvError):
    """A field that must be the same for the whole series differs between slices."""


# ------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SuvConversion:
    """How one series' stored values became SUV: the per-slice factors and what they rest on."""

    kind: str
    units: str
    decay_correction: str
    factors: np.ndarray
    decay_seconds: np.ndarray | None = None
    notes: tuple[str, ...] = ()


@dataclass
class SuvVolume:
    """An SUV image on the geometry contract plus the per-slice scale factors (in k order) used."""

    array: np.ndarray
    affine: np.ndarray
    factors: np.ndarray
    kind: str
    conversion: SuvConversion
    volume: Volume = field(repr=False)

    @property
    def series_uid(self) -> str:
        """The PET SeriesInstanceUID."""
        return self.volume.series_uid


# ------------------------------------------------------------------------------------- header access


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return "" if value is None else str(value).strip().strip("\x00").strip()


def _number(value: object) -> float | None:
    """A finite float from a DS/IS/FD value (or UN bytes), else ``None``."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        number = float(_text(value)) if isinstance(value, str | bytes) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def private_value(ds: Dataset, group: int, offset: int, creator: str) -> object | None:
    """A private element by its creator; ``None`` if absent.

    A block whose creator element is missing entirely is read at the default slot 0x10 (some exports and the
    IBSI reference objects write the element without its creator); a block reserved by another creator is
    never read.
    """
    creators = {
        tag & 0xFF: _text(ds[tag].value)
        for tag in ds.keys()  # noqa: SIM118 - Dataset iteration yields elements, not tags
        if tag >> 16 == group and 0x10 <= (tag & 0xFFFF) <= 0xFF
    }
    slots = [slot for slot, name in creators.items() if name.upper() == creator.upper()]
    if not creators:
        slots = [0x10]
    for slot in slots:
        tag = (group, (slot << 8) | offset)
        if tag in ds and ds[tag].value not in (None, b"", ""):
            return ds[tag].value
    return None


SPECIFIC_CHARACTER_SET = 0x00080005


def _raw_private_group(ds: Dataset, group: int) -> tuple | None:
    """What :func:`private_value` reads of a slice read by the series reader, as raw bytes: the elements
    of ``group``, the character set and the transfer syntax (``None`` for other datasets)."""
    if type(ds) is not SliceHeader:
        return None
    values = ds.values
    elements = tuple(
        (tag, vr, bytes(value)) for tag, (vr, value) in sorted(values.items()) if tag >> 16 == group
    )
    charset = values.get(SPECIFIC_CHARACTER_SET)
    return elements, None if charset is None else (charset[0], bytes(charset[1])), ds.transfer_syntax


def private_values(datasets: Sequence[Dataset], group: int, offset: int, creator: str) -> list[object | None]:
    """:func:`private_value` of every dataset; slices whose raw ``group`` elements are byte-equal share one
    lookup (a Philips series repeats its scale factors on every slice: one Dataset instead of one per
    slice)."""
    found: dict[tuple, object | None] = {}
    values = []
    for ds in datasets:
        key = _raw_private_group(ds, group)
        if key is None:
            values.append(private_value(ds, group, offset, creator))
            continue
        if key not in found:
            found[key] = private_value(ds, group, offset, creator)
        values.append(found[key])
    return values


def _radiopharmaceutical(ds: Dataset) -> Dataset:
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    return sequence[0] if sequence else Dataset()


def _check_one_radiopharmaceutical(datasets: Sequence[Dataset], label: str) -> None:
    """Every slice names the same injection (compared raw, so the sequence is parsed once per variant)."""
    variants: dict[bytes | int, Dataset] = {}
    for ds in datasets:
        raw = header_bytes(ds, "RadiopharmaceuticalInformationSequence")
        variants.setdefault(raw if raw is not None else id(ds), ds)  # already parsed: compare each
    if len(variants) == 1:
        return
    items = [_radiopharmaceutical(ds) for ds in variants.values()]
    for keyword in ("RadionuclideTotalDose", "RadionuclideHalfLife"):
        _same_for_series(items, lambda item, k=keyword: header_number(item, k), keyword, label)
    for keyword in ("RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime"):
        _same_for_series(items, lambda item, k=keyword: header_text(item, k) or None, keyword, label)


def _series_label(datasets: Sequence[Dataset]) -> str:
    first = datasets[0]
    name = getattr(first, "filename", None)
    where = f" ({Path(name).parent})" if name else ""
    return f"PET series {header_text(first, 'SeriesInstanceUID') or '?'}{where}"


def _same_for_series(datasets: Sequence[Dataset], getter, what: str, label: str):
    values = [getter(ds) for ds in datasets]
    distinct = {v for v in values if v is not None}
    if len(distinct) > 1:
        raise InconsistentSeriesHeaderError(
            f"{label}: {what} differs between slices ({sorted(map(str, distinct))})"
        )
    return values[0]


# ------------------------------------------------------------------------------------------ the body


@dataclass(frozen=True)
class _Body:
    weight_kg: float | None
    height_m: float | None
    sex: str
    label: str

    def weight(self) -> float:
        if self.weight_kg is None or self.weight_kg <= 0:
            raise MissingWeightError(
                f"{self.label}: PatientWeight (0010,1030) is missing or zero; "
                "SUV needs the patient's weight in kg"
            )
        return self.weight_kg

    def height(self, kind: str) -> float:
        if self.height_m is None or self.height_m <= 0:
            raise MissingBodySizeError(
                f"{self.label}: PatientSize (0010,1020) is missing; SUV kind {kind!r} needs height"
            )
        return self.height_m

    def checked_sex(self, kind: str) -> str:
        if self.sex.upper() not in ("M", "F", "W", "O", "U"):
            raise MissingBodySizeError(
                f"{self.label}: PatientSex (0010,0040) is {self.sex!r}; SUV kind {kind!r} needs M, F or O"
            )
        return self.sex

    def normaliser(self, kind: str) -> float:
        """What the activity is normalised by: g for the mass kinds, cm² for bsa."""
        if kind == "bw":
            return 1000.0 * self.weight()
        if kind == "lbm_james":
            return 1000.0 * body_size.lbm_james(self.weight(), self.height(kind), self.checked_sex(kind))
        if kind == "lbm_janma":
            return 1000.0 * body_size.lbm_janmahasatian(
                self.weight(), self.height(kind), self.checked_sex(kind)
            )
        if kind == "ibw":
            return 1000.0 * body_size.ideal_body_weight(self.height(kind), self.checked_sex(kind))
        if kind == "bsa":
            return 1e4 * body_size.bsa_du_bois(self.weight(), self.height(kind))
        raise SuvError(f"unknown SUV kind {kind!r}; use one of {SUV_KINDS}")


def _body(first: Dataset, label: str, notes: list[str]) -> _Body:
    height = header_number(first, "PatientSize")
    if height is not None and height > 3.0:  # written in cm; nobody is 3 m tall
        notes.append(f"PatientSize {height} read as cm")
        log.warning("%s: PatientSize %s looks like cm, using %.2f m", label, height, height / 100.0)
        height /= 100.0
    return _Body(header_number(first, "PatientWeight"), height, header_text(first, "PatientSex"), label)


# ---------------------------------------------------------------------------------------- the times


def frame_mean_activity_time(duration_s: float, half_life_s: float) -> float:
    """Seconds from a frame's start to the time at which its decaying activity equals its frame average.

    >>> round(frame_mean_activity_time(603.0, 6586.2), 1)
    299.9
    """
    if duration_s <= 0:
        return 0.0
    decay = math.log(2.0) / half_life_s
    x = decay * duration_s
    return math.log(x / -math.expm1(-x)) / decay


def _acquisition_datetimes(datasets: Sequence[Dataset]) -> list[dt.datetime | None]:
    return [
        combine(
            header_text(ds, "AcquisitionDate") or header_text(ds, "SeriesDate"),
            header_text(ds, "AcquisitionTime"),
        )
        for ds in datasets
    ]


def scan_reference_time(
    datasets: Sequence[Dataset], half_life_s: float, label: str, notes: list[str]
) -> dt.datetime:
    """The time START-decay-corrected values refer to (QIBA: series time unless it is after acquisition)."""
    first = datasets[0]
    series = combine(header_text(first, "SeriesDate"), header_text(first, "SeriesTime"))
    acquisitions = _acquisition_datetimes(datasets)
    known = [a for a in acquisitions if a is not None]
    earliest = min(known) if known else None
    if series is not None and (earliest is None or series <= earliest + SERIES_AFTER_ACQUISITION_TOLERANCE):
        return series
    if series is None and earliest is None:
        raise MissingTimingError(
            f"{label}: SeriesDate/SeriesTime and AcquisitionDate/AcquisitionTime are missing"
        )
    # The series time is after the acquisition: a post-processed series whose series time is its creation.
    ge_scan = parse_dt(private_value(first, 0x0009, 0x0D, GE_PET_CREATOR))
    if ge_scan is not None:
        notes.append("scan time from GE private scan datetime (0009,100D)")
        return ge_scan
    back_computed = _frame_start_times(datasets, acquisitions, half_life_s)
    if back_computed is not None:
        notes.append("scan time back-computed from AcquisitionTime, FrameReferenceTime, ActualFrameDuration")
        return back_computed
    notes.append("scan time = earliest AcquisitionDate/Time (series time is after it)")
    assert earliest is not None
    return earliest


def _frame_start_times(
    datasets: Sequence[Dataset], acquisitions: list[dt.datetime | None], half_life_s: float
) -> dt.datetime | None:
    """QIBA's back-computation for series re-timed after the scan (Siemens): one time all slices agree on."""
    starts = []
    for ds, acquired in zip(datasets, acquisitions, strict=True):
        reference_ms = header_number(ds, "FrameReferenceTime")
        duration_ms = header_number(ds, "ActualFrameDuration")
        if acquired is None or not reference_ms or not duration_ms or reference_ms <= 0 or duration_ms <= 0:
            return None
        mean_time = frame_mean_activity_time(duration_ms / 1000.0, half_life_s)
        starts.append(acquired + dt.timedelta(seconds=mean_time - reference_ms / 1000.0))
    spread = (max(starts) - min(starts)).total_seconds()
    if spread > 60.0:  # the slices do not share one reference: the frame timing is not this rule's kind
        return None
    return min(starts) + (max(starts) - min(starts)) / 2


def injection_time(radiopharmaceutical: Dataset, scan: dt.datetime, label: str) -> dt.datetime:
    """The injection datetime (start datetime, else start time on the scan's date, a day back if after it)."""
    start = parse_dt(header_text(radiopharmaceutical, "RadiopharmaceuticalStartDateTime"))
    if start is not None:
        return start
    time = parse_tm(header_text(radiopharmaceutical, "RadiopharmaceuticalStartTime"))
    if time is None:
        raise MissingTimingError(
            f"{label}: RadiopharmaceuticalStartDateTime (0018,1078) and RadiopharmaceuticalStartTime "
            "(0018,1072) are missing; the injection time is needed for the decay correction"
        )
    start = dt.datetime.combine(scan.date(), time)
    if start > scan + INJECTION_AFTER_SCAN_TOLERANCE:
        start -= dt.timedelta(days=1)  # injected before midnight, scanned after
    return start


# -------------------------------------------------------------------------------------- the factors


def _total_dose(radiopharmaceutical: Dataset, label: str, notes: list[str]) -> float:
    dose = header_number(radiopharmaceutical, "RadionuclideTotalDose")
    if dose is None or dose <= 0:
        raise MissingDoseError(
            f"{label}: RadionuclideTotalDose (0018,1074) in RadiopharmaceuticalInformationSequence is "
            "missing or zero; SUV needs the injected activity in Bq"
        )
    if dose < DOSE_MBQ_THRESHOLD:
        notes.append(f"RadionuclideTotalDose {dose:g} read as MBq")
        log.warning("%s: RadionuclideTotalDose %g is too small for Bq; reading it as MBq", label, dose)
        dose *= 1e6
    return dose


def _half_life(radiopharmaceutical: Dataset, label: str) -> float:
    half_life = header_number(radiopharmaceutical, "RadionuclideHalfLife")
    if half_life is None or half_life <= 0:
        raise MissingTimingError(
            f"{label}: RadionuclideHalfLife (0018,1075) is missing; needed for decay correction"
        )
    return half_life


def _decayed_dose(datasets: Sequence[Dataset], label: str, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice (decayed dose in Bq at the time the values refer to, seconds of decay)."""
    first = datasets[0]
    radiopharmaceutical = _radiopharmaceutical(first)
    _check_one_radiopharmaceutical(datasets, label)
    total = _total_dose(radiopharmaceutical, label, notes)
    correction = header_text(first, "DecayCorrection").upper()
    if correction == "ADMIN":
        return np.full(len(datasets), total), np.zeros(len(datasets))
    half_life = _half_life(radiopharmaceutical, label)
    if correction == "START":
        scan = scan_reference_time(datasets, half_life, label, notes)
        seconds = np.full(len(datasets), _decay_seconds(radiopharmaceutical, scan, label))
    elif correction == "NONE":
        seconds = _uncorrected_decay_seconds(datasets, radiopharmaceutical, half_life, label, notes)
    else:
        raise MissingTimingError(
            f"{label}: DecayCorrection (0054,1102) is {correction or 'missing'!r}; "
            "expected START, ADMIN or NONE"
        )
    return total * np.exp2(-seconds / half_life), seconds


def _decay_seconds(radiopharmaceutical: Dataset, scan: dt.datetime, label: str) -> float:
    seconds = (scan - injection_time(radiopharmaceutical, scan, label)).total_seconds()
    if seconds < -INJECTION_AFTER_SCAN_TOLERANCE.total_seconds():
        raise MissingTimingError(
            f"{label}: the injection time is {-seconds:.0f} s after the scan time; check both"
        )
    return seconds


def _uncorrected_decay_seconds(
    datasets: Sequence[Dataset], radiopharmaceutical: Dataset, half_life: float, label: str, notes: list[str]
) -> np.ndarray:
    """DecayCorrection NONE: each slice decays until the mean-activity time of its own frame."""
    acquisitions = _acquisition_datetimes(datasets)
    if any(a is None for a in acquisitions):
        raise MissingTimingError(
            f"{label}: DecayCorrection NONE needs AcquisitionDate/AcquisitionTime on every slice"
        )
    references = []
    for ds, acquired in zip(datasets, acquisitions, strict=True):
        duration_ms = header_number(ds, "ActualFrameDuration")
        if duration_ms is None:
            notes.append("ActualFrameDuration missing: decay to acquisition start")
            duration_ms = 0.0
        references.append(
            acquired + dt.timedelta(seconds=frame_mean_activity_time(duration_ms / 1000.0, half_life))
        )
    injection = injection_time(radiopharmaceutical, min(references), label)
    seconds = np.array([(r - injection).total_seconds() for r in references])
    if seconds.min() < -INJECTION_AFTER_SCAN_TOLERANCE.total_seconds():
        raise MissingTimingError(
            f"{label}: the injection time is after the acquisition of some slices; check both"
        )
    return seconds


def _check_corrections(first: Dataset, decay_correction: str, label: str) -> None:
    corrections = {v.strip().upper() for v in header_text(first, "CorrectedImage").split("\\") if v.strip()}
    needed = {"ATTN"} if decay_correction == "NONE" else {"ATTN", "DECY"}
    if not corrections:
        raise UncorrectedImageError(
            f"{label}: CorrectedImage (0028,0051) is missing; cannot confirm attenuation and decay correction"
        )
    if not needed <= corrections:
        raise UncorrectedImageError(
            f"{label}: CorrectedImage {sorted(corrections)} lacks {sorted(needed - corrections)}; "
            "SUV needs an attenuation- and decay-corrected PET"
        )


def suv_conversion(
    datasets: Sequence[Dataset], kind: str = "bw", *, label: str | None = None
) -> SuvConversion:
    """The per-slice SUV scale factors of one PET series (one per dataset, in the given order), with details.

    Raises:
        UnsupportedUnitsError, UncorrectedImageError, MissingWeightError, MissingDoseError,
        MissingTimingError, MissingBodySizeError, InconsistentSeriesHeaderError.
    """
    if kind not in SUV_KINDS:
        raise SuvError(f"unknown SUV kind {kind!r}; use one of {', '.join(SUV_KINDS)}")
    if not datasets:
        raise SuvError("no PET datasets given")
    label = label or _series_label(datasets)
    first = datasets[0]
    notes: list[str] = []
    units = _same_for_series(datasets, lambda d: header_text(d, "Units").upper(), "Units", label)
    decay_correction = header_text(first, "DecayCorrection").upper()
    _same_for_series(datasets, lambda d: header_number(d, "PatientWeight"), "PatientWeight", label)
    if units not in SUPPORTED_UNITS:
        raise UnsupportedUnitsError(
            f"{label}: Units (0054,1001) {units or 'missing'!r} cannot be converted to SUV; supported: "
            f"{', '.join(SUPPORTED_UNITS)} (reconstruct or export the PET in Bq/mL)"
        )
    _check_corrections(first, decay_correction, label)
    body = _body(first, label, notes)

    stored_kind, scale = None, np.ones(len(datasets))  # stored_kind None: values are activity (Bq/mL)
    if units == "GML":
        suv_type = header_text(first, "SUVType").upper() or "BW"
        if suv_type not in SUV_TYPE_TO_KIND or suv_type == "BSA":
            raise UnsupportedUnitsError(
                f"{label}: Units GML with SUVType {suv_type!r} is not a known SUV type"
            )
        stored_kind = SUV_TYPE_TO_KIND[suv_type]
    elif units == "CM2ML":
        stored_kind = "bsa"
    elif units == "CNTS":
        suv_factors = [_number(v) for v in private_values(datasets, 0x7053, 0x00, PHILIPS_CREATOR)]
        activity_factors = [_number(v) for v in private_values(datasets, 0x7053, 0x09, PHILIPS_CREATOR)]
        if all(f is not None and f > 0 for f in suv_factors):
            stored_kind, scale = "bw", np.asarray(suv_factors, dtype=np.float64)
            notes.append("Philips SUV scale factor (7053,1000)")
        elif all(f is not None and f > 0 for f in activity_factors):
            scale = np.asarray(activity_factors, dtype=np.float64)
            notes.append("Philips activity concentration scale factor (7053,1009)")
        else:
            raise UnsupportedUnitsError(
                f"{label}: Units CNTS without the Philips SUV scale factor (7053,1000) or activity "
                "concentration scale factor (7053,1009) on every slice; counts cannot be converted to SUV"
            )

    decay_seconds = None
    if stored_kind is not None:  # already an SUV of stored_kind: re-normalise
        if kind == stored_kind:
            factors = scale
        elif kind == "bqml":
            dose = _total_dose(_radiopharmaceutical(first), label, notes)
            factors = scale * dose / body.normaliser(stored_kind)
        else:
            factors = scale * body.normaliser(kind) / body.normaliser(stored_kind)
    else:
        decayed, decay_seconds = _decayed_dose(datasets, label, notes)
        numerator = (
            _total_dose(_radiopharmaceutical(first), label, []) if kind == "bqml" else body.normaliser(kind)
        )
        factors = scale * numerator / decayed
    return SuvConversion(
        kind=kind,
        units=units,
        decay_correction=decay_correction,
        factors=np.asarray(factors, dtype=np.float64),
        decay_seconds=decay_seconds,
        notes=tuple(dict.fromkeys(notes)),
    )


def suv_scale_factors(datasets: Sequence[Dataset], kind: str = "bw") -> np.ndarray:
    """One SUV scale factor per pydicom Dataset of a PET series (multiply the rescaled stored value).

    The QIBA rules look across the series (earliest acquisition time, per-slice frame times), so pass all of
    the series' datasets at once.
    """
    return suv_conversion(datasets, kind).factors


def suv_from_volume(volume: Volume, kind: str = "bw") -> SuvVolume:
    """Convert an assembled PET :class:`Volume` (rescaled stored values) to SUV."""
    if volume.modality != "PT":
        raise SuvError(f"{volume.label}: Modality is {volume.modality!r}, not PT; SUV needs a PET series")
    conversion = suv_conversion(volume.datasets, kind, label=volume.label)
    array = volume.array * conversion.factors.astype(np.float32)[None, None, :]
    return SuvVolume(array=array, affine=volume.affine, factors=conversion.factors, kind=kind,
                     conversion=conversion, volume=volume)  # fmt: skip


def load_suv(series_dir: str | os.PathLike, kind: str = "bw") -> SuvVolume:
    """Read one PET series folder into an SUV volume on the geometry contract.

    Args:
        series_dir: a folder holding one PET series (other non-image files are ignored).
        kind: one of :data:`SUV_KINDS`.

    Returns:
        :class:`SuvVolume` with ``array`` (float32, ``[i, j, k]``), ``affine`` (RAS+ mm) and ``factors``
        (per slice, in k order).
    """
    datasets = load_series_datasets(series_dir)
    return suv_from_volume(assemble_volume(datasets), kind)
