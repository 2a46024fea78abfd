"""Radiology reports of the synthetic exams, in many phrasings, with the distractors real reports have.

Every SUV value a report writes is recorded as a ``Mention`` (what it refers to, the text as written,
its character span, the true value it measures), so the report parser can be scored mention by mention
and the tests can check that every value agrees with the truth within the declared report noise.

A follow-up impression is the reader's judgement, not the truth: the PERCIST-style category of the
reader's own (noisy, rounded) values, so borderline pairs can disagree with truth.csv; a declared share
of impressions hedge (no category) or state a category one step off the numbers (REPORT_NOISE["impression"]).

The phrase lists here are the generator's own; the parser in ``labeling/`` must never import them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np

from onconet.classes import response_category

#: How a written value relates to the true one (also written to cohort.json).
REPORT_NOISE = {
    "model": "reported = round(true * (1 + eps), decimals)",
    "eps": "uniform(-0.05, 0.05), drawn per mention",
    "eps_max": 0.05,
    "decimals": {"1": 0.88, "0": 0.12},
    "decimals_of_reference_kinds": 1,
    "tolerance": "abs(reported - true) <= eps_max * true + 0.5 * 10**-decimals",
    "decimal_comma_fraction": 0.12,
    "no_suv_numbers_fraction": 0.1,
    "prior_values": "follow-up reports quote the baseline value (the baseline report's text or a re-measure)",
    "truth_of_kinds": {
        "lesion": "lesions.csv suvmax_true of this lesion at this exam",
        "prior": "lesions.csv suvmax_true of this lesion at baseline",
        "liver_mean": "exams.csv liver_suvmean (reference ROI, noise-free)",
        "liver_max": "exams.csv liver_suvmax (reference ROI, written image)",
        "blood_pool": "exams.csv blood_pool_suvmean",
        "contralateral": "SUVmax of the written image at the mirrored site (mentions.jsonl true_value)",
        "brain": "exams.csv brain_suvmax",
        "bladder": "exams.csv bladder_suvmax",
    },
    # The follow-up impression is the reader's judgement, not the truth (the truth is truth.csv's category).
    "impression": {
        "model": (
            "reader's category = response_category(b, f, reference_suv=liver mean, new_lesion) on the "
            "reader's own values: b = hottest baseline lesion (the prior value this report quotes, else the "
            "baseline report's value, else an unprinted reading), f = hottest follow-up lesion as written, "
            "liver mean as written (else an unprinted reading); unprinted readings carry the same noise"
        ),
        "hedged_fraction": 0.12,
        "hedged": "no category stated: findings as described / equivocal / mixed response (drawn per report)",
        "discordant_fraction": 0.05,
        "discordant": (
            "the impression states a category one step off the reader's numbers (CMR < PMR < SMD < PMD), "
            "toward response if a lesion resolved, toward progression if one is new, else either way"
        ),
        "numbers_fraction": 0.83,
        "deauville": "from the reader's values (hottest lesion, blood pool, liver mean and max)",
    },
}
EPS_MAX = 0.05
REFERENCE_KINDS = ("liver_mean", "liver_max", "blood_pool")


@dataclass(frozen=True)
class Mention:
    """One SUV value written in a report."""

    patient_id: str
    study_uid: str
    kind: str  # lesion / prior / liver_mean / liver_max / blood_pool / contralateral / brain / bladder
    lesion_id: str
    text: str
    value: float
    decimals: int
    start: int
    end: int
    true_value: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Measure:
    """A value to write: its kind, the lesion it belongs to, the true value and the rounded reading."""

    kind: str
    lesion_id: str
    true_value: float
    value: float
    decimals: int


@dataclass
class LesionView:
    """What a report needs to know about one lesion at one exam."""

    lesion_id: str
    site: str
    region: str
    kind: str
    mirror: str
    diameter_mm: float
    suvmax: float  # true, 0 when absent
    prior_suvmax: float  # true baseline value (0 when none)
    prior_text: str  # the baseline report's written value, "" if it wrote none
    image_number: int
    is_new: bool
    contralateral: float  # SUVmax at the mirrored site, 0 when none


@dataclass
class ExamView:
    """What a report needs to know about one exam."""

    patient_id: str
    study_uid: str
    timepoint: str
    study_date: date
    prior_date: date | None
    indication: str
    lymphoma: bool
    sex: str
    weight_kg: float
    dose_mbq: float
    uptake_min: int
    pet_series_number: int
    manufacturer: str
    lesions: list[LesionView]
    stats: dict[str, float]
    category: str  # the true category (follow-up); the impression states the reader's, see read_followup


class ReportText:
    """A report under construction that remembers where each written value sits."""

    def __init__(self, exam: ExamView, rng: np.random.Generator, comma: bool, numbers: bool):
        self.exam, self.rng, self.comma, self.numbers = exam, rng, comma, numbers
        # The reader's unprinted readings and judgement draw from a child generator: spawning leaves
        # ``rng``'s stream untouched, so the text (and the next report of the patient) does not shift.
        self.reader_rng = rng.spawn(1)[0]
        self.parts: list[str] = []
        self.length = 0
        self.mentions: list[Mention] = []

    def measure(
        self, kind: str, true_value: float, lesion_id: str = "", rng: np.random.Generator | None = None
    ) -> Measure:
        """A noisy, rounded reading of ``true_value`` (see REPORT_NOISE); references keep one decimal."""
        rng = rng or self.rng
        rounded = kind not in REFERENCE_KINDS and rng.random() >= REPORT_NOISE["decimals"]["1"]
        decimals = 0 if rounded else 1
        eps = rng.uniform(-EPS_MAX, EPS_MAX)
        value = round(true_value * (1 + eps), decimals)
        if value <= 0:
            value, decimals = round(true_value, 1), 1
        return Measure(kind, lesion_id, true_value, value, decimals)

    def number(self, value: float, decimals: int) -> str:
        text = f"{value:.{decimals}f}"
        return text.replace(".", ",") if self.comma else text

    def add(self, template: str, **fields: object) -> None:
        """Append ``template`` with ``fields`` filled in; Measure fields are recorded as mentions."""
        for piece in re.split(r"(\{\w+\})", template):
            if piece.startswith("{") and piece.endswith("}"):
                value = fields[piece[1:-1]]
                if isinstance(value, Measure):
                    text = self.number(value.value, value.decimals)
                    self.mentions.append(
                        Mention(
                            self.exam.patient_id,
                            self.exam.study_uid,
                            value.kind,
                            value.lesion_id,
                            text,
                            float(value.value),
                            value.decimals,
                            self.length,
                            self.length + len(text),
                            float(value.true_value),
                        )
                    )
                    piece = text
                else:
                    piece = str(value)
            self.parts.append(piece)
            self.length += len(piece)

    def text(self) -> str:
        return "".join(self.parts)

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]


def format_date(day: date, style: int) -> str:
    """A date in one of the styles reports use."""
    if style == 0:
        return day.isoformat()
    if style == 1:
        return day.strftime("%m/%d/%Y")
    if style == 2:
        return f"{day.strftime('%B')} {day.day}, {day.year}"
    return f"{day.day} {day.strftime('%b')} {day.year}"


REGION_HEADINGS = {
    "neck": ("HEAD AND NECK:", "Neck:", "HEAD/NECK:"),
    "chest": ("CHEST:", "Thorax:", "CHEST (including mediastinum and lungs):"),
    "abdomen": ("ABDOMEN AND PELVIS:", "Abdomen/pelvis:", "ABDOMEN/PELVIS:"),
    "bone": ("MUSCULOSKELETAL:", "Bones:", "SKELETON:"),
}
REGION_NEGATIVES = {
    "neck": (
        "No hypermetabolic cervical lymphadenopathy.",
        "No FDG-avid cervical or supraclavicular lymph nodes.",
        "Physiologic uptake in the tonsils and salivary glands.",
    ),
    "chest": (
        "No FDG-avid pulmonary nodules or thoracic lymphadenopathy.",
        "No hypermetabolic mediastinal or hilar lymph nodes. Lungs are clear.",
        "No suspicious thoracic uptake.",
    ),
    "abdomen": (
        "No abnormal hypermetabolic activity in the abdomen or pelvis.",
        "Liver, spleen and adrenal glands without focal FDG uptake.",
        "No FDG-avid abdominopelvic lymphadenopathy.",
    ),
    "bone": (
        "No suspicious osseous FDG uptake.",
        "No hypermetabolic osseous lesions.",
        "Degenerative changes of the spine without abnormal uptake.",
    ),
}
SUV_WORDS = ("SUVmax", "SUV max", "maximum SUV", "SUV_max", "max SUV")


def _size_text(report: ReportText, diameter_mm: float) -> str:
    if not report.numbers:
        return ""
    a = diameter_mm * report.rng.uniform(0.95, 1.05) / 10.0
    b = a * report.rng.uniform(0.6, 0.9)
    style = int(report.rng.integers(3))
    if style == 0:
        return f"{report.number(round(a, 1), 1)} x {report.number(round(b, 1), 1)} cm"
    if style == 1:
        return f"{round(a * 10):d} mm"
    return f"{report.number(round(a, 1), 1)} cm"


def _location_text(report: ReportText, lesion: LesionView) -> str:
    style = int(report.rng.integers(3))
    if style == 0:
        return f"series {report.exam.pet_series_number}, image {lesion.image_number}"
    if style == 1:
        return f"image {lesion.image_number}"
    return f"slice {lesion.image_number}"


def _change_words(lesion: LesionView) -> tuple[str, str]:
    """(adjective phrase, noun phrase) describing this lesion's change since baseline."""
    if lesion.prior_suvmax <= 0:
        return "new", "new uptake"
    ratio = lesion.suvmax / lesion.prior_suvmax
    if ratio <= 0.75:
        return "decreased", "interval decrease"
    if ratio >= 1.25:
        return "increased", "interval increase"
    return "unchanged", "no significant change"


