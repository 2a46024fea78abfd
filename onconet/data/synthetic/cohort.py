"""``generate_cohort``: the whole synthetic cohort (DICOM, reports, truth tables) in one folder.

Layout of ``out_dir`` (see the data contracts in the design):

- ``dicom/<patient_id>/<study>/<series>/*.dcm``  PET and CT series of each exam
- ``reports.jsonl``   one report per exam
- ``truth.csv``       one row per exam pair (true hottest-lesion SUVmax, reference, category, label)
- ``lesions.csv``     one row per lesion per exam
- ``exams.csv``       one row per exam (site, series UIDs, dose, weight, reference-region values)
- ``mentions.jsonl``  every SUV value a report writes, with its span and the true value it measures
- ``cohort.json``     the generator's parameters and its declared report noise
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from onconet import __version__
from onconet.classes import response_class
from onconet.data.synthetic import response as plan
from onconet.data.synthetic.patient import PatientRecord, patient_id, simulate_patient
from onconet.data.synthetic.reports import REPORT_NOISE, ExamView, LesionView, write_report
from onconet.data.synthetic.sites import SITES, check_size, get_site
from onconet.errors import ConfigError

TRUTH_COLUMNS = (
    "patient_id", "site", "baseline_study_uid", "followup_study_uid", "baseline_date", "followup_date",
    "baseline_suvmax", "followup_suvmax", "reference_suv", "new_lesion", "category", "label",
)  # fmt: skip
LESION_COLUMNS = (
    "patient_id", "study_uid", "timepoint", "lesion_id", "site_name", "x_mm", "y_mm", "z_mm",
    "diameter_mm", "suvmax_true", "suvmax_reported", "is_new",
)  # fmt: skip
EXAM_COLUMNS = (
    "patient_id", "study_uid", "timepoint", "study_date", "site", "manufacturer", "units", "pet_series_uid",
    "ct_series_uid", "weight_kg", "dose_mbq", "uptake_min", "liver_suvmean", "liver_suvmax",
    "blood_pool_suvmean", "brain_suvmax", "bladder_suvmax", "image_suvmax", "diagnosis", "near_threshold",
)  # fmt: skip


@dataclass(frozen=True)
class CohortPaths:
    """Where a generated cohort's parts lie."""

    root: Path
    dicom_dir: Path
    reports: Path
    truth: Path
    lesions: Path
    exams: Path = field(default=Path())
    mentions: Path = field(default=Path())
    config: Path = field(default=Path())

    @classmethod
    def of(cls, out_dir: Path) -> CohortPaths:
        """The paths of the cohort in ``out_dir`` (whether or not it exists yet)."""
        out_dir = Path(out_dir)
        return cls(
            root=out_dir,
            dicom_dir=out_dir / "dicom",
            reports=out_dir / "reports.jsonl",
            truth=out_dir / "truth.csv",
            lesions=out_dir / "lesions.csv",
            exams=out_dir / "exams.csv",
            mentions=out_dir / "mentions.jsonl",
            config=out_dir / "cohort.json",
        )


def _round(value: float, digits: int = 6) -> float:
    return float(round(value, digits))


def _exam_views(rec: PatientRecord) -> list[ExamView]:
    views = []
    base = rec.exams[0]
    for exam in rec.exams:
        tp = exam.timepoint
        lesions = []
        for les in rec.lesions:
            if tp == "baseline" and les.is_new:
                continue
            lesions.append(
                LesionView(
                    lesion_id=les.lesion_id,
                    site=les.site.name,
                    region=les.site.region,
                    kind=les.site.kind,
                    mirror=les.site.mirror,
                    diameter_mm=les.diameter.get(tp, 0.0),
                    suvmax=rec.truth[tp].get(les.lesion_id, 0.0),
                    prior_suvmax=rec.truth["baseline"].get(les.lesion_id, 0.0) if tp == "followup" else 0.0,
                    prior_text="",
                    image_number=rec.image_numbers[tp].get(les.lesion_id, 0),
                    is_new=les.is_new,
                    contralateral=rec.contralateral[tp].get(les.lesion_id, 0.0),
                )
            )
        views.append(
            ExamView(
                patient_id=rec.patient_id,
                study_uid=exam.study_uid,
                timepoint=tp,
                study_date=exam.ct_series_time.date(),
                prior_date=base.ct_series_time.date() if tp == "followup" else None,
                indication=rec.diagnosis.indication,
                lymphoma=rec.diagnosis.lymphoma,
                sex=rec.sex,
                weight_kg=exam.weight_kg,
                dose_mbq=exam.dose_bq / 1e6,
                uptake_min=round((exam.acquisition_start - exam.injection).total_seconds() / 60),
                pet_series_number=rec.pet_series_numbers[tp],
                manufacturer=SITES[rec.site].manufacturer,
                lesions=lesions,
                stats=exam.stats,
                category=rec.category,
            )
        )
    return views


