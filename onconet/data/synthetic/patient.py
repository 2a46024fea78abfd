"""One synthetic patient: draw, plan the response, render both exams, write DICOM, describe the truth.

Each patient uses its own random streams seeded by (seed, patient index), so a patient's images and
reports do not depend on how many patients the cohort has.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from onconet.classes import response_category
from onconet.data.synthetic import response as plan
from onconet.data.synthetic.dicom_writer import (
    F18_HALF_LIFE_S,
    CtHeader,
    ExamHeader,
    PetHeader,
    format_ds,
    make_uid,
    write_ct_series,
    write_pet_series,
)
from onconet.data.synthetic.geometry import Ellipsoid, Grid, paint
from onconet.data.synthetic.lesions import Diagnosis, Lesion, choose_diagnosis, draw_sites
from onconet.data.synthetic.pet import (
    LesionPatch,
    add_noise,
    blur,
    feasible_floor,
    lesion_patch,
    region_mean,
    region_values,
    solve_amplitude,
)
from onconet.data.synthetic.phantom import TISSUE_HU, Anatomy, Tissue, build_anatomy, draw_uptake, lookup
from onconet.data.synthetic.phantom import tissue_labels as label_volume
from onconet.data.synthetic.sites import FIELD_OF_VIEW_Z_MM, SiteProfile

TIMEPOINTS = ("baseline", "followup")
#: centre of every scanner's field of view, LPS mm (the body's vertex sits near the top of it)
FOV_CENTRE = (0.0, 0.0, -FIELD_OF_VIEW_Z_MM / 2 + 15.0)
LIVER_ROI_RADIUS_MM = 15.0
BLOOD_POOL_ROI_RADIUS_MM = 8.0
MAX_DIAMETER_MM = 40.0
PLANNING_ATTEMPTS = 60


class PlanningError(RuntimeError):
    """The response plan could not be met (a bug in the generator, never a user error)."""


@dataclass
class Exam:
    """One exam (study) of a patient: timing, dose, placement, grids and the noise-free PET parts."""

    timepoint: str
    study_uid: str
    pet_series_uid: str
    ct_series_uid: str
    frame_of_reference_uid: str
    accession: str
    injection: datetime
    acquisition_start: datetime
    pet_series_time: datetime
    ct_series_time: datetime
    weight_kg: float
    dose_bq: float
    offset: tuple[float, float, float]
    anatomy: Anatomy
    uptake: dict[Tissue, float]
    pet_grid: Grid
    ct_grid: Grid
    labels: np.ndarray
    background: np.ndarray
    reference: float = 0.0
    blood_pool: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)

    def world(self, body: tuple[float, float, float]) -> tuple[float, float, float]:
        """LPS scanner coordinates of a body-coordinate point in this exam."""
        return (body[0] + self.offset[0], body[1] + self.offset[1], body[2] + self.offset[2])

    def lesion_index(self, lesion: Lesion) -> tuple[int, int, int]:
        """The PET voxel the lesion is centred on in this exam."""
        return self.pet_grid.nearest_index(self.world(lesion.position))


@dataclass
class PatientRecord:
    """What a simulated patient contributes to the cohort's tables and reports."""

    patient_id: str
    site: str
    category: str
    near_threshold: bool
    diagnosis: Diagnosis
    sex: str
    age: int
    height_m: float
    exams: list[Exam]
    lesions: list[Lesion]
    truth: dict[str, dict[str, float]]  # timepoint -> lesion_id -> true SUVmax
    image_numbers: dict[str, dict[str, int]]  # timepoint -> lesion_id -> PET InstanceNumber
    pet_series_numbers: dict[str, int]
    contralateral: dict[str, dict[str, float]]  # timepoint -> lesion_id -> mirror-site SUVmax
    baseline_suvmax: float
    followup_suvmax: float
    new_lesion: bool


def patient_id(index: int) -> str:
    """The cohort's ID of patient ``index`` (0-based): SYN0001, SYN0002, ..."""
    return f"SYN{index + 1:04d}"


def _grid(spec, centre) -> Grid:
    n_slices = round(FIELD_OF_VIEW_Z_MM / spec.slice_mm)
    return Grid.centred(
        (n_slices, spec.matrix, spec.matrix), (spec.slice_mm, spec.pixel_mm, spec.pixel_mm), centre
    )


