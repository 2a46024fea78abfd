"""Reports: structure, variety; every written SUV value agrees with the truth within the declared noise;
the follow-up impression is the reader's judgement of the printed values, hedged or off in declared shares."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from synth_readers import read_csv, read_jsonl

from onconet.classes import response_category
from onconet.data.synthetic import reports as generator
from onconet.data.synthetic.reports import (
    CATEGORY_ORDER,
    EPS_MAX,
    HEDGED_IMPRESSIONS,
    IMPRESSIONS,
    MIXED_IMPRESSION,
    REPORT_NOISE,
    ExamView,
    LesionView,
    Mention,
    write_report,
    write_report_with_reading,
)

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


def _random_followup(rng: np.random.Generator, n: int) -> ExamView:
    """A made-up follow-up exam whose lesions change around the PERCIST thresholds, some quoted priors."""
    view = _random_view(rng, n)
    lesions = []
    for k in range(int(rng.integers(1, 5))):
        site, region, kind, mirror = SITES[(k + n) % len(SITES)]
        prior = float(rng.uniform(2.5, 15.0))
        ratio = float(rng.choice([0.0, rng.uniform(0.5, 0.8), rng.uniform(0.8, 1.2), rng.uniform(1.2, 1.6)]))
        lesions.append(
            LesionView(
                lesion_id=f"L{k + 1}",
                site=site,
                region=region,
                kind=kind,
                mirror=mirror,
                diameter_mm=0.0 if ratio == 0 else 20.0,
                suvmax=prior * ratio,
                prior_suvmax=prior,
                # the baseline report's written value, when it wrote one
                prior_text=f"{prior * rng.uniform(0.95, 1.05):.1f}" if rng.random() < 0.6 else "",
                image_number=int(rng.integers(1, 200)),
                is_new=False,
                contralateral=1.0,
            )
        )
    if rng.random() < 0.1:
        new = replace(lesions[0], lesion_id="N1", site="spleen lesion", region="abdomen", kind="spleen")
        lesions.append(replace(new, mirror="", suvmax=6.0, prior_suvmax=0.0, prior_text="", is_new=True))
    view.timepoint, view.prior_date, view.lesions = "followup", date(2024, 12, 2), lesions
    return view


def _stated(text: str) -> str | None:
    """The category the impression states in the generator's own words (None: no category)."""
    impression = text[text.index("IMPRESSION:") :]
    found = {c for c, phrases in IMPRESSIONS.items() for phrase in phrases if phrase in impression}
    assert len(found) <= 1, impression
    return found.pop() if found else None


def _category_of_printed(view: ExamView, mentions: list[Mention]) -> str | None:
    """The PERCIST rule on the values printed (this report and the baseline's); None if one is missing."""
    printed: dict[tuple[str, str], float] = {}
    for m in mentions:
        printed.setdefault((m.kind, m.lesion_id), m.value)
    baseline = []
    for les in (les for les in view.lesions if les.prior_suvmax > 0):
        quoted = printed.get(("prior", les.lesion_id))
        if quoted is None and not les.prior_text:
            return None
        baseline.append(quoted if quoted is not None else float(les.prior_text.replace(",", ".")))
    current = [printed.get(("lesion", les.lesion_id)) for les in view.lesions if les.suvmax > 0]
    if None in current:
        return None
    reference = printed.get(("liver_mean", ""))
    if reference is None and current and max(current) > (1 + EPS_MAX) * view.stats["liver_suvmean"] + 0.05:
        reference = 0.0  # unprinted, but no reading of the liver can reach the hottest lesion
    if current and reference is None:
        return None
    new = any(les.is_new and les.suvmax > 0 for les in view.lesions)
    # With no lesion left the reference is not needed (0 <= any reference): a complete response.
    f = max(current, default=0.0)
    return response_category(max(baseline), f, reference_suv=reference or 0.0, new_lesion=new)


