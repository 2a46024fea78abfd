"""The multi-query associative recall (MQAR) generator of Zoology (Arora, Eyuboglu et al., 2023).

An example is ``num_kv_pairs`` key-value pairs ``k1 v1 k2 v2 ...`` followed by a query region in which
every key appears once more; at the position of a re-appearing key the model must predict the value
it was paired with. Keys come from the lower half of the vocabulary, values from the upper half. The
distance of a query from the start of the query region follows Zoology's power law, so most queries
come soon after the pairs and a few come late. Every other position is filler and is ignored by the
loss (target ``IGNORE_INDEX``).

One deliberate difference from Zoology: filler tokens are drawn from the whole vocabulary *except the
example's own keys*, so a key re-appears exactly once and every re-appearance is a scored query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from onconet.errors import OncoNetError

#: Target of positions that are not queries (``torch.nn.functional.cross_entropy``'s default).
IGNORE_INDEX = -100


class MqarConfigError(OncoNetError):
    """An MQAR setting cannot be generated (sequence too short, vocabulary too small, ...)."""


@dataclass(frozen=True)
class MqarSegment:
    """Examples of one MQAR setting.

    Attributes:
        inputs: token ids, (num_examples, seq_len) int64.
        targets: value id at each query position, ``IGNORE_INDEX`` elsewhere; same shape.
        seq_len: sequence length.
        num_kv_pairs: key-value pairs per example (= queries per example).
        vocab_size: size of the vocabulary the ids come from.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    seq_len: int
    num_kv_pairs: int
    vocab_size: int

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def name(self) -> str:
        """A short label such as ``"N128-kv16"``."""
        return f"N{self.seq_len}-kv{self.num_kv_pairs}"


def query_gap_probabilities(space: int, power_a: float = 0.01) -> np.ndarray:
    """Zoology's power law over the ``space`` query slots: p(g) ∝ a·g^(a-1), g = 1..space.

    Example:
        >>> p = query_gap_probabilities(4, power_a=1.0)  # a = 1 is uniform
        >>> p.round(2).tolist()
        [0.25, 0.25, 0.25, 0.25]
        >>> bool(np.all(np.diff(query_gap_probabilities(10)) < 0))  # a < 1 favours early queries
        True
    """
    g = np.arange(1, space + 1, dtype=np.float64)
    p = power_a * g ** (power_a - 1.0)
    return p / p.sum()


def _distinct_per_row(rng: np.random.Generator, rows: int, low: int, high: int, size: int) -> np.ndarray:
    """``size`` distinct integers from [low, high) for each of ``rows`` rows (uniform, vectorised)."""
    return rng.random((rows, high - low)).argsort(axis=1)[:, :size] + low


def _weighted_sample_without_replacement(
    rng: np.random.Generator, rows: int, probabilities: np.ndarray, size: int
) -> np.ndarray:
    """Per row, ``size`` distinct indices drawn one after another with ``probabilities``.

    The Gumbel-top-k trick: the top ``size`` of log p + Gumbel noise have exactly the law of sequential
    sampling without replacement (what ``numpy.random.choice(replace=False, p=...)`` does).
    """
    keys = np.log(probabilities)[None, :] + rng.gumbel(size=(rows, probabilities.size))
    return np.argsort(-keys, axis=1)[:, :size]


def generate_mqar(
    num_examples: int,
    seq_len: int,
    num_kv_pairs: int,
    vocab_size: int = 512,
    seed: int = 0,
    power_a: float = 0.01,
) -> MqarSegment:
    """MQAR examples for one (sequence length, number of pairs) setting.

    Args:
        num_examples: number of sequences.
        seq_len: tokens per sequence; even, and at least ``4 * num_kv_pairs`` (pairs + query slots).
        num_kv_pairs: key-value pairs per sequence; each key is queried exactly once.
        vocab_size: even; keys are ids 1..vocab_size/2-1, values vocab_size/2..vocab_size-1.
        seed: the examples are a pure function of all arguments.
        power_a: Zoology's power-law exponent for the query gaps (1.0 = uniform, 0.01 = Zoology's).

    Example:
        >>> seg = generate_mqar(2, seq_len=16, num_kv_pairs=2, vocab_size=32, seed=0)
        >>> seg.inputs.shape, int((seg.targets != IGNORE_INDEX).sum())
        (torch.Size([2, 16]), 4)
    """
    if seq_len % 2 or num_kv_pairs < 1 or 4 * num_kv_pairs > seq_len:
        raise MqarConfigError(
            f"MQAR setting seq_len={seq_len}, num_kv_pairs={num_kv_pairs}: seq_len must be even and at "
            "least 4 * num_kv_pairs (the pairs plus one query slot per pair); lengthen the sequence or "
            "use fewer pairs"
        )
    if vocab_size % 2 or vocab_size // 2 - 1 < num_kv_pairs:
        raise MqarConfigError(
            f"MQAR vocab_size={vocab_size}: must be even and hold num_kv_pairs={num_kv_pairs} distinct "
            "keys (ids 1..vocab_size/2-1) in its lower half; raise vocab_size"
        )
    rng = np.random.default_rng([seed, seq_len, num_kv_pairs, vocab_size])
    half = vocab_size // 2
    keys = _distinct_per_row(rng, num_examples, 1, half, num_kv_pairs)
    values = _distinct_per_row(rng, num_examples, half, vocab_size, num_kv_pairs)

    context = 2 * num_kv_pairs
    inputs = np.empty((num_examples, seq_len), dtype=np.int64)
    inputs[:, 0:context:2] = keys
    inputs[:, 1:context:2] = values

    # Filler for the query region, never one of the example's own keys.
    filler = rng.integers(0, vocab_size, size=(num_examples, seq_len - context))
    while True:
        clash = (filler[:, :, None] == keys[:, None, :]).any(axis=2)
        if not clash.any():
            break
        filler[clash] = rng.integers(0, vocab_size, size=int(clash.sum()))
    inputs[:, context:] = filler

    # Query i sits at an even offset 2*gap_i of the query region; gaps are distinct, power-law distributed.
    space = (seq_len - context) // 2
    gaps = _weighted_sample_without_replacement(
        rng, num_examples, query_gap_probabilities(space, power_a), num_kv_pairs
    )
    positions = context + 2 * gaps
    rows = np.arange(num_examples)[:, None]
    inputs[rows, positions] = keys
    targets = np.full((num_examples, seq_len), IGNORE_INDEX, dtype=np.int64)
    targets[rows, positions] = values
    return MqarSegment(
        inputs=torch.from_numpy(inputs),
        targets=torch.from_numpy(targets),
        seq_len=seq_len,
        num_kv_pairs=num_kv_pairs,
        vocab_size=vocab_size,
    )
