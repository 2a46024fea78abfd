"""One discovered PET/CT study -> SUV and CT-on-PET volumes (cached as NIfTI, or kept in memory) plus its
manifest row.

:func:`process_study` never raises for a bad study: it returns the manifest row with ``status`` ``error`` and
the error's class and message, so a batch goes on. It is a plain top-level function of picklable arguments,
so a process pool can run it. Without a cache folder (``onconet infer``'s default) nothing is written: the
outcome carries the volumes themselves, which saves the gzip NIfTI write and read of the hand-over.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onconet.data.cache import cached_row, save_record, series_paths, source_fingerprint, write_nifti
from onconet.data.dicom import (
    MissingSeriesError,
    MixedFrameOfReferenceError,
    SeriesRecord,
    StudyRecord,
    assemble_volume,
    read_series,
)
from onconet.data.resample import resample_ct_to_pet
from onconet.data.suv import suv_from_volume
from onconet.errors import OncoNetError

log = logging.getLogger(__name__)

#: Fewer slices than this are not a whole-body or regional volume (a single test slice, a fragment).
MIN_SLICES = 3
#: PET units whose series is the scanner's own reconstruction rather than a re-scaled copy.
ACTIVITY_UNITS = ("BQML", "CNTS")


@dataclass(frozen=True)
class StudyVolumes:
    """A converted study in memory: SUV and CT (HU, on the PET grid) on one RAS+ ``affine``."""

    suv: np.ndarray
    ct: np.ndarray
    affine: np.ndarray


@dataclass(frozen=True)
class StudyOutcome:
    """A study's manifest row, whether it came from the cache unchanged, and the volumes when kept."""

    row: dict
    from_cache: bool = False
    volumes: StudyVolumes | None = None

    @property
    def ok(self) -> bool:
        """The study was converted (or found cached)."""
        return self.row.get("status") == "ok"

    @property
    def reason(self) -> str:
        """The error class name for a failed study (the batch summary groups failures by it)."""
        return str(self.row.get("error", "")).split(":", 1)[0]


def choose_series(study: StudyRecord) -> tuple[SeriesRecord, SeriesRecord]:
    """The study's PET series and the CT series that goes with it.

    PET: original reconstructions before derived copies, activity units (BQML, CNTS) before pre-computed SUV,
    then the most slices. CT: of the PET's frame of reference, original first, then the most slices.

    Raises:
        MissingSeriesError: no PET or no CT image series of at least :data:`MIN_SLICES` slices.
        MixedFrameOfReferenceError: CT series exist but none shares the PET's frame of reference.
    """
    where = f"study {study.study_uid} ({study.source_dir})"
    pets = [s for s in study.series_of("PT") if len(s.files) >= MIN_SLICES]
    if not pets:
        raise MissingSeriesError(f"{where}: no PET image series of {MIN_SLICES} or more slices")
    pet = max(pets, key=lambda s: (s.is_original, s.units in ACTIVITY_UNITS, len(s.files), s.series_uid))
    cts = [s for s in study.series_of("CT") if len(s.files) >= MIN_SLICES]
    if not cts:
        raise MissingSeriesError(f"{where}: no CT image series of {MIN_SLICES} or more slices")
    same_frame = [
        s
        for s in cts
        if not pet.frame_of_reference_uid or s.frame_of_reference_uid == pet.frame_of_reference_uid
    ]
    if not same_frame:
        frames = sorted({s.frame_of_reference_uid for s in cts})
        raise MixedFrameOfReferenceError(
            f"{where}: the PET is in frame of reference {pet.frame_of_reference_uid}, "
            f"the CT series in {frames}"
        )
    ct = max(same_frame, key=lambda s: (s.is_original, len(s.files), s.series_uid))
    return pet, ct


def _base_row(study: StudyRecord, suv_kind: str) -> dict:
    return {
        "patient_id": study.patient_id,
        "study_uid": study.study_uid,
        "study_date": study.study_date,
        "study_time": study.study_time,  # not a manifest column; orders same-day studies when pairing
        "site": study.site,
        "manufacturer": study.manufacturer,
        "suv_kind": suv_kind,
        "source_dir": str(study.source_dir),
        "status": "error",
        "error": "",
    }


def _format(values) -> str:
    return "x".join(f"{float(v):.6g}" for v in values)


def process_study(
    study: StudyRecord,
    cache_dir: str | os.PathLike | None,
    suv_kind: str = "bw",
    *,
    keep_volumes: bool = False,
) -> StudyOutcome:
    """Convert (or find cached) one study; the outcome's row is its manifest row.

    Args:
        study: the discovered study.
        cache_dir: the NIfTI cache; ``None`` writes nothing and keeps the volumes in the outcome.
        suv_kind: SUV normalisation (see :mod:`onconet.data.suv`).
        keep_volumes: also keep the volumes of a study converted now (a cached one is not read back).
    """
    row = _base_row(study, suv_kind)
    try:
        pet, ct = choose_series(study)
        row.update(pet_series_uid=pet.series_uid, ct_series_uid=ct.series_uid)
        if cache_dir is not None:
            cache_dir = Path(cache_dir)
            fingerprint = source_fingerprint([*pet.files, *ct.files], suv_kind)
            cached = cached_row(cache_dir, pet.series_uid, fingerprint)
            if cached is not None:
                return StudyOutcome({**row, **cached, "source_dir": row["source_dir"]}, from_cache=True)
        suv = suv_from_volume(assemble_volume(read_series(pet.files)), suv_kind)
        ct_volume = assemble_volume(read_series(ct.files))
        ct_on_pet = resample_ct_to_pet(
            ct_volume, suv.affine, suv.array.shape, suv.volume.frame_of_reference_uid
        )
        row.update(
            suv_factor_min=f"{suv.factors.min():.9g}",
            suv_factor_max=f"{suv.factors.max():.9g}",
            spacing=_format(suv.volume.spacing),
            shape="x".join(str(n) for n in suv.array.shape),
            status="ok",
            error="",
        )
        if cache_dir is not None:
            pet_path, ct_path = series_paths(pet.series_uid)
            write_nifti(cache_dir / pet_path, suv.array, suv.affine)
            write_nifti(cache_dir / ct_path, ct_on_pet, suv.affine)
            row.update(pet_path=pet_path, ct_path=ct_path)
            save_record(cache_dir, pet.series_uid, fingerprint, row)
        for note in suv.conversion.notes:
            log.debug("%s: %s", study.source_dir, note)
        keep = keep_volumes or cache_dir is None
        volumes = StudyVolumes(suv.array, ct_on_pet, suv.affine) if keep else None
        return StudyOutcome(row, volumes=volumes)
    except OncoNetError as err:
        row["error"] = f"{type(err).__name__}: {err}"
    except Exception as err:  # a bad study must not stop the batch; say it was unexpected
        log.debug("unexpected error in %s", study.source_dir, exc_info=True)
        row["error"] = f"{type(err).__name__}: unexpected error: {err}"
    log.warning("study in %s failed: %s", study.source_dir, row["error"])
    return StudyOutcome(row)
