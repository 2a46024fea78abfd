"""The anatomical body phantom: tissues painted from simple solids, CT numbers and FDG uptake per tissue.

Body coordinates are DICOM LPS in mm with the origin on the body axis at the vertex (z = 0, feet are
negative z, +x is the patient's left, +y posterior). An exam places the body in the scanner with a small
table offset. Sizes scale with the patient's height and body-mass index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from onconet.data.synthetic.geometry import Cylinder, Ellipsoid, Grid, Shape, paint


class Tissue(IntEnum):
    """Tissue labels of the phantom (painted in this order of precedence, later wins)."""

    AIR = 0
    FAT = 1
    SOFT_TISSUE = 2
    LUNG = 3
    CORTICAL_BONE = 4
    MARROW = 5
    BRAIN = 6
    MYOCARDIUM = 7
    BLOOD = 8
    LIVER = 9
    SPLEEN = 10
    KIDNEY = 11
    BLADDER = 12
    BREAST = 13


#: CT numbers (HU) of each tissue.
TISSUE_HU: dict[Tissue, float] = {
    Tissue.AIR: -1000.0,
    Tissue.FAT: -100.0,
    Tissue.SOFT_TISSUE: 40.0,
    Tissue.LUNG: -850.0,
    Tissue.CORTICAL_BONE: 950.0,
    Tissue.MARROW: 250.0,
    Tissue.BRAIN: 35.0,
    Tissue.MYOCARDIUM: 45.0,
    Tissue.BLOOD: 40.0,
    Tissue.LIVER: 60.0,
    Tissue.SPLEEN: 50.0,
    Tissue.KIDNEY: 32.0,
    Tissue.BLADDER: 8.0,
    Tissue.BREAST: -40.0,
}


@dataclass(frozen=True)
class Anatomy:
    """One patient's body: painted solids and the landmarks lesions and reference regions use."""

    shapes: tuple[tuple[Tissue, Shape], ...]
    landmarks: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    z_scale: float = 1.0
    lateral_scale: float = 1.0


def build_anatomy(height_m: float, weight_kg: float, sex: str, bladder_fill: float = 1.0) -> Anatomy:
    """The phantom of a patient of this height, weight and sex (bladder_fill scales the bladder)."""
    zs = float(np.clip(height_m / 1.75, 0.9, 1.06))
    bmi = weight_kg / height_m**2
    ls = float(np.clip(np.sqrt(bmi / 24.0), 0.85, 1.1))
    fat_mm = float(np.clip(6.0 + 1.1 * (bmi - 18.0), 5.0, 28.0))

    def z(v: float) -> float:
        return v * zs

    def x(v: float) -> float:
        return v * ls

    torso_semi = (x(158.0), x(108.0))
    pelvis_semi = (x(165.0), x(108.0))
    shapes: list[tuple[Tissue, Shape]] = []

    def add(tissue: Tissue, shape: Shape) -> None:
        shapes.append((tissue, shape))

    def body_part(shape_outer: Shape, shape_inner: Shape) -> None:
        add(Tissue.FAT, shape_outer)
        add(Tissue.SOFT_TISSUE, shape_inner)

    # Outline: fat under the skin, muscle and organs inside.
    head = Ellipsoid((0.0, 5.0, z(-105.0)), (76.0, 95.0, z(105.0)))
    add(Tissue.SOFT_TISSUE, head)
    body_part(
        Cylinder((0.0, 12.0), (58.0, 60.0), (z(-275.0), z(-185.0))),
        Cylinder((0.0, 12.0), (52.0, 54.0), (z(-275.0), z(-185.0))),
    )
    for outer, z_range in ((torso_semi, (z(-800.0), z(-262.0))), (pelvis_semi, (z(-905.0), z(-790.0)))):
        body_part(
            Cylinder((0.0, 0.0), outer, z_range),
            Cylinder((0.0, 0.0), (outer[0] - fat_mm, outer[1] - fat_mm), z_range),
        )
    shoulders = Ellipsoid((0.0, 0.0, z(-290.0)), (torso_semi[0], torso_semi[1], z(45.0)))
    add(Tissue.SOFT_TISSUE, shoulders)
    for side in (-1.0, 1.0):
        body_part(
            Cylinder((side * x(88.0), 0.0), (x(78.0), x(80.0)), (z(-1100.0), z(-900.0))),
            Cylinder((side * x(88.0), 0.0), (x(78.0) - fat_mm, x(80.0) - fat_mm), (z(-1100.0), z(-900.0))),
        )
    if sex == "F":
        for side in (-1.0, 1.0):
            add(
                Tissue.BREAST,
                Ellipsoid((side * x(72.0), -torso_semi[1] - 10.0, z(-420.0)), (55.0, 38.0, 50.0)),
            )

    # Skull and brain.
    add(Tissue.CORTICAL_BONE, Ellipsoid((0.0, 5.0, z(-102.0)), (70.0, 88.0, z(96.0))))
    add(Tissue.BRAIN, Ellipsoid((0.0, 5.0, z(-100.0)), (63.0, 80.0, z(86.0))))

    # Thorax: lungs, heart with blood pool, descending aorta.
    for side in (-1.0, 1.0):
        add(Tissue.LUNG, Ellipsoid((side * x(72.0), 8.0, z(-405.0)), (x(58.0), x(80.0), z(118.0))))
    heart = (x(22.0), -x(28.0), z(-455.0))
    add(Tissue.MYOCARDIUM, Ellipsoid(heart, (x(52.0), x(46.0), z(52.0))))
    add(Tissue.BLOOD, Ellipsoid(heart, (x(36.0), x(30.0), z(36.0))))
    aorta_xy = (x(22.0), x(38.0))
    add(Tissue.BLOOD, Cylinder(aorta_xy, (12.0, 12.0), (z(-760.0), z(-330.0))))

    # Abdomen: liver, spleen, kidneys.
    liver_c = (-x(62.0), -x(6.0), z(-560.0))
    add(Tissue.LIVER, Ellipsoid(liver_c, (x(88.0), x(80.0), z(72.0))))
    add(Tissue.SPLEEN, Ellipsoid((x(92.0), x(35.0), z(-548.0)), (x(32.0), x(42.0), z(52.0))))
    for side in (-1.0, 1.0):
        add(Tissue.KIDNEY, Ellipsoid((side * x(68.0), x(52.0), z(-640.0)), (26.0, 28.0, z(52.0))))

    # Skeleton: spine, pelvis, femoral heads (cortex painted first, marrow inside).
    spine_xy = (0.0, x(70.0))
    add(Tissue.CORTICAL_BONE, Cylinder(spine_xy, (19.0, 19.0), (z(-860.0), z(-200.0))))
    add(Tissue.MARROW, Cylinder(spine_xy, (15.0, 15.0), (z(-860.0), z(-200.0))))
    for side in (-1.0, 1.0):
        ilium = (side * x(100.0), x(42.0), z(-770.0))
        add(Tissue.CORTICAL_BONE, Ellipsoid(ilium, (24.0, x(55.0), z(62.0))))
        add(Tissue.MARROW, Ellipsoid(ilium, (18.0, x(49.0), z(56.0))))
        femur = (side * x(88.0), 0.0, z(-880.0))
        add(Tissue.CORTICAL_BONE, Ellipsoid(femur, (25.0, 25.0, 25.0)))
        add(Tissue.MARROW, Ellipsoid(femur, (20.0, 20.0, 20.0)))

    bladder_c = (0.0, -x(35.0), z(-845.0))
    fill = float(np.clip(bladder_fill, 0.5, 1.4))
    add(Tissue.BLADDER, Ellipsoid(bladder_c, (42.0 * fill, 34.0 * fill, 32.0 * fill)))

    landmarks = {
        "brain": (0.0, 5.0, z(-100.0)),
        "heart": heart,
        "aorta": (aorta_xy[0], aorta_xy[1], z(-520.0)),
        "liver": liver_c,
        # Reference ROI in the right lobe, away from where liver lesions are placed.
        "liver_roi": (liver_c[0] - x(28.0), liver_c[1] + x(10.0), liver_c[2] + z(10.0)),
        "bladder": bladder_c,
        "spine": (spine_xy[0], spine_xy[1], z(-560.0)),
    }
    return Anatomy(tuple(shapes), landmarks, z_scale=zs, lateral_scale=ls)


