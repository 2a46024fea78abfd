"""MONAI dictionary transforms from the NIfTI cache to model tensors.

A sample is a dict with the paths of a pair's four cached volumes (``baseline_suv``, ``baseline_ct``,
``followup_suv``, ``followup_ct``, see :data:`IMAGE_KEYS`) plus identifiers and labels, which pass
through untouched. The deterministic part (load with nibabel, channel first, RAS orientation,
resampling to ``spacing`` mm, SUV and HU normalisation, centre crop or pad to ``spatial_size``) is what
the DataModule caches in memory; the random part (training only) flips the four volumes along the same
axes (by default left-right only: a body mirrored left-right is still a plausible body, one upside down
is not) and jitters the SUV scale of both exams by the same factor, so the pair's label stays true. Last,
SUV and CT are stacked into 2-channel ``baseline`` and ``followup`` tensors (channel 0 SUV, 1 CT).

Orientation, resampling and the crop run as one separable step on axis-aligned grids
(:mod:`onconet.data.resample_axes`: the values of MONAI's ``Orientationd`` + ``Spacingd`` + crop, a
fraction of the work). ``onconet infer`` runs the same steps on volumes already in memory, with the
padding and the stacking fused into one (:func:`in_memory_transforms`).

Normalisation maps background to 0, so padding with zeros means "no uptake" and "air":
SUV ``log1p``: log(1 + SUV) / log(1 + suv_max) (SUV 0 -> 0, suv_max -> 1, hotter above 1);
SUV ``clip``: clip(SUV, 0, suv_max) / suv_max; CT: clip(HU, lo, hi) mapped to 0..1 (lo = -1000 air -> 0).

Example:
    >>> transform = pair_transforms(spacing=(8.0, 8.0, 8.0), spatial_size=(32, 32, 32), train=True)
    >>> [type(t).__name__ for t in transform.transforms][:4]
    ['LoadImaged', 'EnsureChannelFirstd', 'ResampleAxesd', 'NormaliseSuvd']
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    ConcatItemsd,
    DeleteItemsd,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    MapTransform,
    RandFlipd,
    RandScaleIntensityd,
    ResizeWithPadOrCropd,
    ScaleIntensityRanged,
)

from onconet.data.resample_axes import ResampleAxesd, centre_slices
from onconet.data.shift import RandShiftd, shift_voxels
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


def model_grid_transforms(
    spacing: Sequence[float],
    spatial_size: Sequence[int],
    suv_scaling: SuvScaling = "log1p",
    suv_max: float = 20.0,
    hu_range: Sequence[float] = (-1000.0, 1000.0),
) -> list:
    """Orient (RAS), resample to ``spacing`` mm, crop to ``spatial_size`` where larger, normalise.

    The part shared by the NIfTI-cache chain (:func:`deterministic_transforms`) and the in-memory one of
    ``onconet infer`` (:func:`in_memory_transforms`); the volumes come out no larger than ``spatial_size``,
    padding is left to the caller.
    """
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ConfigError(f"data.spacing must be three positive sizes in mm (x, y, z), got {spacing}")
    if len(spatial_size) != 3 or min(spatial_size) < 1:
        raise ConfigError(f"data.spatial_size must be three positive ints (x, y, z), got {spatial_size}")
    hu_low, hu_high = (float(v) for v in hu_range)
    if not hu_low < hu_high:
        raise ConfigError(f"data.hu_range must be (low, high) with low < high, got {hu_range}")
    return [
        # = Orientationd("RAS") + Spacingd(bilinear) + the crop of ResizeWithPadOrCropd, separable;
        # normalising after the crop touches fewer voxels and gives the same values (pointwise)
        ResampleAxesd(list(IMAGE_KEYS), pixdim=spacing, spatial_size=spatial_size),
        NormaliseSuvd(list(SUV_KEYS), suv_scaling, suv_max),
        ScaleIntensityRanged(list(CT_KEYS), a_min=hu_low, a_max=hu_high, b_min=0.0, b_max=1.0, clip=True),
    ]


def deterministic_transforms(
    spacing: Sequence[float],
    spatial_size: Sequence[int],
    suv_scaling: SuvScaling = "log1p",
    suv_max: float = 20.0,
    hu_range: Sequence[float] = (-1000.0, 1000.0),
) -> list:
    """Load, orient (RAS), resample to ``spacing`` mm, normalise, crop/pad to ``spatial_size`` (cacheable)."""
    keys = list(IMAGE_KEYS)
    return [
        LoadImaged(keys, reader="NibabelReader", image_only=True, dtype=np.float32),
        EnsureChannelFirstd(keys),
        *model_grid_transforms(spacing, spatial_size, suv_scaling, suv_max, hu_range),
        ResizeWithPadOrCropd(keys, spatial_size=tuple(int(s) for s in spatial_size)),
        EnsureTyped(keys, dtype=torch.float32, track_meta=False),
    ]


def plain_tensor(volume: Any) -> torch.Tensor:
    """A tensor without MONAI's metadata (whose bookkeeping would cost more than the copy)."""
    return volume.as_tensor() if isinstance(volume, MetaTensor) else torch.as_tensor(volume)