def _draw_exam(
    rng: np.random.Generator,
    seed: int,
    pid: str,
    timepoint: str,
    study_day: date,
    weight_kg: float,
    height_m: float,
    sex: str,
    site: SiteProfile,
    size: str,
) -> Exam:
    minutes = int(rng.integers(7 * 60 + 30, 14 * 60))
    injection = datetime.combine(study_day, datetime.min.time()) + timedelta(
        minutes=minutes, seconds=int(rng.integers(60))
    )
    uptake_s = int(rng.integers(50 * 60, 80 * 60))
    acquisition_start = injection + timedelta(seconds=uptake_s)
    ct_time = acquisition_start - timedelta(seconds=int(rng.integers(90, 240)))
    # GE-style consoles stamp the PET series when it is reconstructed, after the acquisition.
    pet_series_time = acquisition_start + (
        timedelta(seconds=int(rng.integers(600, 2400))) if site.convention == "ge" else timedelta(0)
    )
    dose_bq = round(weight_kg * rng.uniform(3.0, 4.2), 1) * 1e6
    offset = (float(rng.uniform(-8, 8)), float(rng.uniform(-12, 4)), float(rng.uniform(-15, 5)))
    anatomy = build_anatomy(height_m, weight_kg, sex, bladder_fill=float(rng.uniform(0.6, 1.3)))
    pet_grid = _grid(site.pet[size], FOV_CENTRE)
    ct_grid = _grid(site.ct[size], FOV_CENTRE)
    labels = label_volume(pet_grid, anatomy, offset)
    uptake = draw_uptake(rng)
    background = blur(lookup(labels, uptake), pet_grid, site.psf_fwhm_mm)
    tag = (seed, pid, timepoint)
    exam = Exam(
        timepoint=timepoint,
        study_uid=make_uid(*tag, "study"),
        pet_series_uid=make_uid(*tag, "pet"),
        ct_series_uid=make_uid(*tag, "ct"),
        frame_of_reference_uid=make_uid(*tag, "frame"),
        accession=f"A{int(rng.integers(10**7, 10**8))}",
        injection=injection,
        acquisition_start=acquisition_start,
        pet_series_time=pet_series_time,
        ct_series_time=ct_time,
        weight_kg=weight_kg,
        dose_bq=dose_bq,
        offset=offset,
        anatomy=anatomy,
        uptake=uptake,
        pet_grid=pet_grid,
        ct_grid=ct_grid,
        labels=labels,
        background=background,
    )
    exam.reference = region_mean(
        background, pet_grid, exam.world(anatomy.landmarks["liver_roi"]), LIVER_ROI_RADIUS_MM
    )
    exam.blood_pool = region_mean(
        background, pet_grid, exam.world(anatomy.landmarks["aorta"]), BLOOD_POOL_ROI_RADIUS_MM
    )
    return exam


def _patches(exam: Exam, lesions: list[Lesion], site: SiteProfile) -> dict[str, LesionPatch]:
    return {
        les.lesion_id: lesion_patch(
            exam.pet_grid, exam.lesion_index(les), les.diameter[exam.timepoint], site.psf_fwhm_mm
        )
        for les in lesions
        if les.diameter.get(exam.timepoint, 0.0) > 0.0
    }