def _lesion_sentence(report: ReportText, lesion: LesionView, site_cap: str) -> None:
    """Findings about one present lesion (values written only when the report writes numbers)."""
    r = report
    followup = r.exam.timepoint == "followup"
    suv = r.pick(SUV_WORDS)
    size = _size_text(r, lesion.diameter_mm)
    if not r.numbers:
        if lesion.is_new:
            r.add(
                r.pick(("New FDG-avid {site}. ", "Interval development of a hypermetabolic {site}. ")),
                site=lesion.site,
            )
        elif followup:
            adj, noun = _change_words(lesion)
            r.add(
                r.pick(("{Site} is {adj} in size and FDG avidity. ", "{Noun} in uptake of the {site}. ")),
                Site=site_cap,
                adj=adj,
                Noun=noun.capitalize(),
                site=lesion.site,
            )
        else:
            r.add(
                r.pick(("Intensely FDG-avid {site}. ", "{Site} with marked FDG uptake. ")),
                site=lesion.site,
                Site=site_cap,
            )
        return
    v = r.measure("lesion", lesion.suvmax, lesion.lesion_id)
    loc = _location_text(r, lesion)
    if lesion.is_new:
        r.add(
            r.pick(
                (
                    "New FDG-avid {site} measuring {size} ({loc}) with {suv} {v}. ",
                    "Interval development of a hypermetabolic {site}, {suv} {v}, {size}. ",
                    "There is a new {size} {site} with {suv} of {v}, not present previously. ",
                )
            ),
            site=lesion.site,
            size=size,
            loc=loc,
            suv=suv,
            v=v,
        )
    elif followup and lesion.prior_suvmax > 0 and r.rng.random() < 0.5:
        if lesion.prior_text and r.rng.random() < 0.7:
            p_value = float(lesion.prior_text.replace(",", "."))
            decimals = (
                len(lesion.prior_text.split(",")[-1].split(".")[-1])
                if re.search(r"[.,]", lesion.prior_text)
                else 0
            )
            p = Measure("prior", lesion.lesion_id, lesion.prior_suvmax, p_value, decimals)
        else:
            p = r.measure("prior", lesion.prior_suvmax, lesion.lesion_id)
        adj, noun = _change_words(lesion)
        pdate = (
            format_date(r.exam.prior_date, int(r.rng.integers(4))) if r.exam.prior_date else "the prior exam"
        )
        r.add(
            r.pick(
                (
                    "{Site} measuring {size} ({loc}) with {suv} {v}, previously {p} on {pdate}. ",
                    "{Site} now measures {size} with {suv} {v} (previously {p}). ",
                    "{Site}, {suv} {v} versus {p} on the prior exam, {adj}. ",
                    "{Noun} in the {site}, {suv} {v} (prior {suv} {p}), {size}. ",
                    "The {site} is {adj}, now {size} with an {suv} of {v}, compared to {p} on {pdate}. ",
                    "{Site}: {suv} {v} (prior {p}), {size} ({loc}). ",
                )
            ),
            Site=site_cap,
            site=lesion.site,
            size=size,
            loc=loc,
            suv=suv,
            v=v,
            p=p,
            pdate=pdate,
            adj=adj,
            Noun=noun.capitalize(),
        )
    elif followup:
        adj, noun = _change_words(lesion)
        r.add(
            r.pick(
                (
                    "{Site} measuring {size} with {suv} {v}, {adj} compared with the prior study. ",
                    "{Noun} in FDG uptake of the {site}, {suv} {v} ({loc}). ",
                    "Persistent uptake in the {site}, {suv} {v}, {size}. ",
                    "{Site} ({size}) with {suv} of {v}, {adj}. ",
                )
            ),
            Site=site_cap,
            site=lesion.site,
            size=size,
            loc=loc,
            suv=suv,
            v=v,
            adj=adj,
            Noun=noun.capitalize(),
        )
    else:
        r.add(
            r.pick(
                (
                    "{Site} measuring {size} ({loc}) with {suv} {v}. ",
                    "There is an FDG-avid {site} measuring {size}, {suv} {v} ({loc}). ",
                    "Hypermetabolic {site}, {size}, {suv} {v}. ",
                    "{Site} shows intense FDG uptake with a maximum SUV of {v}, measuring {size} ({loc}). ",
                    "{Site}: {size}, {suv} {v}. ",
                    "Intensely FDG-avid {site} ({size}; {suv} = {v}). ",
                    "An enlarged {site} shows increased metabolic activity ({suv} {v}; {size}). ",
                    "Focal uptake in the {site} ({loc}), SUV {v}. ",
                )
            ),
            Site=site_cap,
            site=lesion.site,
            size=size,
            loc=loc,
            suv=suv,
            v=v,
        )
    mirror_taken = any(
        other.site.startswith(lesion.mirror + " ") for other in r.exam.lesions if other.suvmax > 0
    )
    if lesion.contralateral > 0 and lesion.mirror and not mirror_taken and r.rng.random() < 0.35:
        c = r.measure("contralateral", lesion.contralateral, lesion.lesion_id)
        r.add(
            r.pick(
                (
                    "For comparison, contralateral node SUV max {c}. ",
                    "The contralateral {mirror} region measures SUVmax {c}. ",
                )
            ),
            c=c,
            mirror=lesion.mirror,
        )