def simulate_rows(seed: int, index: int, site_name: str, size: str, dicom_dir: Path) -> dict[str, list]:
    """Simulate one patient and return its rows of every table (runs in a worker process)."""
    site = get_site(site_name)
    rec = simulate_patient(seed, index, site, size, dicom_dir)
    rng = np.random.default_rng([seed, index, 2])
    reports, mentions, lesions = [], [], []
    baseline_written: dict[str, str] = {}
    for view, exam in zip(_exam_views(rec), rec.exams, strict=True):
        if view.timepoint == "followup":
            for les in view.lesions:
                les.prior_text = baseline_written.get(les.lesion_id, "")
        text, found = write_report(view, rng)
        study_date = view.study_date.isoformat()
        reports.append(
            {
                "patient_id": rec.patient_id,
                "study_uid": view.study_uid,
                "study_date": study_date,
                "text": text,
            }
        )
        mentions += [m.as_dict() for m in found]
        written: dict[str, str] = {}
        for m in found:
            if m.kind == "lesion":
                written.setdefault(m.lesion_id, m.text)
        if view.timepoint == "baseline":
            baseline_written = written
        for les in rec.lesions:
            if view.timepoint == "baseline" and les.is_new:
                continue
            x, y, z = exam.pet_grid.centre_of(exam.lesion_index(les))
            lesions.append(
                {
                    "patient_id": rec.patient_id,
                    "study_uid": view.study_uid,
                    "timepoint": view.timepoint,
                    "lesion_id": les.lesion_id,
                    "site_name": les.site.name,
                    "x_mm": _round(x, 3),
                    "y_mm": _round(y, 3),
                    "z_mm": _round(z, 3),
                    "diameter_mm": _round(les.diameter.get(view.timepoint, 0.0), 3),
                    "suvmax_true": _round(rec.truth[view.timepoint].get(les.lesion_id, 0.0)),
                    "suvmax_reported": written.get(les.lesion_id, "").replace(",", "."),
                    "is_new": int(les.is_new),
                }
            )
    base, follow = rec.exams
    truth = {
        "patient_id": rec.patient_id,
        "site": rec.site,
        "baseline_study_uid": base.study_uid,
        "followup_study_uid": follow.study_uid,
        "baseline_date": base.ct_series_time.date().isoformat(),
        "followup_date": follow.ct_series_time.date().isoformat(),
        "baseline_suvmax": _round(rec.baseline_suvmax),
        "followup_suvmax": _round(rec.followup_suvmax),
        "reference_suv": _round(follow.reference),
        "new_lesion": int(rec.new_lesion),
        "category": rec.category,
        "label": response_class(rec.category),
    }
    exams = []
    for exam in rec.exams:
        exams.append(
            {
                "patient_id": rec.patient_id,
                "study_uid": exam.study_uid,
                "timepoint": exam.timepoint,
                "study_date": exam.ct_series_time.date().isoformat(),
                "site": rec.site,
                "manufacturer": SITES[rec.site].manufacturer,
                "units": "CNTS" if SITES[rec.site].convention == "philips" else "BQML",
                "pet_series_uid": exam.pet_series_uid,
                "ct_series_uid": exam.ct_series_uid,
                "weight_kg": exam.weight_kg,
                "dose_mbq": round(exam.dose_bq / 1e6, 1),
                "uptake_min": round((exam.acquisition_start - exam.injection).total_seconds() / 60, 2),
                **{k: _round(v) for k, v in exam.stats.items()},
                "diagnosis": rec.diagnosis.name,
                "near_threshold": int(rec.near_threshold),
            }
        )
    return {"truth": [truth], "lesions": lesions, "exams": exams, "reports": reports, "mentions": mentions}