def _plan(
    rng: np.random.Generator,
    category: str,
    near: bool,
    via_new_lesion: bool,
    diagnosis: Diagnosis,
    lesions: list[Lesion],
    exams: list[Exam],
    site: SiteProfile,
    min_gap_mm: float,
) -> list[Lesion]:
    """SUVmax targets and diameters at both timepoints meeting ``category``; returns the lesions (+ new)."""
    base, follow = exams
    base_patches = _patches(base, lesions, site)
    base_floor = {
        k: feasible_floor(base.background, p, plan.VISIBILITY_MARGIN) for k, p in base_patches.items()
    }
    for _ in range(PLANNING_ATTEMPTS):
        hottest = lesions[0] if rng.random() < 0.7 else lesions[int(rng.integers(len(lesions)))]
        low, high = plan.baseline_range(category, follow.reference)
        b = max(float(rng.uniform(low, high)), base_floor[hottest.lesion_id])
        ok = True
        for les in lesions:
            value = b if les is hottest else float(rng.uniform(0.35, 0.95)) * b
            value = max(value, base_floor[les.lesion_id])
            if les is not hottest and value > 0.97 * b:
                ok = False
            les.suv_target = {"baseline": value}
        if not ok:
            continue
        new: list[Lesion] = []
        if category == "PMD" and via_new_lesion:
            taken = tuple(les.site.name for les in lesions)
            placed = tuple(les.position for les in lesions)
            for k, (s, pos) in enumerate(
                draw_sites(rng, diagnosis, base.anatomy, int(rng.integers(1, 3)), min_gap_mm, taken, placed)
            ):
                d = float(min(MAX_DIAMETER_MM, rng.uniform(*s.diameter_mm) * 0.8))
                new.append(
                    Lesion(f"L{len(lesions) + k + 1}", s, pos, {"baseline": 0.0, "followup": d}, {}, True)
                )
        for les in lesions:
            ratio = rng.uniform(0.7, 1.2) if new else plan.diameter_ratio(rng, category)
            les.diameter["followup"] = float(min(MAX_DIAMETER_MM, les.diameter["baseline"] * ratio))
        follow_patches = _patches(follow, lesions + new, site)
        floor = {
            k: feasible_floor(follow.background, p, plan.VISIBILITY_MARGIN) for k, p in follow_patches.items()
        }
        ref = follow.reference
        targets: dict[str, float] = {}
        if category == "CMR":
            residual = [les for les in lesions if floor[les.lesion_id] < 0.93 * ref]
            if residual and rng.random() < 0.45:
                for les in residual[: int(rng.integers(1, 3))]:
                    top = (
                        ref * (1 - rng.uniform(0.01, 0.04))
                        if near
                        else rng.uniform(floor[les.lesion_id], 0.95 * ref)
                    )
                    targets[les.lesion_id] = float(max(top, floor[les.lesion_id]))
        elif new:
            for les in lesions:
                value = les.suv_target["baseline"] * rng.uniform(0.5, 1.25)
                if value >= floor[les.lesion_id]:
                    targets[les.lesion_id] = float(value)
            for les in new:
                targets[les.lesion_id] = float(
                    rng.uniform(max(floor[les.lesion_id], 2.5), max(floor[les.lesion_id], 2.5) + 8.0)
                )
        else:
            f = plan.plan_hottest_followup(rng, category, b, ref, floor[hottest.lesion_id], near)
            if f is None:
                continue
            targets[hottest.lesion_id] = f
            for les in lesions:
                if les is hottest:
                    continue
                value = min(
                    les.suv_target["baseline"] * plan.lesion_ratio(rng, category), f * rng.uniform(0.6, 0.95)
                )
                if value >= floor[les.lesion_id]:
                    targets[les.lesion_id] = float(value)
        f_planned = max(targets.values(), default=0.0)
        if response_category(b, f_planned, reference_suv=ref, new_lesion=bool(new)) != category:
            continue
        for les in lesions + new:
            les.suv_target["followup"] = targets.get(les.lesion_id, 0.0)
            if les.suv_target["followup"] == 0.0:
                les.diameter["followup"] = 0.0
        return lesions + new
    raise PlanningError(f"could not plan a {category} response for {len(lesions)} lesions")


def _render(
    exam: Exam, lesions: list[Lesion], site: SiteProfile
) -> tuple[np.ndarray, dict[str, LesionPatch]]:
    """The noise-free SUV image with each present lesion at its planned SUVmax (amplitudes solved jointly)."""
    tp = exam.timepoint
    present = [les for les in lesions if les.present(tp)]
    patches = _patches(exam, present, site)
    image = exam.background.copy()
    amplitude = dict.fromkeys(patches, 0.0)
    # Lesion tails barely reach each other's centres; a few sweeps make every centre value exact.
    for _ in range(8):
        for les in present:
            p = patches[les.lesion_id]
            image[p.box] -= amplitude[les.lesion_id] * p.unit
            amplitude[les.lesion_id] = solve_amplitude(image, p, les.suv_target[tp])
            image[p.box] += amplitude[les.lesion_id] * p.unit
        worst = max(
            (
                abs(float(image[patches[k].centre_index]) - les.suv_target[tp])
                for les in present
                for k in [les.lesion_id]
            ),
            default=0.0,
        )
        if worst < 1e-9:
            break
    for les in present:
        p = patches[les.lesion_id]
        if float(image[p.box][p.region].max()) > float(image[p.centre_index]) + 1e-9:
            raise PlanningError(f"lesion {les.lesion_id} at {tp} is not hottest at its centre")
    if any(a <= 0 for a in amplitude.values()):
        raise PlanningError(f"a lesion at {tp} would need negative uptake")
    return image, patches


