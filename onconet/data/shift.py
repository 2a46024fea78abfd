"""Random whole-voxel translation of each exam: the positioning augmentation for small cohorts.

Two exams of one patient are never positioned alike on the table, and a few hundred training pairs
show a model too few positions for it to learn that a lesion is a lesion wherever it lies. Shifting each
stacked exam (``baseline``, ``followup``: (C, X, Y, Z)) by its own random offset of up to ``max_shift``
voxels per axis teaches that, at the cost of a slice copy: no interpolation, so SUV values (and the
hottest-lesion SUVmax the model regresses) are unchanged. Voxels shifted in are zero, which the
normalisation of :mod:`onconet.data.transforms` reserves for "no uptake" and "air".

Example:
    >>> import torch
    >>> shift_volume(torch.arange(4.0).reshape(1, 4, 1, 1), (1, 0, 0)).flatten().tolist()
    [0.0, 0.0, 1.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform

from onconet.errors import ConfigError


def shift_volume(volume: torch.Tensor, shift: Sequence[int]) -> torch.Tensor:
    """``volume`` (C, X, Y, Z) translated by ``shift`` voxels per spatial axis, zeros shifted in."""
    if len(shift) != volume.ndim - 1:
        raise ConfigError(f"a shift needs one offset per spatial axis of {tuple(volume.shape)}, got {shift}")
    out = torch.zeros_like(volume)
    source, target = [slice(None)], [slice(None)]
    for offset, size in zip(shift, volume.shape[1:], strict=True):
        if abs(offset) >= size:
            return out  # shifted out entirely
        source.append(slice(max(0, -offset), size - max(0, offset)))
        target.append(slice(max(0, offset), size - max(0, -offset)))
    out[tuple(target)] = volume[tuple(source)]
    return out


class RandShiftd(RandomizableTransform, MapTransform):
    """Translate each of ``keys`` by its own random offset in [-max_shift, max_shift] voxels per axis.

    Args:
        keys: the (C, X, Y, Z) tensors to shift, each independently.
        max_shift: the largest offset (voxels) along x, y and z.
        prob: the probability that a key is shifted at all.
    """

    def __init__(self, keys: KeysCollection, max_shift: Sequence[int], prob: float = 1.0) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        if len(max_shift) != 3 or min(max_shift) < 0:
            raise ConfigError(f"max_shift must be three non-negative voxel counts (x, y, z), got {max_shift}")
        self.max_shift = tuple(int(m) for m in max_shift)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        for key in self.key_iterator(out):
            self.randomize(None)
            if not self._do_transform:
                continue
            shift = [int(self.R.randint(-m, m + 1)) for m in self.max_shift]
            out[key] = shift_volume(torch.as_tensor(out[key]), shift)
        return out


def shift_voxels(max_shift_mm: float, spacing: Sequence[float]) -> tuple[int, int, int]:
    """The largest whole-voxel offsets per axis that stay within ``max_shift_mm`` at ``spacing`` (mm)."""
    if max_shift_mm < 0:
        raise ConfigError(f"data.max_shift_mm must be >= 0, got {max_shift_mm}")
    return tuple(int(max_shift_mm // float(s)) for s in spacing)  # type: ignore[return-value]
