"""MONAI dictionary transforms from the NIfTI cache to model tensors.

A sample is a dict with the paths of a pair's four cached volumes (``baseline_suv``, ``baseline_ct``,
``followup_suv``, ``followup_ct``, see :data:`IMAGE_KEYS`) plus identifiers and labels, which pass
through untouched. The deterministic part (load with nibabel, channel first, RAS orientation,
resampling to ``spacing`` mm, SUV and HU normalisation, centre crop or pad to ``spatial_size``) is what
the DataModule caches in memory; the random part (training only) flips the four volumes along the same
axes (by default left-right only: a body mirrored left-right is still a plausible body, one upside down
is not) and jitters the SUV scale of both exams by the same factor, so the pair's label stays true. Last,
SUV and CT are stacked into 2-channel ``baseline`` and ``followup`` tensors (channel 0 SUV, 1 CT).

Normalisation maps background to 0, so padding with zeros means "no uptake" and "air":
SUV ``log1p``: log(1 + SUV) / log(1 + suv_max) (SUV 0 -> 0, suv_max -> 1, hotter above 1);
SUV ``clip``: clip(SUV, 0, suv_max) / suv_max; CT: clip(HU, lo, hi) mapped to 0..1 (lo = -1000 air -> 0).

Example:
    >>> transform = pair_transforms(spacing=(8.0, 8.0, 8.0), spatial_size=(32, 32, 32), train=True)
    >>> [type(t).__name__ for t in transform.transforms][:4]
    ['LoadImaged', 'EnsureChannelFirstd', 'Orientationd', 'Spacingd']
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    ConcatItemsd,
    DeleteItemsd,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    MapTransform,
    Orientationd,
    RandFlipd,
    RandScaleIntensityd,
    ResizeWithPadOrCropd,
    ScaleIntensityRanged,
    Spacingd,
)

from onconet.errors import ConfigError

EXAMS: tuple[str, ...] = ("baseline", "followup")
SUV_KEYS: tuple[str, ...] = tuple(f"{exam}_suv" for exam in EXAMS)
CT_KEYS: tuple[str, ...] = tuple(f"{exam}_ct" for exam in EXAMS)
IMAGE_KEYS: tuple[str, ...] = (*SUV_KEYS, *CT_KEYS)
#: Channel order of each stacked exam tensor.
CHANNELS: tuple[str, ...] = ("suv", "ct")
SuvScaling = Literal["log1p", "clip"]


class NormaliseSuvd(MapTransform):
    """SUV -> ``log1p``: log(1 + SUV) / log(1 + suv_max), or ``clip``: clip(SUV, 0, suv_max) / suv_max.

    Negative SUV (noise, reconstruction undershoot) is set to 0 first.

    Example:
        >>> out = NormaliseSuvd(["suv"], "clip", 20.0)({"suv": torch.tensor([-1.0, 5.0, 40.0])})
        >>> out["suv"].tolist()
        [0.0, 0.25, 1.0]
    """

    def __init__(self, keys: KeysCollection, scaling: SuvScaling = "log1p", suv_max: float = 20.0) -> None:
        super().__init__(keys)
        if scaling not in ("log1p", "clip"):
            raise ConfigError(f"data.suv_scaling {scaling!r}: use 'log1p' or 'clip'")
        if not suv_max > 0:
            raise ConfigError(f"data.suv_max must be > 0, got {suv_max}")
        self.scaling, self.suv_max = scaling, float(suv_max)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        for key in self.key_iterator(out):
            suv = (
                out[key].clamp(min=0.0) if isinstance(out[key], torch.Tensor) else np.clip(out[key], 0, None)
            )
            if self.scaling == "log1p":
                out[key] = (suv.log1p() if isinstance(suv, torch.Tensor) else np.log1p(suv)) / math.log1p(
                    self.suv_max
                )
            else:
                out[key] = suv.clip(max=self.suv_max) / self.suv_max
        return out


def deterministic_transforms(
    spacing: Sequence[float],
    spatial_size: Sequence[int],
    suv_scaling: SuvScaling = "log1p",
    suv_max: float = 20.0,
    hu_range: Sequence[float] = (-1000.0, 1000.0),
) -> list:
    """Load, orient (RAS), resample to ``spacing`` mm, normalise, crop/pad to ``spatial_size`` (cacheable)."""
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ConfigError(f"data.spacing must be three positive sizes in mm (x, y, z), got {spacing}")
    if len(spatial_size) != 3 or min(spatial_size) < 1:
        raise ConfigError(f"data.spatial_size must be three positive ints (x, y, z), got {spatial_size}")
    hu_low, hu_high = (float(v) for v in hu_range)
    if not hu_low < hu_high:
        raise ConfigError(f"data.hu_range must be (low, high) with low < high, got {hu_range}")
    keys = list(IMAGE_KEYS)
    return [
        LoadImaged(keys, reader="NibabelReader", image_only=True, dtype=np.float32),
        EnsureChannelFirstd(keys),
        Orientationd(keys, axcodes="RAS", labels=None),  # labels from the image space (RAS)
        Spacingd(keys, pixdim=tuple(float(s) for s in spacing), mode="bilinear", dtype=np.float32),
        NormaliseSuvd(list(SUV_KEYS), suv_scaling, suv_max),
        ScaleIntensityRanged(list(CT_KEYS), a_min=hu_low, a_max=hu_high, b_min=0.0, b_max=1.0, clip=True),
        ResizeWithPadOrCropd(keys, spatial_size=tuple(int(s) for s in spatial_size)),
        EnsureTyped(keys, dtype=torch.float32, track_meta=False),
    ]


def augmentation_transforms(
    flip_prob: float = 0.5, intensity_jitter: float = 0.05, flip_axes: Sequence[int] = (0,)
) -> list:
    """Random flips (one draw per axis for all four volumes) and one SUV scale factor for both exams.

    ``flip_axes`` are RAS voxel axes: 0 left-right, 1 posterior-anterior, 2 inferior-superior.
    """
    if any(axis not in (0, 1, 2) for axis in flip_axes):
        raise ConfigError(f"data.flip_axes must hold axes 0, 1 or 2, got {list(flip_axes)}")
    keys = list(IMAGE_KEYS)
    flips = [RandFlipd(keys, prob=flip_prob, spatial_axis=axis) for axis in flip_axes]
    jitter = (
        [RandScaleIntensityd(list(SUV_KEYS), factors=intensity_jitter, prob=1.0)] if intensity_jitter else []
    )
    return flips + jitter


def stacking_transforms() -> list:
    """SUV and CT of each exam -> one (2, X, Y, Z) tensor named ``baseline`` / ``followup``."""
    stack = [ConcatItemsd([f"{exam}_{c}" for c in CHANNELS], name=exam, dim=0) for exam in EXAMS]
    return [*stack, DeleteItemsd(list(IMAGE_KEYS)), EnsureTyped(list(EXAMS), track_meta=False)]


def pair_transforms(
    spacing: Sequence[float],
    spatial_size: Sequence[int],
    *,
    suv_scaling: SuvScaling = "log1p",
    suv_max: float = 20.0,
    hu_range: Sequence[float] = (-1000.0, 1000.0),
    train: bool = False,
    flip_prob: float = 0.5,
    intensity_jitter: float = 0.05,
    flip_axes: Sequence[int] = (0,),
) -> Compose:
    """The whole chain: deterministic part, augmentation when ``train``, stacking into 2 channels.

    MONAI's CacheDataset caches the output of the transforms before the first random one.
    """
    steps = deterministic_transforms(spacing, spatial_size, suv_scaling, suv_max, hu_range)
    if train:
        steps += augmentation_transforms(flip_prob, intensity_jitter, flip_axes)
    return Compose(steps + stacking_transforms())
