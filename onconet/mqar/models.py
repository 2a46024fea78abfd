"""Small causal language models for MQAR, one per sequence mixer.

Every model is the same stack (token embedding, ``num_layers`` pre-norm blocks, a vocabulary head, no
positional embedding; no MLP by default, as Zoology's MQAR models) and differs only in the sequence
mixer:

- ``attention``: softmax attention, ``torch.nn.functional.scaled_dot_product_attention`` (causal).
- ``taylor``: Taylor linear attention, causal; ours (``onconet.mqar.causal_taylor``, on the feature map
  ``kernels.taylor_feature_map``), because ``kernels.taylor_linear_attention`` is non-causal and no
  causal kernel exists yet.
- ``based``: BASED, the Taylor branch plus softmax attention over a causal sliding window (SDPA with a
  banded causal mask; ``kernels.local_attention_3d`` is non-causal).
- ``monarch``: an M2/Hyena-style gated mixer, y = q ⊙ M(k ⊙ v), where M is a learned dense causal
  (lower-triangular) N×N sequence matrix applied by ``kernels.monarch_mix_3d`` on the grid (N, 1, 1).

Each mixer reads its input through a short causal depthwise convolution (as BASED does), so a value
token can see the key before it; this is the same in every model and leaves recall to the mixer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from onconet.errors import ConfigError
from onconet.mqar.causal_taylor import (
    causal_taylor_linear_attention,
    causal_taylor_linear_attention_quadratic,
    taylor_feature_dim,
)

MIXERS: tuple[str, ...] = ("attention", "based", "taylor", "monarch")


@dataclass(frozen=True)
class MqarModelConfig:
    """The size and mixer of one MQAR model.

    Attributes:
        mixer: one of ``MIXERS``.
        vocab_size: tokens of the MQAR vocabulary.
        d_model: width of the residual stream.
        num_layers: blocks.
        num_heads: heads of every mixer (the monarch mixer has one sequence matrix per head).
        feature_dim: query/key width per head before the Taylor feature map (taylor, based).
        window: tokens the sliding window sees, itself included (based).
        max_seq_len: longest sequence the monarch mixer's N×N matrices cover.
        conv_size: taps of the short causal convolution in front of every mixer.
        mlp_mult: hidden width of the MLP as a multiple of d_model (0: no MLP).
    """

    mixer: str
    vocab_size: int = 512
    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 1
    feature_dim: int = 16
    window: int = 64
    max_seq_len: int = 512
    conv_size: int = 3
    mlp_mult: int = 0

    def __post_init__(self) -> None:
        if self.mixer not in MIXERS:
            raise ConfigError(f"MQAR model: mixer={self.mixer!r} is unknown; use one of {', '.join(MIXERS)}")
        if self.d_model % self.num_heads:
            raise ConfigError(
                f"MQAR model: d_model={self.d_model} is not divisible by num_heads={self.num_heads}; "
                "change one of them"
            )


def recurrent_state_size(config: MqarModelConfig, seq_len: int) -> int:
    """Floats a model must keep per sequence to generate the next token after ``seq_len`` tokens.

    The BASED paper's memory axis: softmax attention keeps its KV cache (2·N·d per layer), Taylor linear
    attention the state φ(K)ᵀV and its normaliser (f·d + f·H, f = 1 + d' + d'(d'+1)/2), BASED that plus
    the window's KV cache (2·w·d), and the dense causal monarch mixer the whole history of k ⊙ v (N·d).
    Every model also keeps the short convolution's last ``conv_size - 1`` inputs.

    Example:
        >>> recurrent_state_size(MqarModelConfig("taylor", d_model=64, num_layers=1, feature_dim=16), 256)
        10073
    """
    d, heads = config.d_model, config.num_heads
    features = taylor_feature_dim(config.feature_dim)
    per_layer = {
        "attention": 2 * seq_len * d,
        "taylor": features * d + features * heads,
        "based": features * d + features * heads + 2 * min(config.window, seq_len) * d,
        "monarch": seq_len * d,
    }[config.mixer]
    return config.num_layers * (per_layer + (config.conv_size - 1) * d)


class ShortCausalConv(nn.Module):
    """Depthwise causal convolution over the sequence: output i sees inputs i-k+1..i."""

    def __init__(self, d_model: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.conv = nn.Conv1d(d_model, d_model, size, groups=d_model, padding=size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, d)."""
        return self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, H·e) -> (B, H, N, e)."""
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, e) -> (B, N, H·e)."""
    b, h, n, e = x.shape
    return x.transpose(1, 2).reshape(b, n, h * e)


def sliding_window_causal_mask(seq_len: int, window: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean (N, N) mask, True where query i may attend key j: i - window < j ≤ i.

    Example:
        >>> sliding_window_causal_mask(4, 2).int().tolist()
        [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    i = torch.arange(seq_len, device=device)[:, None]
    j = torch.arange(seq_len, device=device)[None, :]
    return (j <= i) & (j > i - window)


class SoftmaxAttention(nn.Module):
    """Causal multi-head softmax attention (PyTorch SDPA)."""

    def __init__(self, config: MqarModelConfig) -> None:
        super().__init__()
        self.heads = config.num_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, d)."""
        q, k, v = (_split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        return self.out(_merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True)))


class TaylorLinearAttention(nn.Module):
    """Causal Taylor linear attention: queries/keys of ``feature_dim`` per head, values of d/H.

    Like Zoology's BASED mixer (``train_view="quadratic"``), training uses the masked quadratic form,
    which is the same function and, for the short MQAR sequences, much cheaper on a CPU; evaluation
    (``model.eval()``) runs the linear-time chunked cumulative-sum form, the one whose state is counted.
    """

    def __init__(self, config: MqarModelConfig) -> None:
        super().__init__()
        self.heads = config.num_heads
        self.qk = nn.Linear(config.d_model, 2 * config.num_heads * config.feature_dim)
        self.v = nn.Linear(config.d_model, config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, d)."""
        q, k = (_split_heads(t, self.heads) for t in self.qk(x).chunk(2, dim=-1))
        v = _split_heads(self.v(x), self.heads)
        attend = causal_taylor_linear_attention_quadratic if self.training else causal_taylor_linear_attention
        return self.out(_merge_heads(attend(q, k, v)))


class SlidingWindowAttention(nn.Module):
    """Causal softmax attention over the last ``window`` tokens (SDPA with a banded causal mask)."""

    def __init__(self, config: MqarModelConfig) -> None:
        super().__init__()
        self.heads, self.window = config.num_heads, config.window
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, d)."""
        q, k, v = (_split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        mask = sliding_window_causal_mask(x.shape[1], self.window, x.device)
        return self.out(_merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))


class BasedMixer(nn.Module):
    """BASED: global causal Taylor linear attention plus exact softmax attention in a sliding window."""

    def __init__(self, config: MqarModelConfig) -> None:
        super().__init__()
        self.linear = TaylorLinearAttention(config)
        self.window = SlidingWindowAttention(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, d)."""
        return self.linear(x) + self.window(x)


class GatedMonarchMixer(nn.Module):
    """M2/Hyena-style gated sequence mixing y = q ⊙ M_h(k ⊙ v), M_h dense lower-triangular per head.

    M_h is applied with ``kernels.monarch_mix_3d`` on the token grid (N, 1, 1): dense N×N mixing along
    the sequence, identity along the two unit axes. The mixing is the same for every input (no
    data-dependent weights), as in gated convolutions; only the gates q, k depend on the tokens.
    """

    def __init__(self, config: MqarModelConfig) -> None:
        super().__init__()
        self.heads, self.max_seq_len = config.num_heads, config.max_seq_len
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        # Start as a causal running mean (plus noise), a stable mixing the gates can build on.
        n = config.max_seq_len
        running_mean = torch.ones(n, n).tril() / torch.arange(1, n + 1)[:, None]
        noise = 0.02 * torch.randn(config.num_heads, n, n) / n**0.5
        self.sequence_matrix = nn.Parameter(running_mean + noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, d); N ≤ max_seq_len."""
        batch, n, d = x.shape
        if n > self.max_seq_len:
            raise ConfigError(
                f"monarch mixer: sequence of {n} tokens is longer than max_seq_len={self.max_seq_len}; "
                "build the model with a larger max_seq_len"
            )
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        z = (k * v).view(batch, n, self.heads, d // self.heads)
        one = torch.ones(1, 1, dtype=x.dtype, device=x.device)
        mixed = [
            kernels.monarch_mix_3d(
                z[:, :, h].reshape(batch, n, 1, 1, -1), self.sequence_matrix[h, :n, :n].tril(), one, one
            )
            for h in range(self.heads)
        ]
        y = torch.stack(mixed, dim=2).reshape(batch, n, d)
        return self.out(q * y)


_MIXER_CLASSES: dict[str, type[nn.Module]] = {
    "attention": SoftmaxAttention,
    "taylor": TaylorLinearAttention,
    "based": BasedMixer,
    "monarch": GatedMonarchMixer,
}


class MqarBlock(nn.Module):
    """Pre-norm residual block: short conv -> sequence mixer, then an optional MLP."""

    def __init__(self, config: MqarModelConfig) -> None:
        super().__init__()
        self.mixer_norm = nn.LayerNorm(config.d_model)
        self.conv = ShortCausalConv(config.d_model, config.conv_size)
        self.mixer = _MIXER_CLASSES[config.mixer](config)
        self.mlp: nn.Module | None = None
        if config.mlp_mult:
            hidden = config.mlp_mult * config.d_model
            self.mlp = nn.Sequential(
                nn.LayerNorm(config.d_model),
                nn.Linear(config.d_model, hidden),
                nn.GELU(),
                nn.Linear(hidden, config.d_model),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, d)."""
        x = x + self.mixer(self.conv(self.mixer_norm(x)))
        return x if self.mlp is None else x + self.mlp(x)


class MqarLanguageModel(nn.Module):
    """Token embedding, blocks, final norm and a vocabulary head; next-token logits.

    Example:
        >>> model = MqarLanguageModel(MqarModelConfig("attention", vocab_size=32, d_model=16))
        >>> model(torch.randint(0, 32, (2, 8))).shape
        torch.Size([2, 8, 32])
    """

    def __init__(self, config: MqarModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(MqarBlock(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N) token ids -> (B, N, d) final normalised hidden states."""
        x = self.embedding(tokens)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, N, V); with a boolean ``positions`` mask (B, N), only those rows, (M, V).

        Scoring only the query positions spares the vocabulary head most of its work.
        """
        hidden = self.hidden_states(tokens)
        return self.head(hidden if positions is None else hidden[positions])


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
