"""Tumour sites, diagnoses and the baseline lesions of a synthetic patient.

Positions are body coordinates of a reference 1.75 m adult (see ``phantom``); x and y scale with the
patient's build and z with the height, like the organs do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from onconet.data.synthetic.phantom import Anatomy


@dataclass(frozen=True)
class LesionSite:
    """A place where a lesion can grow.

    Attributes:
        name: how a report names it ("right axillary lymph node").
        region: the report section it belongs to (neck, chest, abdomen, pelvis, bone).
        position: reference body coordinates (mm) of its centre.
        diameter_mm: range of baseline diameters.
        hu: CT number of the lesion.
        kind: node, lung, liver, bone or breast (wording and response behaviour).
        mirror: the site name on the other side, for contralateral comparisons (empty if midline).
    """

    name: str
    region: str
    position: tuple[float, float, float]
    diameter_mm: tuple[float, float]
    hu: float
    kind: str
    mirror: str = ""


def _node(name: str, region: str, pos: tuple[float, float, float], mirror: str = "") -> LesionSite:
    return LesionSite(name, region, pos, (12.0, 32.0), 38.0, "node", mirror)


LESION_SITES: dict[str, LesionSite] = {
    s.name: s
    for s in (
        _node("right level II cervical lymph node", "neck", (-38.0, -5.0, -215.0), "left level II"),
        _node("left level III cervical lymph node", "neck", (40.0, 0.0, -240.0), "right level III"),
        _node("right supraclavicular lymph node", "neck", (-60.0, 0.0, -275.0), "left supraclavicular"),
        _node("left supraclavicular lymph node", "neck", (62.0, 0.0, -272.0), "right supraclavicular"),
        _node("right axillary lymph node", "chest", (-126.0, 10.0, -330.0), "left axillary"),
        _node("left axillary lymph node", "chest", (126.0, 10.0, -335.0), "right axillary"),
        _node("right paratracheal lymph node", "chest", (-18.0, -5.0, -345.0)),
        _node("subcarinal lymph node", "chest", (0.0, 18.0, -382.0)),
        _node("right hilar lymph node", "chest", (-42.0, 5.0, -410.0), "left hilar"),
        LesionSite(
            "right upper lobe pulmonary nodule", "chest", (-85.0, 10.0, -340.0), (10.0, 30.0), 30.0, "lung"
        ),
        LesionSite(
            "right lower lobe pulmonary nodule", "chest", (-80.0, 38.0, -468.0), (10.0, 28.0), 30.0, "lung"
        ),
        LesionSite(
            "left lower lobe pulmonary nodule", "chest", (82.0, 40.0, -472.0), (10.0, 28.0), 30.0, "lung"
        ),
        LesionSite("left breast mass", "chest", (72.0, -118.0, -415.0), (15.0, 36.0), 35.0, "breast"),
        LesionSite(
            "hepatic segment VIII lesion", "abdomen", (-50.0, 25.0, -515.0), (15.0, 42.0), 35.0, "liver"
        ),
        LesionSite(
            "hepatic segment IVb lesion", "abdomen", (-25.0, -45.0, -565.0), (15.0, 38.0), 35.0, "liver"
        ),
        LesionSite(
            "hepatic segment VI lesion", "abdomen", (-95.0, -10.0, -612.0), (15.0, 40.0), 35.0, "liver"
        ),
        _node("aortocaval lymph node", "abdomen", (0.0, 20.0, -690.0)),
        _node("mesenteric lymph node", "abdomen", (20.0, -55.0, -700.0)),
        _node("right external iliac lymph node", "pelvis", (-85.0, -45.0, -800.0), "left external iliac"),
        _node("left external iliac lymph node", "pelvis", (85.0, -45.0, -805.0), "right external iliac"),
        LesionSite("T6 vertebral body lesion", "bone", (0.0, 66.0, -390.0), (12.0, 24.0), 650.0, "bone"),
        LesionSite("L3 vertebral body lesion", "bone", (0.0, 66.0, -690.0), (12.0, 24.0), 80.0, "bone"),
        LesionSite("right iliac bone lesion", "bone", (-100.0, 45.0, -765.0), (12.0, 30.0), 600.0, "bone"),
    )
}


@dataclass(frozen=True)
class Diagnosis:
    """A cancer type: its indication text, its primary sites and where it spreads."""

    name: str
    indication: str
    primaries: tuple[str, ...]
    spread: tuple[str, ...]
    sex: str = ""  # "F" when only women have it
    lymphoma: bool = False


_NODES_ALL = tuple(n for n, s in LESION_SITES.items() if s.kind == "node")
_LIVER = tuple(n for n, s in LESION_SITES.items() if s.kind == "liver")
_LUNG = tuple(n for n, s in LESION_SITES.items() if s.kind == "lung")
_BONE = tuple(n for n, s in LESION_SITES.items() if s.kind == "bone")

DIAGNOSES: tuple[Diagnosis, ...] = (
    Diagnosis(
        "dlbcl",
        "diffuse large B-cell lymphoma",
        _NODES_ALL,
        (*_NODES_ALL, "hepatic segment VI lesion"),
        lymphoma=True,
    ),
    Diagnosis("hodgkin", "classical Hodgkin lymphoma", _NODES_ALL[:9], _NODES_ALL, lymphoma=True),
    Diagnosis(
        "nsclc",
        "non-small cell lung cancer",
        _LUNG,
        (
            "right hilar lymph node",
            "right paratracheal lymph node",
            "subcarinal lymph node",
            "right supraclavicular lymph node",
            *_BONE,
            *_LIVER,
        ),
    ),
    Diagnosis(
        "breast",
        "invasive ductal carcinoma of the left breast",
        ("left breast mass",),
        ("left axillary lymph node", "left supraclavicular lymph node", *_BONE, *_LIVER, *_LUNG),
        sex="F",
    ),
    Diagnosis(
        "colorectal",
        "metastatic colorectal adenocarcinoma",
        _LIVER,
        (*_LIVER, "aortocaval lymph node", "mesenteric lymph node", *_LUNG),
    ),
    Diagnosis(
        "melanoma",
        "metastatic melanoma",
        ("right axillary lymph node", "left axillary lymph node"),
        (*_NODES_ALL, *_LUNG, *_LIVER, *_BONE),
    ),
    Diagnosis(
        "head_neck",
        "squamous cell carcinoma of the oropharynx",
        ("right level II cervical lymph node", "left level III cervical lymph node"),
        ("right supraclavicular lymph node", "left supraclavicular lymph node", *_LUNG),
    ),
)


@dataclass
class Lesion:
    """One lesion of one patient, followed from baseline to follow-up.

    ``position`` is in body coordinates (mm). ``suv_target`` maps timepoint to the planned SUVmax
    (0 = resolved / absent); ``diameter`` to the diameter in mm.
    """

    lesion_id: str
    site: LesionSite
    position: tuple[float, float, float]
    diameter: dict[str, float] = field(default_factory=dict)
    suv_target: dict[str, float] = field(default_factory=dict)
    is_new: bool = False

    def present(self, timepoint: str) -> bool:
        return self.suv_target.get(timepoint, 0.0) > 0.0 and self.diameter.get(timepoint, 0.0) > 0.0


def site_position(site: LesionSite, anatomy: Anatomy, rng: np.random.Generator, jitter_mm: float = 5.0):
    """The body coordinates of ``site`` in this anatomy, with a small random jitter."""
    x, y, z = site.position
    ls, zs = anatomy.lateral_scale, anatomy.z_scale
    j = rng.uniform(-jitter_mm, jitter_mm, size=3)
    if site.kind == "bone":
        j = j * 0.3  # stay inside the bone
    # Breasts sit on the anterior body surface (108 mm in front of the axis for the reference build).
    y_body = -108.0 * ls - 10.0 if site.kind == "breast" else y * ls
    return (float(x * ls + j[0]), float(y_body + j[1]), float(z * zs + j[2]))


def choose_diagnosis(rng: np.random.Generator, sex: str) -> Diagnosis:
    """A diagnosis that fits the patient's sex."""
    options = [d for d in DIAGNOSES if not d.sex or d.sex == sex]
    return options[int(rng.integers(len(options)))]


def draw_sites(
    rng: np.random.Generator,
    diagnosis: Diagnosis,
    anatomy: Anatomy,
    count: int,
    min_gap_mm: float,
    exclude: tuple[str, ...] = (),
    existing: tuple[tuple[float, float, float], ...] = (),
) -> list[tuple[LesionSite, tuple[float, float, float]]]:
    """Up to ``count`` distinct lesion sites of a diagnosis, each ``min_gap_mm`` clear of the others."""
    chosen: list[tuple[LesionSite, tuple[float, float, float]]] = []
    taken = set(exclude)
    placed = list(existing)
    first = [n for n in diagnosis.primaries if n not in taken]
    pool = [n for n in diagnosis.spread if n not in taken]
    order: list[str] = []
    if first:
        order.append(first[int(rng.integers(len(first)))])
    order += [pool[i] for i in rng.permutation(len(pool))]
    for name in order:
        if len(chosen) >= count or name in taken:
            continue
        site = LESION_SITES[name]
        pos = site_position(site, anatomy, rng)
        if all(np.linalg.norm(np.subtract(pos, p)) >= min_gap_mm for p in placed):
            chosen.append((site, pos))
            placed.append(pos)
            taken.add(name)
    return chosen