def _ct_volume(exam: Exam, lesions: list[Lesion], rng: np.random.Generator, site: SiteProfile) -> np.ndarray:
    labels = label_volume(exam.ct_grid, exam.anatomy, exam.offset)
    hu = lookup(labels, TISSUE_HU)
    for les in lesions:
        d = les.diameter.get(exam.timepoint, 0.0)
        if d > 0:
            centre = exam.pet_grid.centre_of(exam.lesion_index(les))
            paint(hu, exam.ct_grid, Ellipsoid(centre, (d / 2, d / 2, d / 2)), les.site.hu)
    hu += rng.normal(0.0, site.ct_noise_hu, size=hu.shape).astype(np.float32)
    return hu


def decayed_dose(exam: Exam, site: SiteProfile) -> float:
    """The injected dose decayed to the PET's decay-correction reference time, from header-rounded values."""
    reference = exam.acquisition_start if site.convention == "ge" else exam.pet_series_time
    seconds = (reference - exam.injection).total_seconds()
    return float(format_ds(exam.dose_bq)) * 2.0 ** (-seconds / F18_HALF_LIFE_S)


def simulate_patient(seed: int, index: int, site: SiteProfile, size: str, dicom_root: Path) -> PatientRecord:
    """Simulate patient ``index`` of cohort ``seed`` at ``site``; its DICOM goes under ``dicom_root``."""
    rng = np.random.default_rng([seed, index, 0])
    pid = patient_id(index)
    sex = "F" if rng.random() < 0.5 else "M"
    age = int(rng.integers(28, 84))
    height = float(np.clip(rng.normal(1.76 if sex == "M" else 1.64, 0.06), 1.5, 1.95))
    weight = round(float(rng.uniform(19.0, 32.0) * height**2), 1)
    diagnosis = choose_diagnosis(rng, sex)
    category = plan.category_of(seed, index)
    near = bool(rng.random() < plan.NEAR_THRESHOLD_FRACTION)
    via_new = bool(rng.random() < plan.NEW_LESION_FRACTION)
    first_day = date(2024, 1, 8) + timedelta(days=int(rng.integers(0, 800)))
    days = (first_day, first_day + timedelta(days=int(rng.integers(56, 140))))
    weights = (weight, round(weight * float(rng.uniform(0.93, 1.03)), 1))
    exams = [
        _draw_exam(rng, seed, pid, tp, day, w, height, sex, site, size)
        for tp, day, w in zip(TIMEPOINTS, days, weights, strict=True)
    ]
    reach = MAX_DIAMETER_MM / 2 + max(site.psf_fwhm_mm, *exams[0].pet_grid.spacing)
    min_gap = 2 * reach + 5.0
    drawn = draw_sites(rng, diagnosis, exams[0].anatomy, int(rng.integers(1, 7)), min_gap)
    lesions = [
        Lesion(f"L{k + 1}", s, pos, {"baseline": float(min(MAX_DIAMETER_MM, rng.uniform(*s.diameter_mm)))})
        for k, (s, pos) in enumerate(drawn)
    ]
    lesions = _plan(rng, category, near, via_new, diagnosis, lesions, exams, site, min_gap)

    truth: dict[str, dict[str, float]] = {}
    numbers: dict[str, dict[str, int]] = {}
    contralateral: dict[str, dict[str, float]] = {}
    series_numbers: dict[str, int] = {}
    patient_dir = dicom_root / pid
    if patient_dir.exists():
        shutil.rmtree(patient_dir)
    for n_exam, exam in enumerate(exams):
        tp = exam.timepoint
        noise_rng = np.random.default_rng([seed, index, 1, n_exam])
        clean, patches = _render(exam, lesions, site)
        present = [les for les in lesions if les.present(tp)]
        # _render made each lesion's centre voxel the maximum of its region: that value is the truth.
        truth[tp] = {les.lesion_id: float(clean[patches[les.lesion_id].centre_index]) for les in present}
        noisy = add_noise(
            clean,
            noise_rng,
            site.noise_level,
            [patches[les.lesion_id] for les in present],
            [truth[tp][les.lesion_id] for les in present],
        )
        grid = exam.pet_grid
        numbers[tp] = {les.lesion_id: grid.shape[0] - exam.lesion_index(les)[0] for les in present}
        contralateral[tp] = {}
        for les in present:
            if les.site.mirror:
                x, y, z = grid.centre_of(exam.lesion_index(les))
                mirror = (2 * exam.offset[0] - x, y, z)
                contralateral[tp][les.lesion_id] = float(region_values(noisy, grid, mirror, 8.0).max())
        liver_world = exam.world(exam.anatomy.landmarks["liver_roi"])
        exam.stats = {
            "liver_suvmean": exam.reference,
            "liver_suvmax": float(region_values(noisy, grid, liver_world, LIVER_ROI_RADIUS_MM).max()),
            "blood_pool_suvmean": exam.blood_pool,
            "brain_suvmax": float(noisy[exam.labels == Tissue.BRAIN].max()),
            "bladder_suvmax": float(noisy[exam.labels == Tissue.BLADDER].max())
            if (exam.labels == Tissue.BLADDER).any()
            else 0.0,
            "image_suvmax": float(noisy.max()),
        }
        header = ExamHeader(
            patient_id=pid,
            patient_name=f"SYNTHETIC^{pid}",
            sex=sex,
            age_years=age,
            weight_kg=exam.weight_kg,
            height_m=round(height, 2),
            study_uid=exam.study_uid,
            study_datetime=exam.ct_series_time - timedelta(minutes=2),
            accession=exam.accession,
            frame_of_reference_uid=exam.frame_of_reference_uid,
            site=site,
            station=f"{site.name.upper()}PETCT1",
        )
        series_numbers[tp] = _write_exam(exam, header, noisy, lesions, noise_rng, seed, patient_dir)

    b = max(truth["baseline"].values())
    f = max(truth["followup"].values(), default=0.0)
    new_lesion = any(les.is_new for les in lesions)
    measured = response_category(b, f, reference_suv=exams[1].reference, new_lesion=new_lesion)
    if measured != category:
        raise PlanningError(f"{pid}: planned {category} but the image gives {measured}")
    return PatientRecord(
        patient_id=pid,
        site=site.name,
        category=category,
        near_threshold=near,
        diagnosis=diagnosis,
        sex=sex,
        age=age,
        height_m=height,
        exams=exams,
        lesions=lesions,
        truth=truth,
        image_numbers=numbers,
        pet_series_numbers=series_numbers,
        contralateral=contralateral,
        baseline_suvmax=b,
        followup_suvmax=f,
        new_lesion=new_lesion,
    )


