"""Per-pair check figures: coronal SUV maximum-intensity projections of both exams and the prediction.

The volumes are SUV arrays on the geometry contract (RAS+: axis 0 left->right, 1 posterior->anterior,
2 feet->head), so a coronal MIP is the maximum over axis 1, shown with the head up and the patient's right on
the left (radiological convention), both exams on one SUV scale. The DataLoader workers reduce each volume
to its :class:`MipView` (a small 2D image), so the volumes never travel to the process that draws.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onconet.data.cache import write_atomic_bytes
from onconet.models.module import PROBABILITY_COLUMNS

#: Upper end of the grey scale (SUV), the usual reading window of FDG MIPs.
SUV_WINDOW = 10.0


def coronal_mip(suv: np.ndarray) -> np.ndarray:
    """Maximum over the anterior-posterior axis, as an image with the head at the top row.

    Example:
        >>> volume = np.zeros((3, 4, 5)); volume[0, 2, 4] = 7.0
        >>> image = coronal_mip(volume)
        >>> image.shape, float(image[0, 0])
        ((5, 3), 7.0)
    """
    return np.asarray(suv).max(axis=1).T[::-1]


@dataclass  # not frozen: Lightning rebuilds dataclasses in a batch when it moves it to the device
class MipView:
    """What a figure shows of one exam: the coronal MIP, its pixel aspect (height / width), the SUVmax."""

    image: np.ndarray
    aspect: float
    suv_max: float


def mip_view(suv: np.ndarray, affine: np.ndarray) -> MipView:
    """The :class:`MipView` of an SUV volume on ``affine``."""
    spacing = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    return MipView(coronal_mip(suv).astype(np.float32), float(spacing[2] / spacing[0]), float(np.max(suv)))


def figure_name(row: dict) -> str:
    """The PNG file name of a pair (its two study UIDs)."""
    return f"{row['baseline_study_uid']}__{row['followup_study_uid']}.png"


def save_pair_figure(row: dict, baseline: MipView, followup: MipView, out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/<baseline UID>__<follow-up UID>.png`` (atomically) and return its path."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 5.2), dpi=100)
    axes = figure.subplots(1, 2)
    for ax, view, exam in zip(axes, (baseline, followup), ("baseline", "follow-up"), strict=True):
        ax.imshow(
            view.image, cmap="gray_r", vmin=0.0, vmax=SUV_WINDOW, aspect=view.aspect, interpolation="nearest"
        )
        date = row.get(f"{'baseline' if exam == 'baseline' else 'followup'}_date", "")
        ax.set_title(f"{exam} {date}\nSUVmax {view.suv_max:.1f}", fontsize=9)
        ax.set_axis_off()
    probs = ", ".join(f"{c.removeprefix('prob_')} {float(row[c]):.2f}" for c in PROBABILITY_COLUMNS)
    figure.suptitle(f"predicted: {row['predicted']}  ({probs})", fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    out = Path(out_dir) / figure_name(row)
    write_atomic_bytes(out, buffer.getvalue())
    return out