def pad_into(target: torch.Tensor, volumes: Sequence[torch.Tensor], non_blocking: bool = False) -> None:
    """Write channel-first ``volumes`` one after the other into the zeros of ``target`` (C, X, Y, Z), each
    centre-cropped or centre-padded to ``target``'s grid as ``ResizeWithPadOrCrop`` does.

    ``non_blocking``: a copy from page-locked memory to a GPU is queued, not waited for.
    """
    first = 0
    for volume in volumes:
        source, where = centre_slices(volume.shape[1:], target.shape[1:])
        count = volume.shape[0]
        target[(slice(first, first + count), *where)].copy_(
            volume[(slice(None), *source)], non_blocking=non_blocking
        )
        first += count


class PadStackd(MapTransform):
    """``ResizeWithPadOrCropd`` + the stacking in one step: each exam's volumes written into one zero tensor.

    Gives what ``ResizeWithPadOrCropd`` + :func:`stacking_transforms` give, without padding each volume
    into a tensor of its own and copying it again to stack: at 128³ the model input is mostly padding.
    Only where nothing random sits between the two (``onconet infer``; training flips the padded volumes).
    """

    def __init__(self, spatial_size: Sequence[int]) -> None:
        super().__init__(list(IMAGE_KEYS))
        self.spatial_size = tuple(int(s) for s in spatial_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        for exam in EXAMS:
            volumes = [plain_tensor(out.pop(f"{exam}_{channel}")) for channel in CHANNELS]
            stacked = torch.zeros((sum(v.shape[0] for v in volumes), *self.spatial_size), dtype=torch.float32)
            pad_into(stacked, volumes)
            out[exam] = stacked
        return out


def in_memory_transforms(
    spacing: Sequence[float],
    spatial_size: Sequence[int],
    suv_scaling: SuvScaling = "log1p",
    suv_max: float = 20.0,
    hu_range: Sequence[float] = (-1000.0, 1000.0),
) -> Compose:
    """:func:`deterministic_transforms` + :func:`stacking_transforms` for volumes already in memory.

    For MetaTensors such as ``LoadImaged`` makes (the hand-over of ``onconet infer``): the same steps
    without the loading, the padding and stacking fused into :class:`PadStackd`. Same values.
    """
    return Compose(
        [
            EnsureChannelFirstd(list(IMAGE_KEYS)),
            *model_grid_transforms(spacing, spatial_size, suv_scaling, suv_max, hu_range),
            PadStackd(spatial_size),
        ]
    )


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
    max_shift_mm: float = 0.0,
) -> Compose:
    """The whole chain: deterministic part, augmentation when ``train``, stacking into 2 channels.

    With ``train`` and ``max_shift_mm``, each stacked exam is then shifted by its own random whole-voxel
    offset (:class:`onconet.data.shift.RandShiftd`). MONAI's CacheDataset caches the output of the
    transforms before the first random one.
    """
    steps = deterministic_transforms(spacing, spatial_size, suv_scaling, suv_max, hu_range)
    if train:
        steps += augmentation_transforms(flip_prob, intensity_jitter, flip_axes)
    steps += stacking_transforms()
    if train and max_shift_mm > 0:
        steps.append(RandShiftd(list(EXAMS), shift_voxels(max_shift_mm, spacing)))
    return Compose(steps)