def _remove_stale_patients(dicom_dir: Path, keep: set[str]) -> None:
    """Remove patient folders an earlier, larger cohort left in ``dicom_dir`` (only SYNnnnn folders)."""
    for folder in dicom_dir.glob("SYN[0-9][0-9][0-9][0-9]"):
        if folder.is_dir() and folder.name not in keep:
            shutil.rmtree(folder)


def _write_atomic(path: Path, write) -> None:
    """Write a file through a temporary file in the same folder, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    _write_atomic(path, write)


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    _write_atomic(
        path, lambda handle: handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    )


def generate_cohort(
    out_dir: str | Path,
    patients: int = 20,
    seed: int = 0,
    sites: Sequence[str] = ("internal", "external"),
    size: str = "small",
    workers: int | None = None,
) -> CohortPaths:
    """Write a synthetic FDG PET/CT cohort to ``out_dir`` and return where its parts lie.

    Patients are assigned to ``sites`` in turn (patient i → sites[i % len(sites)]). Each patient is drawn
    from its own random streams seeded by (seed, index), so patient SYN0003 is the same in a cohort of 5
    and of 500.

    Args:
        out_dir: output folder (created). A re-run replaces the cohort: patient folders it writes are
            replaced, SYNnnnn folders of patients it does not have are removed.
        patients: number of patients (two exams each).
        seed: the cohort's seed; same seed, same bytes.
        sites: site names (see ``onconet.data.synthetic.sites.SITES``).
        size: "small" (fast, coarse grids) or "full" (PET ~4 mm, CT finer).
        workers: processes to use (default: all CPUs, at most one per patient).
    """
    if patients < 1:
        raise ConfigError(f"synthetic cohort: --patients must be at least 1, got {patients}")
    if not sites:
        raise ConfigError("synthetic cohort: --sites names no site; give e.g. internal,external")
    for name in sites:
        get_site(name)
    check_size(size)
    paths = CohortPaths.of(Path(out_dir))
    paths.dicom_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_patients(paths.dicom_dir, {patient_id(i) for i in range(patients)})
    jobs = [(seed, i, sites[i % len(sites)], size, paths.dicom_dir) for i in range(patients)]
    workers = max(1, min(workers or os.cpu_count() or 1, patients))
    if workers == 1:
        results = [simulate_rows(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(simulate_rows, *zip(*jobs, strict=True)))
    tables: dict[str, list] = {k: [] for k in ("truth", "lesions", "exams", "reports", "mentions")}
    for result in results:
        for key, rows in result.items():
            tables[key] += rows
    _write_csv(paths.truth, TRUTH_COLUMNS, tables["truth"])
    _write_csv(paths.lesions, LESION_COLUMNS, tables["lesions"])
    _write_csv(paths.exams, EXAM_COLUMNS, tables["exams"])
    _write_jsonl(paths.reports, tables["reports"])
    _write_jsonl(paths.mentions, tables["mentions"])
    config = {
        "generator": "onconet.data.synthetic",
        "version": __version__,
        "patients": patients,
        "seed": seed,
        "sites": list(sites),
        "size": size,
        "site_profiles": {
            name: {
                "convention": SITES[name].convention,
                "manufacturer": SITES[name].manufacturer,
                "pet_grid": vars(SITES[name].pet[size]),
                "ct_grid": vars(SITES[name].ct[size]),
                "psf_fwhm_mm": SITES[name].psf_fwhm_mm,
                "noise_level": SITES[name].noise_level,
            }
            for name in sites
        },
        "categories": {
            "block": list(plan.CATEGORY_BLOCK),
            "near_threshold_fraction": plan.NEAR_THRESHOLD_FRACTION,
        },
        "truth": (
            "suvmax_true is the maximum of the noise-free blurred SUV image over the lesion's region "
            "(sphere + one PSF width); noise is capped at that value inside the region and zero at its "
            "voxel, so the written image holds exactly this maximum (up to int16 quantisation)"
        ),
        "reference_suv": "mean of the noise-free SUV image in a 15 mm sphere in the right liver lobe",
        "report_noise": REPORT_NOISE,
    }
    _write_atomic(paths.config, lambda handle: json.dump(config, handle, indent=2))
    return paths