def _resolved_sentence(report: ReportText, lesion: LesionView, site_cap: str) -> None:
    r = report
    if r.numbers and lesion.prior_suvmax > 0 and r.rng.random() < 0.35:
        p = r.measure("prior", lesion.prior_suvmax, lesion.lesion_id)
        r.add(
            r.pick(
                (
                    "Complete resolution of uptake in the previously seen {site} (previously SUVmax {p}). ",
                    "The {site}, SUVmax {p} on the baseline study, is no longer FDG avid. ",
                )
            ),
            site=lesion.site,
            p=p,
        )
        return
    r.add(
        r.pick(
            (
                "Previously described {site} has resolved. ",
                "No residual FDG uptake at the site of the previously seen {site}. ",
                "{Site} is no longer FDG avid. ",
                "Interval resolution of the {site}. ",
            )
        ),
        site=lesion.site,
        Site=site_cap,
    )


def _reference_sentence(report: ReportText) -> None:
    r, stats = report, report.exam.stats
    if not r.numbers:
        r.add(r.pick(("Physiologic hepatic background activity. ", "Normal liver and blood pool activity. ")))
        return
    style = int(r.rng.integers(7))
    if style == 5:
        r.add("SUVmax of normal liver {v}. ", v=r.measure("liver_max", stats["liver_suvmax"]))
    elif style == 6:
        r.add(
            "Reference regions: liver SUVmean {v}, blood pool SUVmean {w}. ",
            v=r.measure("liver_mean", stats["liver_suvmean"]),
            w=r.measure("blood_pool", stats["blood_pool_suvmean"]),
        )
    elif style == 0:
        r.add("Liver background SUVmax {v}. ", v=r.measure("liver_max", stats["liver_suvmax"]))
    elif style == 1:
        r.add("Reference liver SUVmean {v}. ", v=r.measure("liver_mean", stats["liver_suvmean"]))
    elif style == 2:
        r.add("Mediastinal blood pool SUV {v}. ", v=r.measure("blood_pool", stats["blood_pool_suvmean"]))
    elif style == 3:
        r.add(
            "Physiologic liver uptake (SUVmax {v}) and mediastinal blood pool (SUVmean {w}). ",
            v=r.measure("liver_max", stats["liver_suvmax"]),
            w=r.measure("blood_pool", stats["blood_pool_suvmean"]),
        )
    else:
        r.add("Hepatic background activity: SUVmean {v}. ", v=r.measure("liver_mean", stats["liver_suvmean"]))