def _write_exam(
    exam: Exam,
    header: ExamHeader,
    suv: np.ndarray,
    lesions: list[Lesion],
    rng: np.random.Generator,
    seed: int,
    patient_dir: Path,
) -> int:
    """Write the exam's PET (``suv`` in the site's units) and CT series; returns the PET SeriesNumber."""
    site = header.site
    dd = decayed_dose(exam, site)
    bqml = suv * dd / (float(format_ds(exam.weight_kg)) * 1000.0)
    pet_number = 4 if site.convention == "siemens" else (601 if site.convention == "ge" else 3)
    if site.convention == "philips":
        activity = float(format_ds(float(rng.uniform(0.8, 1.6))))
        suv_factor = activity * float(format_ds(exam.weight_kg)) * 1000.0 / dd
        values, units = bqml / activity, "CNTS"
    else:
        activity, suv_factor, values, units = 1.0, 1.0, bqml, "BQML"
    pet = PetHeader(
        series_uid=exam.pet_series_uid,
        series_number=pet_number,
        series_datetime=exam.pet_series_time,
        acquisition_start=exam.acquisition_start,
        injection=exam.injection,
        dose_bq=exam.dose_bq,
        units=units,
        activity_factor=activity,
        suv_factor=suv_factor,
    )
    study = patient_dir / f"{exam.ct_series_time:%Y%m%d}_PETCT_{exam.accession}"
    write_pet_series(study / f"PT_{pet_number:03d}", exam.pet_grid, values, header, pet, seed)
    ct = CtHeader(series_uid=exam.ct_series_uid, series_number=2, series_datetime=exam.ct_series_time)
    write_ct_series(study / "CT_002", exam.ct_grid, _ct_volume(exam, lesions, rng, site), header, ct, seed)
    return pet_number