def test_followup_impression_is_the_readers_judgement_in_the_declared_shares():
    declared = REPORT_NOISE["impression"]
    rng = np.random.default_rng(5)
    n, hedged, checked, agree, one_step = 2000, 0, 0, 0, 0
    for k in range(n):
        view = _random_followup(rng, k)
        text, mentions, reading = write_report_with_reading(view, rng)
        stated = _stated(text)
        assert reading is not None and stated == reading.stated
        if stated is None:
            hedged += 1
            assert MIXED_IMPRESSION in text or any(phrase in text for phrase in HEDGED_IMPRESSIONS)
            continue
        printed = _category_of_printed(view, mentions)
        if printed is None:
            continue  # the reader judged values this report does not print
        checked += 1
        assert reading.by_numbers == printed  # the reader's numbers are the printed ones
        agree += stated == printed
        gap = abs(CATEGORY_ORDER.index(stated) - CATEGORY_ORDER.index(printed))
        assert gap <= 1, (stated, printed)
        one_step += gap == 1

    def within(count: int, total: int, p: float) -> bool:  # 4.5 binomial standard deviations
        return abs(count - total * p) <= 4.5 * (total * p * (1 - p)) ** 0.5

    assert within(hedged, n, declared["hedged_fraction"]), hedged
    assert checked > 700
    off_share = declared["discordant_fraction"] / (1 - declared["hedged_fraction"])
    assert within(checked - agree, checked, off_share), (checked, agree)
    assert one_step == checked - agree
    assert declared["numbers_fraction"] == pytest.approx(
        1 - declared["hedged_fraction"] - declared["discordant_fraction"]
    )


def test_the_readers_draws_leave_the_findings_and_the_next_report_unchanged(monkeypatch):
    """Hedging every impression changes only the impressions, not the findings or the stream after them."""
    texts = {}
    for hedged in (0.0, 1.0):
        impression = REPORT_NOISE["impression"] | {"hedged_fraction": hedged}
        monkeypatch.setitem(generator.REPORT_NOISE, "impression", impression)
        rng = np.random.default_rng(9)
        texts[hedged] = [write_report(_random_followup(rng, k), rng)[0] for k in range(40)]
    for plain, hedged in zip(texts[0.0], texts[1.0], strict=True):
        cut = plain.index("IMPRESSION:")
        assert plain[:cut] == hedged[:cut]
        assert _stated(hedged) is None
    assert sum(_stated(t) is not None for t in texts[0.0]) >= 30


def _first_values(mentions: list[dict], kind: str) -> dict[str, float]:
    """lesion_id -> the first value of ``kind`` a report prints for it."""
    values: dict[str, float] = {}
    for m in mentions:
        if m["kind"] == kind:
            values.setdefault(m["lesion_id"], m["value"])
    return values


def test_cohort_impressions_follow_the_printed_values(synthetic_cohort):
    """On the cohort: the stated category is the PERCIST rule on the printed values, or one step off."""
    reports = {r["study_uid"]: r["text"] for r in read_jsonl(synthetic_cohort.reports)}
    by_study: dict[str, list[dict]] = {}
    for m in read_jsonl(synthetic_cohort.mentions):
        by_study.setdefault(m["study_uid"], []).append(m)
    present: dict[str, list[dict]] = {}
    for r in read_csv(synthetic_cohort.lesions):
        if float(r["suvmax_true"]) > 0:
            present.setdefault(r["study_uid"], []).append(r)
    compared = 0
    for row in read_csv(synthetic_cohort.truth):
        base, follow = row["baseline_study_uid"], row["followup_study_uid"]
        stated = _stated(reports[follow])
        quoted = _first_values(by_study.get(follow, []), "prior")
        written = _first_values(by_study.get(base, []), "lesion")
        b = [quoted.get(r["lesion_id"], written.get(r["lesion_id"])) for r in present[base]]
        current = _first_values(by_study.get(follow, []), "lesion")
        f = [current.get(r["lesion_id"]) for r in present.get(follow, [])]
        reference = _first_values(by_study.get(follow, []), "liver_mean").get("")
        if stated is None or None in b or None in f or (f and reference is None):
            continue  # hedged, or the reader judged a value this pair's reports do not print
        new = any(r["is_new"] == "1" for r in present.get(follow, []))
        last = max(f, default=0.0)
        rule = response_category(max(b), last, reference_suv=reference or 0.0, new_lesion=new)
        assert abs(CATEGORY_ORDER.index(stated) - CATEGORY_ORDER.index(rule)) <= 1
        compared += 1
    assert compared >= 3
