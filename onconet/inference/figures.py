"""Per-pair check figures: coronal SUV maximum-intensity projections of both exams and the prediction.

The volumes are the cached SUV NIfTI files (RAS+: axis 0 left->right, 1 posterior->anterior, 2 feet->head),
so a coronal MIP is the maximum over axis 1, shown with the head up and the patient's right on the left
(radiological convention), both exams on one SUV scale.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from onconet.data.cache import read_nifti, write_atomic_bytes
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


def figure_name(row: dict) -> str:
    """The PNG file name of a pair (its two study UIDs)."""
    return f"{row['baseline_study_uid']}__{row['followup_study_uid']}.png"


def save_pair_figure(
    row: dict, baseline_suv: str | os.PathLike, followup_suv: str | os.PathLike, out_dir: str | os.PathLike
) -> Path:
    """Write ``out_dir/<baseline UID>__<follow-up UID>.png`` (atomically) and return its path."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 5.2), dpi=100)
    axes = figure.subplots(1, 2)
    for ax, path, exam in zip(axes, (baseline_suv, followup_suv), ("baseline", "follow-up"), strict=True):
        array, affine = read_nifti(path)
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        ax.imshow(
            coronal_mip(array),
            cmap="gray_r",
            vmin=0.0,
            vmax=SUV_WINDOW,
            aspect=float(spacing[2] / spacing[0]),
            interpolation="nearest",
        )
        date = row.get(f"{'baseline' if exam == 'baseline' else 'followup'}_date", "")
        ax.set_title(f"{exam} {date}\nSUVmax {float(array.max()):.1f}", fontsize=9)
        ax.set_axis_off()
    probs = ", ".join(f"{c.removeprefix('prob_')} {float(row[c]):.2f}" for c in PROBABILITY_COLUMNS)
    figure.suptitle(f"predicted: {row['predicted']}  ({probs})", fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    out = Path(out_dir) / figure_name(row)
    write_atomic_bytes(out, buffer.getvalue())
    return out