def _physiology_sentence(report: ReportText) -> None:
    r, stats = report, report.exam.stats
    if r.numbers and r.rng.random() < 0.3 and stats.get("bladder_suvmax", 0) > 0:
        r.add(
            "Intense physiologic activity in the urinary bladder (SUVmax {v}). ",
            v=r.measure("bladder", stats["bladder_suvmax"]),
        )
    elif r.numbers and r.rng.random() < 0.2:
        r.add("Normal cerebral FDG distribution (SUVmax {v}). ", v=r.measure("brain", stats["brain_suvmax"]))
    else:
        r.add(
            r.pick(
                (
                    "Physiologic FDG activity in the brain, myocardium, kidneys and urinary bladder. ",
                    "Expected physiologic tracer distribution in the brain, heart, bowel and urinary tract. ",
                    "Normal physiologic uptake in the brain, myocardium and genitourinary system. ",
                )
            )
        )


def deauville(
    hottest: float, new_lesion: bool, blood_pool: float, liver_mean: float, liver_max: float
) -> int:
    """Deauville score of the hottest residual lesion against blood pool and liver (the reader's values)."""
    if new_lesion:
        return 5
    if hottest <= 0:
        return 1
    if hottest <= blood_pool:
        return 2
    if hottest <= liver_mean:
        return 3
    return 5 if hottest > 2.0 * liver_max else 4


