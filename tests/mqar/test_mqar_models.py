"""The MQAR models: shapes, causality, the Taylor mixer's two views, state sizes."""

import pytest
import torch

from onconet.errors import ConfigError
from onconet.mqar.models import (
    MIXERS,
    GatedMonarchMixer,
    MqarLanguageModel,
    MqarModelConfig,
    recurrent_state_size,
    sliding_window_causal_mask,
)


def _model(mixer: str, **overrides) -> MqarLanguageModel:
    torch.manual_seed(0)
    config = dict(vocab_size=40, d_model=16, num_heads=2, feature_dim=4, window=4, max_seq_len=32)
    return MqarLanguageModel(MqarModelConfig(mixer, **{**config, **overrides}))


@pytest.mark.parametrize("mixer", MIXERS)
def test_forward_shapes(mixer):
    model = _model(mixer)
    tokens = torch.randint(0, 40, (3, 24))
    assert model(tokens).shape == (3, 24, 40)
    positions = torch.zeros(3, 24, dtype=torch.bool)
    positions[0, 5] = positions[2, 7] = positions[2, 20] = True
    assert model(tokens, positions=positions).shape == (3, 40)


@pytest.mark.parametrize("mixer", MIXERS)
@pytest.mark.parametrize("training", [True, False])
def test_no_position_reads_the_future(mixer, training):
    model = _model(mixer).train(training)
    tokens = torch.randint(0, 40, (2, 24))
    changed = tokens.clone()
    changed[:, 13:] = (changed[:, 13:] + 7) % 40
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    torch.testing.assert_close(after[:, :13], before[:, :13])
    assert not torch.allclose(after[:, 13:], before[:, 13:])


@pytest.mark.parametrize("mixer", ["taylor", "based"])
def test_training_and_evaluation_views_compute_the_same_function(mixer):
    model = _model(mixer, d_model=32, feature_dim=8).double()
    tokens = torch.randint(0, 40, (2, 30))
    with torch.no_grad():
        quadratic = model.train()(tokens)
        chunked = model.eval()(tokens)
    torch.testing.assert_close(chunked, quadratic, rtol=1e-9, atol=1e-9)


def test_sliding_window_mask_is_banded_and_causal():
    mask = sliding_window_causal_mask(10, 3)
    for i in range(10):
        assert mask[i].nonzero().flatten().tolist() == list(range(max(0, i - 2), i + 1))


def test_monarch_mixer_uses_one_lower_triangular_matrix_per_head():
    """Output i is Σ_j≤i M[i, j] (k ⊙ v)_j gated by q_i: check against the explicit product."""
    config = MqarModelConfig("monarch", d_model=8, num_heads=2, max_seq_len=12)
    mixer = GatedMonarchMixer(config).double()
    x = torch.randn(2, 9, 8, dtype=torch.float64)
    q, k, v = mixer.qkv(x).chunk(3, dim=-1)
    z = (k * v).view(2, 9, 2, 4)
    m = mixer.sequence_matrix[:, :9, :9].tril()
    expected = torch.einsum("hij,bjhc->bihc", m, z).reshape(2, 9, 8)
    torch.testing.assert_close(mixer(x), mixer.out(q * expected))


def test_monarch_mixer_refuses_sequences_beyond_its_matrix():
    model = _model("monarch", max_seq_len=16)
    with pytest.raises(ConfigError, match="max_seq_len"):
        model(torch.randint(0, 40, (1, 17)))


def test_unknown_mixer_and_bad_heads_raise():
    with pytest.raises(ConfigError, match="mixer"):
        MqarModelConfig("mamba")
    with pytest.raises(ConfigError, match="num_heads"):
        MqarModelConfig("attention", d_model=30, num_heads=4)


def test_state_sizes_follow_the_based_paper_accounting():
    def size(mixer: str, seq_len: int = 256, **kw) -> int:
        return recurrent_state_size(MqarModelConfig(mixer, d_model=64, num_layers=2, **kw), seq_len)

    conv = 2 * 2 * 64
    assert size("attention") == 2 * 2 * 256 * 64 + conv
    assert size("taylor", feature_dim=16) == 2 * (153 * 64 + 153) + conv
    assert size("based", feature_dim=16, window=32) == size("taylor", feature_dim=16) + 2 * 2 * 32 * 64
    # attention's KV cache grows with the sequence, the linear state does not
    assert size("attention", 512) == 2 * size("attention", 256) - conv
    assert size("taylor", 512) == size("taylor", 256)
    assert size("taylor", feature_dim=4) < size("taylor", feature_dim=8) < size("taylor", feature_dim=16)
