"""The training loop: batching, schedule, and that every model learns a tiny MQAR."""

import itertools

import pytest
import torch

from onconet.mqar.data import generate_mqar
from onconet.mqar.models import MIXERS, MqarLanguageModel, MqarModelConfig
from onconet.mqar.train import (
    TrainConfig,
    _batches,
    _warmup_cosine,
    ablations,
    recall_accuracy,
    train_model,
    zeroed_output,
)


def test_an_epoch_visits_every_example_once_in_single_setting_batches():
    segments = [generate_mqar(37, 16, 2, 32, seed=0), generate_mqar(20, 32, 4, 32, seed=0)]
    batches = _batches(segments, batch_size=8, generator=torch.Generator().manual_seed(0))
    seen = {0: [], 1: []}
    for index, rows in batches:
        assert len(rows) <= 8
        seen[index] += rows.tolist()
    assert sorted(seen[0]) == list(range(37)) and sorted(seen[1]) == list(range(20))
    assert len(batches) == 5 + 3
    assert [i for i, _ in batches] != sorted(i for i, _ in batches)  # settings are interleaved


def test_schedule_warms_up_then_decays_to_zero():
    factors = [_warmup_cosine(step, 100, 0.1) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[9:]))
    assert factors[-1] < 0.01


@pytest.mark.parametrize("mixer", MIXERS)
def test_each_model_learns_a_tiny_mqar(mixer):
    """Loss falls well below its start and recall beats guessing among the values."""
    train = generate_mqar(256, 16, 2, vocab_size=32, seed=0)
    test = generate_mqar(200, 16, 2, vocab_size=32, seed=1)
    torch.manual_seed(0)
    config = MqarModelConfig(mixer, vocab_size=32, d_model=32, feature_dim=8, window=4, max_seq_len=16)
    model = MqarLanguageModel(config)
    result = train_model(model, [train], TrainConfig(epochs=6, batch_size=16, learning_rate=1e-2))
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert len(result.losses) == 6 * 16
    assert last < 0.6 * first
    assert recall_accuracy(model, test) > 2 / 16  # a uniform guess among the 16 values scores 1/16


def test_ablation_switches_a_part_off_only_inside_the_block():
    torch.manual_seed(0)
    model = MqarLanguageModel(MqarModelConfig("based", vocab_size=32, d_model=16, feature_dim=4, window=4))
    tokens = torch.randint(0, 32, (2, 12))
    parts = ablations(model)
    assert set(parts) == {f"layer {i} {p}" for i in (0, 1) for p in ("mixer", "window", "linear")}
    with torch.no_grad():
        before = model(tokens)
        with zeroed_output(parts["layer 0 mixer"]):
            ablated = model(tokens)
            assert float(parts["layer 0 mixer"](torch.randn(1, 3, 16)).abs().sum()) == 0.0
        after = model(tokens)
    assert not torch.allclose(ablated, before)
    torch.testing.assert_close(after, before)
    assert set(ablations(MqarLanguageModel(MqarModelConfig("taylor", d_model=16)))) == {
        "layer 0 mixer",
        "layer 1 mixer",
    }