IMPRESSIONS = {
    "CMR": (
        "Complete metabolic response.",
        "No residual FDG-avid disease, consistent with complete metabolic response.",
        "Resolution of all previously seen hypermetabolic lesions; complete metabolic response.",
    ),
    "PMR": (
        "Partial metabolic response with interval decrease in size and FDG avidity of the known lesions.",
        "Interval decrease in metabolic activity, consistent with partial metabolic response.",
        "Favorable response to therapy: partial metabolic response.",
    ),
    "SMD": (
        "Stable metabolic disease.",
        "No significant interval change in the known FDG-avid disease (stable metabolic disease).",
        "Overall unchanged appearance of the hypermetabolic lesions.",
    ),
    "PMD": (
        "Progressive metabolic disease.",
        "Interval increase in FDG-avid disease, consistent with progressive metabolic disease.",
        "Findings are consistent with disease progression.",
    ),
}
#: Impressions that state no category (the reader defers to the findings or hedges).
HEDGED_IMPRESSIONS = (
    "Findings as described above.",
    "Equivocal interval change in the known FDG-avid disease; correlation with the clinical course is "
    "recommended.",
    "Heterogeneous evolution of the known lesions, as detailed in the findings.",
)
#: The hedge of a reader who sees some lesions decrease and others increase (only written then).
MIXED_IMPRESSION = "Mixed response: some lesions decreased while others increased in FDG avidity."
#: Categories in order from best to worst; a discordant impression is one step off the numbers.
CATEGORY_ORDER = ("CMR", "PMR", "SMD", "PMD")


