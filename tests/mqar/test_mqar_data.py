"""Invariants of the MQAR generator."""

import numpy as np
import pytest
import torch

from onconet.mqar.data import (
    IGNORE_INDEX,
    MqarConfigError,
    generate_mqar,
    query_gap_probabilities,
)

SETTINGS = [(16, 2, 32), (64, 4, 128), (128, 32, 256), (256, 64, 256)]


@pytest.mark.parametrize(("seq_len", "num_kv_pairs", "vocab_size"), SETTINGS)
def test_keys_and_values_come_from_disjoint_halves(seq_len, num_kv_pairs, vocab_size):
    seg = generate_mqar(200, seq_len, num_kv_pairs, vocab_size, seed=3)
    keys = seg.inputs[:, 0 : 2 * num_kv_pairs : 2]
    values = seg.inputs[:, 1 : 2 * num_kv_pairs : 2]
    half = vocab_size // 2
    assert keys.min() >= 1 and keys.max() < half
    assert values.min() >= half and values.max() < vocab_size
    for row in range(len(seg)):  # distinct keys and values within an example
        assert keys[row].unique().numel() == num_kv_pairs
        assert values[row].unique().numel() == num_kv_pairs
    assert seg.inputs.min() >= 0 and seg.inputs.max() < vocab_size


@pytest.mark.parametrize(("seq_len", "num_kv_pairs", "vocab_size"), SETTINGS)
def test_every_key_is_queried_once_after_the_pairs_and_answered_by_its_value(
    seq_len, num_kv_pairs, vocab_size
):
    seg = generate_mqar(100, seq_len, num_kv_pairs, vocab_size, seed=5)
    context = 2 * num_kv_pairs
    for inputs, targets in zip(seg.inputs.tolist(), seg.targets.tolist(), strict=True):
        pairs = dict(zip(inputs[0:context:2], inputs[1:context:2], strict=True))
        queries = [t for t, target in enumerate(targets) if target != IGNORE_INDEX]
        assert len(queries) == num_kv_pairs
        assert min(queries) >= context  # queries only after all pairs
        assert all((t - context) % 2 == 0 for t in queries)
        assert sorted(inputs[t] for t in queries) == sorted(pairs)  # each key queried exactly once
        for t in queries:
            assert targets[t] == pairs[inputs[t]]
        # a key never re-appears outside its query, so every re-appearance is scored
        query_region = inputs[context:]
        assert sum(token in pairs for token in query_region) == num_kv_pairs


def test_same_seed_same_examples_other_seed_other_examples():
    a = generate_mqar(50, 64, 8, 128, seed=11)
    b = generate_mqar(50, 64, 8, 128, seed=11)
    c = generate_mqar(50, 64, 8, 128, seed=12)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)


def test_power_law_puts_most_queries_early():
    seg = generate_mqar(2000, 256, 8, 256, seed=0, power_a=0.01)
    offsets = (seg.targets != IGNORE_INDEX).nonzero()[:, 1] - 16
    uniform = generate_mqar(2000, 256, 8, 256, seed=0, power_a=1.0)
    uniform_offsets = (uniform.targets != IGNORE_INDEX).nonzero()[:, 1] - 16
    assert offsets.float().median() < 0.5 * uniform_offsets.float().median()
    # and the sampler follows the law: the first slot is taken about as often as p predicts
    p = query_gap_probabilities(120, power_a=1.0)
    assert np.isclose(p.sum(), 1.0)
    first_slot = (uniform_offsets == 0).float().sum() / 2000
    assert abs(float(first_slot) - 8 / 120) < 0.02


@pytest.mark.parametrize(
    ("seq_len", "num_kv_pairs", "vocab_size"),
    [(15, 2, 64), (16, 5, 64), (64, 0, 128), (64, 16, 32)],
)
def test_impossible_settings_raise(seq_len, num_kv_pairs, vocab_size):
    with pytest.raises(MqarConfigError, match="MQAR"):
        generate_mqar(4, seq_len, num_kv_pairs, vocab_size)
