"""Random whole-voxel shifts of each exam (onconet.data.shift) and their place in the training pipeline."""

from __future__ import annotations

import doctest

import pytest
import torch

from onconet.data import shift as shift_module
from onconet.data.shift import RandShiftd, shift_volume, shift_voxels
from onconet.errors import ConfigError
from tests.data.test_datamodule import SPACING, datamodule


@pytest.mark.parametrize("offset", [(2, -1, 0), (-3, 0, 4), (0, 0, 0)])
def test_shift_moves_every_voxel_by_the_offset_and_fills_with_zeros(offset):
    volume = torch.rand(2, 7, 5, 6) + 1.0  # no zeros of its own
    out = shift_volume(volume, offset)
    for c, x, y, z in torch.cartesian_prod(*(torch.arange(s) for s in volume.shape)).tolist():
        tx, ty, tz = x + offset[0], y + offset[1], z + offset[2]
        if 0 <= tx < 7 and 0 <= ty < 5 and 0 <= tz < 6:
            assert out[c, tx, ty, tz] == volume[c, x, y, z]
    moved_in = sum(1 for v in out.flatten().tolist() if v == 0.0)
    kept = (7 - abs(offset[0])) * (5 - abs(offset[1])) * (6 - abs(offset[2]))
    assert moved_in == 2 * (7 * 5 * 6 - kept)


def test_a_shift_beyond_the_volume_leaves_nothing_and_a_wrong_rank_is_an_error():
    assert shift_volume(torch.ones(1, 4, 4, 4), (0, 4, 0)).sum() == 0
    with pytest.raises(ConfigError, match="one offset per spatial axis"):
        shift_volume(torch.ones(1, 4, 4, 4), (1, 1))


def test_each_key_gets_its_own_offset_within_the_bounds():
    volume = torch.zeros(1, 21, 21, 21)
    volume[0, 10, 10, 10] = 5.0
    transform = RandShiftd(["baseline", "followup"], max_shift=(3, 0, 2))
    transform.set_random_state(seed=0)
    offsets = set()
    for _ in range(40):
        out = transform({"baseline": volume, "followup": volume, "label": 1})
        assert out["label"] == 1
        positions = []
        for key in ("baseline", "followup"):
            assert out[key].sum() == 5.0  # the value moves, unchanged
            x, y, z = (int(i) for i in torch.nonzero(out[key][0])[0])
            assert abs(x - 10) <= 3 and y == 10 and abs(z - 10) <= 2
            positions.append((x, z))
        offsets.add(tuple(positions))
    assert any(b != f for b, f in offsets)  # the two exams move independently
    assert len({p for pair in offsets for p in pair}) > 10  # and over the whole range


def test_millimetres_become_whole_voxels_and_bad_settings_are_errors():
    assert shift_voxels(24.0, (6.0, 6.0, 7.5)) == (4, 4, 3)
    assert shift_voxels(0.0, (4.0, 4.0, 4.0)) == (0, 0, 0)
    with pytest.raises(ConfigError, match="max_shift_mm"):
        shift_voxels(-1.0, (4.0, 4.0, 4.0))
    with pytest.raises(ConfigError, match="three non-negative"):
        RandShiftd(["baseline"], max_shift=(1, 2))


def test_training_pairs_are_shifted_and_evaluation_pairs_are_not(synthetic_cache, synthetic_cohort):
    dm = datamodule(
        synthetic_cache, truth=str(synthetic_cohort.truth), label_source="gold", max_shift_mm=48.0
    )
    train = dm._dataset("train")
    assert isinstance(train.transform.transforms[-1], RandShiftd)
    assert train.transform.transforms[-1].max_shift == tuple(int(48 // s) for s in SPACING)
    first, second = train[0], train[0]  # the cached deterministic part, then fresh random draws
    assert first["baseline"].shape == second["baseline"].shape
    assert not all(torch.equal(first[k], second[k]) for k in ("baseline", "followup"))
    val = dm._dataset("val")
    assert not any(isinstance(t, RandShiftd) for t in val.transform.transforms)
    assert torch.equal(val[0]["baseline"], val[0]["baseline"])


def test_docstring_example():
    assert doctest.testmod(shift_module).failed == 0