@dataclass(frozen=True)
class Reading:
    """The reader's own judgement of a follow-up exam, from the values the reader has (see REPORT_NOISE).

    ``baseline``, ``followup`` and ``reference`` are the reader's values: the ones the report prints
    where it prints them, otherwise unprinted readings drawn with the same noise.
    """

    baseline: float  # hottest baseline lesion SUVmax as the reader has it
    followup: float  # hottest follow-up lesion SUVmax as written (0 when none is left)
    reference: float  # liver SUVmean as the reader has it
    new_lesion: bool
    by_numbers: str  # PERCIST-style category of the four values above
    mode: str  # "numbers", "hedged" or "discordant"
    stated: str | None  # the category the impression states; None when hedged


def _reader_value(r: ReportText, kind: str, true_value: float, lesion_id: str = "") -> float:
    """The value the report printed for this quantity, else an unprinted reading with the same noise."""
    for m in r.mentions:
        if m.kind == kind and m.lesion_id == lesion_id:
            return m.value
    return r.measure(kind, true_value, lesion_id, r.reader_rng).value


def _reader_prior(r: ReportText, lesion: LesionView) -> float:
    """A lesion's baseline value as the reader has it: quoted here, else the baseline report's, else read."""
    for m in r.mentions:
        if m.kind == "prior" and m.lesion_id == lesion.lesion_id:
            return m.value
    if lesion.prior_text:
        return float(lesion.prior_text.replace(",", "."))
    return r.measure("prior", lesion.prior_suvmax, lesion.lesion_id, r.reader_rng).value


def _reader_hottest(r: ReportText) -> float:
    """The reader's value of the hottest lesion present now (0 when none is)."""
    return max(
        (_reader_value(r, "lesion", les.suvmax, les.lesion_id) for les in r.exam.lesions if les.suvmax > 0),
        default=0.0,
    )


def _step_off(category: str, exam: ExamView, rng: np.random.Generator) -> str:
    """One category step off ``category``: the reader judged on lesion number, else either way."""
    i = CATEGORY_ORDER.index(category)
    steps = [s for s in (-1, 1) if 0 <= i + s < len(CATEGORY_ORDER)]
    resolved = any(les.prior_suvmax > 0 and les.suvmax <= 0 for les in exam.lesions)
    new = any(les.is_new and les.suvmax > 0 for les in exam.lesions)
    if len(steps) == 2 and resolved != new:
        return CATEGORY_ORDER[i + (-1 if resolved else 1)]  # fewer lesions look better, more look worse
    return CATEGORY_ORDER[i + steps[int(rng.integers(len(steps)))]]


def _is_mixed(exam: ExamView) -> bool:
    """Some lesions decreased or resolved while others increased or are new."""
    words = {_change_words(les)[0] if les.suvmax > 0 else "resolved" for les in exam.lesions}
    return bool(words & {"decreased", "resolved"}) and bool(words & {"increased", "new"})


def read_followup(r: ReportText) -> Reading:
    """The reader's category of a follow-up exam and what the impression states (see REPORT_NOISE).

    Drawn after the findings are written and from ``r.reader_rng``, so the findings do not depend on it.
    """
    exam, impression = r.exam, REPORT_NOISE["impression"]
    baseline = max((_reader_prior(r, les) for les in exam.lesions if les.prior_suvmax > 0), default=0.0)
    followup = _reader_hottest(r)
    reference = _reader_value(r, "liver_mean", exam.stats["liver_suvmean"])
    new = any(les.is_new and les.suvmax > 0 for les in exam.lesions)
    by_numbers = response_category(baseline, followup, reference_suv=reference, new_lesion=new)
    u = r.reader_rng.random()
    if u < impression["hedged_fraction"]:
        mode, stated = "hedged", None
    elif u < impression["hedged_fraction"] + impression["discordant_fraction"]:
        mode, stated = "discordant", _step_off(by_numbers, exam, r.reader_rng)
    else:
        mode, stated = "numbers", by_numbers
    return Reading(baseline, followup, reference, new, by_numbers, mode, stated)