def tissue_labels(grid: Grid, anatomy: Anatomy, offset: tuple[float, float, float]) -> np.ndarray:
    """Tissue label (uint8) of every voxel centre of ``grid`` for the body placed at ``offset`` (mm)."""
    labels = np.zeros(grid.shape, dtype=np.uint8)
    for tissue, shape in anatomy.shapes:
        paint(labels, grid, shape, int(tissue), offset)
    return labels


def draw_uptake(rng: np.random.Generator) -> dict[Tissue, float]:
    """Physiological FDG uptake (SUVbw) per tissue for one exam; brain and bladder are often hot."""
    liver = rng.uniform(1.8, 2.7)
    return {
        Tissue.AIR: 0.0,
        Tissue.FAT: rng.uniform(0.25, 0.4),
        Tissue.SOFT_TISSUE: rng.uniform(0.6, 0.9),
        Tissue.LUNG: rng.uniform(0.35, 0.55),
        Tissue.CORTICAL_BONE: rng.uniform(0.3, 0.5),
        Tissue.MARROW: rng.uniform(1.2, 1.9),
        Tissue.BRAIN: rng.uniform(6.0, 13.0),
        # Myocardial uptake ranges from suppressed to intense (fasting state).
        Tissue.MYOCARDIUM: float(np.exp(rng.uniform(np.log(1.6), np.log(12.0)))),
        Tissue.BLOOD: rng.uniform(1.5, 2.1),
        Tissue.LIVER: liver,
        Tissue.SPLEEN: liver * rng.uniform(0.8, 0.95),
        Tissue.KIDNEY: rng.uniform(2.5, 5.5),
        Tissue.BLADDER: float(np.exp(rng.uniform(np.log(5.0), np.log(40.0)))),
        Tissue.BREAST: rng.uniform(0.6, 1.0),
    }


def lookup(labels: np.ndarray, values: dict[Tissue, float], dtype=np.float32) -> np.ndarray:
    """The volume with each tissue label replaced by its value."""
    table = np.zeros(len(Tissue), dtype=dtype)
    for tissue, value in values.items():
        table[int(tissue)] = value
    return table[labels]
