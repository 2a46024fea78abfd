"""Reports: structure, variety; every written SUV value agrees with the truth within the declared noise."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
from synth_readers import read_csv, read_jsonl

from onconet.data.synthetic.reports import ExamView, LesionView, write_report

SECTIONS = ("INDICATION:", "TECHNIQUE:", "COMPARISON:", "FINDINGS:", "IMPRESSION:")
#: a number right after an SUV keyword (what a reader would take as a written SUV value)
SUV_VALUE = re.compile(
    r"(?:SUV ?max|SUV_max|SUVmean|max(?:imum)? SUV|\bSUV)\b(?: of| =|:)? ?(\d+(?:[.,]\d+)?)"
)


def _within_declared_noise(mention: dict, noise: dict) -> bool:
    slack = noise["eps_max"] * mention["true_value"] + 0.5 * 10 ** -mention["decimals"] + 1e-9
    return abs(mention["value"] - mention["true_value"]) <= slack


def test_one_report_per_exam_with_all_sections(synthetic_cohort):
    reports = read_jsonl(synthetic_cohort.reports)
    truth = read_csv(synthetic_cohort.truth)
    dates = {row[f"{tp}_study_uid"]: row[f"{tp}_date"] for row in truth for tp in ("baseline", "followup")}
    assert len(reports) == len(dates) == len({r["study_uid"] for r in reports})
    for report in reports:
        assert set(report) == {"patient_id", "study_uid", "study_date", "text"}
        assert report["study_date"] == dates[report["study_uid"]]
        positions = [report["text"].find(section) for section in SECTIONS]
        assert -1 not in positions and positions == sorted(positions), report["text"][:200]
        assert report["patient_id"] not in report["text"]  # no identifiers in the text


def test_every_written_value_agrees_with_the_truth(synthetic_cohort):
    noise = json.loads(synthetic_cohort.config.read_text())["report_noise"]
    reports = {r["study_uid"]: r["text"] for r in read_jsonl(synthetic_cohort.reports)}
    mentions = read_jsonl(synthetic_cohort.mentions)
    lesions = {(r["study_uid"], r["lesion_id"]): r for r in read_csv(synthetic_cohort.lesions)}
    exams = {r["study_uid"]: r for r in read_csv(synthetic_cohort.exams)}
    baseline_of = {r["followup_study_uid"]: r["baseline_study_uid"] for r in read_csv(synthetic_cohort.truth)}
    exam_truth = {
        "liver_mean": "liver_suvmean",
        "liver_max": "liver_suvmax",
        "blood_pool": "blood_pool_suvmean",
    }
    exam_truth |= {"brain": "brain_suvmax", "bladder": "bladder_suvmax"}
    assert len(mentions) > 4 * len(reports)
    for m in mentions:
        text = reports[m["study_uid"]]
        assert text[m["start"] : m["end"]] == m["text"]
        assert float(m["text"].replace(",", ".")) == m["value"]
        assert _within_declared_noise(m, noise), m
        if m["kind"] == "lesion":
            true = float(lesions[(m["study_uid"], m["lesion_id"])]["suvmax_true"])
        elif m["kind"] == "prior":
            true = float(lesions[(baseline_of[m["study_uid"]], m["lesion_id"])]["suvmax_true"])
        elif m["kind"] == "contralateral":
            continue  # background at the mirrored site, recorded only in mentions.jsonl
        else:
            true = float(exams[m["study_uid"]][exam_truth[m["kind"]]])
        assert abs(true - m["true_value"]) < 1e-5, m
    # lesions.csv's suvmax_reported is the value the report writes for that lesion.
    for (study, lesion_id), row in lesions.items():
        written = [
            m["text"]
            for m in mentions
            if m["study_uid"] == study and m["kind"] == "lesion" and m["lesion_id"] == lesion_id
        ]
        assert row["suvmax_reported"] == (written[0].replace(",", ".") if written else "")
        assert len(set(written)) <= 1
        if float(row["suvmax_true"]) == 0:
            assert row["suvmax_reported"] == ""


def test_no_suv_value_is_left_unrecorded(synthetic_cohort):
    starts: dict[str, set[int]] = {}
    for m in read_jsonl(synthetic_cohort.mentions):
        starts.setdefault(m["study_uid"], set()).add(m["start"])
    for report in read_jsonl(synthetic_cohort.reports):
        for found in SUV_VALUE.finditer(report["text"]):
            assert found.start(1) in starts.get(report["study_uid"], set()), (found.group(0), report["text"])


def test_reports_carry_the_distractors_of_real_reports(synthetic_cohort):
    texts = [r["text"] for r in read_jsonl(synthetic_cohort.reports)]
    mentions = read_jsonl(synthetic_cohort.mentions)
    kinds = {m["kind"] for m in mentions}
    assert {"lesion", "prior"} <= kinds and kinds & {"liver_mean", "liver_max", "blood_pool"}
    joined = "\n".join(texts)
    assert re.search(r"\d+(\.\d)? x \d+(\.\d)? cm|\d+ mm", joined)  # sizes
    assert re.search(r"(image|slice) \d+", joined)  # slice numbers
    assert re.search(r"\d{4}-\d\d-\d\d|\d\d/\d\d/\d{4}|[A-Z][a-z]+ \d{1,2}, \d{4}", joined)  # dates
    assert re.search(r"no new FDG-avid|No new FDG-avid", joined)
    followups = {m["study_uid"] for m in mentions if m["kind"] == "prior"}
    n_followups = sum("COMPARISON: None" not in t and "No prior PET/CT" not in t for t in texts)
    assert 0 < len(followups) < n_followups  # prior values in some follow-up reports only


SITES = (
    ("right axillary lymph node", "chest", "node", "left axillary"),
    ("hepatic segment VI lesion", "abdomen", "liver", ""),
    ("left level III cervical lymph node", "neck", "node", "right level III"),
    ("L3 vertebral body lesion", "bone", "bone", ""),
    ("right external iliac lymph node", "pelvis", "node", "left external iliac"),
)


def _random_view(rng: np.random.Generator, n: int) -> ExamView:
    """A made-up exam (no images) to exercise the report writer alone."""
    followup = rng.random() < 0.5
    lesions = []
    for k in range(int(rng.integers(1, 5))):
        site, region, kind, mirror = SITES[(k + n) % len(SITES)]
        resolved = followup and rng.random() < 0.2
        now = 0.0 if resolved else float(rng.uniform(1.0, 20.0))
        lesions.append(
            LesionView(
                lesion_id=f"L{k + 1}",
                site=site,
                region=region,
                kind=kind,
                mirror=mirror,
                diameter_mm=0.0 if resolved else float(rng.uniform(8, 40)),
                suvmax=now,
                prior_suvmax=float(rng.uniform(2, 20)) if followup else 0.0,
                prior_text="",
                image_number=int(rng.integers(1, 200)),
                is_new=False,
                contralateral=float(rng.uniform(0.5, 2.0)),
            )
        )
    stats = {"liver_suvmean": 2.1, "liver_suvmax": 2.8, "blood_pool_suvmean": 1.7}
    return ExamView(
        patient_id=f"P{n}",
        study_uid=f"1.2.3.{n}",
        timepoint="followup" if followup else "baseline",
        study_date=date(2025, 3, 1),
        prior_date=date(2024, 12, 2) if followup else None,
        indication="diffuse large B-cell lymphoma",
        lymphoma=bool(n % 2),
        sex="F",
        weight_kg=70.0,
        dose_mbq=280.0,
        uptake_min=60,
        pet_series_number=4,
        manufacturer="SIEMENS",
        lesions=lesions,
        stats=stats | {"brain_suvmax": 9.0, "bladder_suvmax": 25.0},
        category=str(rng.choice(["CMR", "PMR", "SMD", "PMD"])),
    )


def test_phrasing_varies_and_spans_hold_on_many_reports():
    rng = np.random.default_rng(11)
    skeletons, comma, without_numbers = set(), 0, 0
    for n in range(300):
        text, mentions = write_report(_random_view(rng, n), rng)
        for m in mentions:
            assert text[m.start : m.end] == m.text
        comma += any("," in m.text for m in mentions)
        if not mentions:
            without_numbers += 1
            words = text
            for site, *_ in SITES:
                words = words.replace(site, "")
            assert not re.search(r"\d", words), text
        findings = text[text.index("FINDINGS:") : text.index("IMPRESSION:")]
        for sentence in re.split(r"(?<=\.) ", findings):
            skeletons.add(re.sub(r"\d+([.,]\d+)?", "#", sentence.strip()))
    assert 15 <= comma <= 70 and 10 <= without_numbers <= 60
    assert len(skeletons) > 150


def test_generator_shares_nothing_with_the_parser():
    package = Path(__file__).resolve().parents[3] / "onconet" / "data" / "synthetic"
    for source in package.glob("*.py"):
        assert not re.search(r"^\s*(from|import) labeling", source.read_text(), re.M), source