def _write_impression(r: ReportText, first: str, second: str) -> Reading | None:
    """The IMPRESSION section: the reader's category at follow-up, the disease at baseline."""
    exam, rng = r.exam, r.rng
    followup = exam.timepoint == "followup"
    present = [les for les in exam.lesions if les.suvmax > 0]
    reading = read_followup(r) if followup else None
    r.add("\nIMPRESSION:\n")
    if reading is not None:
        if reading.stated is not None:
            r.add(first + r.pick(IMPRESSIONS[reading.stated]) + " ")
        elif _is_mixed(exam) and r.reader_rng.random() < 0.5:
            r.pick(HEDGED_IMPRESSIONS)  # the same draws as any other impression
            r.add(first + MIXED_IMPRESSION + " ")
        else:
            r.add(first + r.pick(HEDGED_IMPRESSIONS) + " ")
        if reading.new_lesion:
            r.add("New FDG-avid lesion(s) as described. ")
        elif rng.random() < 0.6:
            r.add("No new FDG-avid lesions. ")
    else:
        impressions = (
            "Hypermetabolic disease compatible with {ind}",
            "FDG-avid {ind} with {n} site(s) of disease",
        )
        r.add(
            first + (r.pick(impressions) if r.numbers else impressions[0]) + ". ",
            ind=exam.indication,
            n=len(present),
        )
    if present and r.numbers and rng.random() < 0.3:
        top = max(present, key=lambda les: les.suvmax)
        previous = [m for m in r.mentions if m.kind == "lesion" and m.lesion_id == top.lesion_id]
        if previous:
            m = previous[0]
            r.add(
                "Most intense lesion: {site}, SUVmax {v}. ",
                site=top.site,
                v=Measure("lesion", m.lesion_id, m.true_value, m.value, m.decimals),
            )
    if exam.lymphoma and r.numbers and (followup or rng.random() < 0.3):
        hottest = reading.followup if reading is not None else _reader_hottest(r)
        stats = exam.stats
        score = deauville(
            hottest,
            reading is not None and reading.new_lesion,
            _reader_value(r, "blood_pool", stats["blood_pool_suvmean"]),
            _reader_value(r, "liver_mean", stats["liver_suvmean"]),
            _reader_value(r, "liver_max", stats["liver_suvmax"]),
        )
        r.add(
            second + r.pick(("Deauville score {d}.", "Deauville {d}.", "Deauville 5-point scale: {d}.")),
            d=score,
        )
    return reading


def write_report(exam: ExamView, rng: np.random.Generator) -> tuple[str, list[Mention]]:
    """The report text of ``exam`` and the SUV values it writes."""
    text, mentions, _ = write_report_with_reading(exam, rng)
    return text, mentions


def write_report_with_reading(
    exam: ExamView, rng: np.random.Generator
) -> tuple[str, list[Mention], Reading | None]:
    """The report text of ``exam``, the SUV values it writes and the reader's judgement (follow-up only).

    The impression draws from ``rng`` exactly as many numbers as before the reader's judgement existed
    (one phrase, then the optional sentences); everything new draws from ``ReportText.reader_rng``.
    """
    numbers = rng.random() >= REPORT_NOISE["no_suv_numbers_fraction"]
    comma = rng.random() < REPORT_NOISE["decimal_comma_fraction"]
    r = ReportText(exam, rng, comma, numbers)
    followup = exam.timepoint == "followup"
    if rng.random() < 0.5:
        exam_lines = (
            "EXAMINATION: FDG PET/CT skull base to mid-thigh\n\n",
            "EXAM: PET/CT WHOLE BODY F-18 FDG\n\n",
        )
        r.add(r.pick(exam_lines) if numbers else exam_lines[0])
    # Reports without numbers number nothing, not even their impression.
    first, second = ("1. ", "\n2. ") if numbers else ("- ", "\n- ")
    if followup:
        r.add(
            r.pick(
                (
                    "INDICATION: {Ind}, restaging after therapy.\n\n",
                    "INDICATION: Known {ind}. Assess treatment response.\n\n",
                    "INDICATION: Interim response assessment, {ind}.\n\n",
                )
            ),
            ind=exam.indication,
            Ind=exam.indication[0].upper() + exam.indication[1:],
        )
    else:
        r.add(
            r.pick(
                (
                    "INDICATION: Initial staging of {ind}.\n\n",
                    "INDICATION: Newly diagnosed {ind}, staging.\n\n",
                    "INDICATION: Pretreatment evaluation, {ind}.\n\n",
                )
            ),
            ind=exam.indication,
        )
    if numbers:
        mbq = exam.dose_mbq
        r.add(
            r.pick(
                (
                    "TECHNIQUE: {mbq} MBq F-18 FDG was administered intravenously. After an uptake time of "
                    "{up} minutes, PET was acquired from the skull base to the mid-thigh with low-dose CT "
                    "for attenuation correction. Blood glucose {glu} mg/dL. Patient weight {w} kg.\n\n",
                    "TECHNIQUE: Following injection of {mci} mCi ({mbq} MBq) of 18F-FDG and a {up} minute "
                    "uptake period, whole-body PET/CT was performed. Fasting glucose {mmol} mmol/L.\n\n",
                    "TECHNIQUE: Whole-body PET/CT {up} min after i.v. injection of {mbq} MBq FDG; "
                    "non-contrast CT for attenuation correction and localization.\n\n",
                )
            ),
            mbq=f"{mbq:.0f}",
            mci=r.number(round(mbq / 37.0, 1), 1),
            up=exam.uptake_min,
            glu=int(rng.integers(78, 140)),
            mmol=r.number(round(rng.uniform(4.3, 7.6), 1), 1),
            w=r.number(round(exam.weight_kg, 1), 1),
        )
    else:
        r.add(
            "TECHNIQUE: Standard whole-body FDG PET/CT protocol, low-dose CT for attenuation correction.\n\n"
        )
    if followup and exam.prior_date:
        r.add(
            r.pick(
                (
                    "COMPARISON: PET/CT dated {d}.\n\n",
                    "COMPARISON: Prior PET/CT of {d}.\n\n",
                    "COMPARISON: {d}.\n\n",
                )
            ),
            d=format_date(exam.prior_date, int(rng.integers(4))) if numbers else "prior PET/CT",
        )
    else:
        r.add(r.pick(("COMPARISON: None.\n\n", "COMPARISON: No prior PET/CT available.\n\n")))

    r.add("FINDINGS:\n")
    physiology_first = rng.random() < 0.5
    if physiology_first:
        _physiology_sentence(r)
        r.add("\n")
    if rng.random() < 0.4:
        _reference_sentence(r)
        r.add("\n")
    for region in ("neck", "chest", "abdomen", "bone"):
        r.add(r.pick(REGION_HEADINGS[region]) + " ")
        here = sorted(
            (
                les
                for les in exam.lesions
                if les.region == region or (region == "abdomen" and les.region == "pelvis")
            ),
            key=lambda les: -les.suvmax,
        )
        for les in here:
            site_cap = les.site[0].upper() + les.site[1:]
            if les.suvmax > 0:
                _lesion_sentence(r, les, site_cap)
            elif les.prior_suvmax > 0:
                _resolved_sentence(r, les, site_cap)
        if not any(les.suvmax > 0 for les in here):
            r.add(r.pick(REGION_NEGATIVES[region]) + " ")
        if region == "abdomen" and (not r.mentions or rng.random() < 0.5):
            _reference_sentence(r)
        r.add("\n")
    if not physiology_first:
        r.add(r.pick(("OTHER: ", "Other: ", "")))
        _physiology_sentence(r)
        r.add("\n")

    reading = _write_impression(r, first, second)
    return r.text().strip() + "\n", r.mentions, reading
