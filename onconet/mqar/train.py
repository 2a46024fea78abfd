"""Training and evaluation of the MQAR models.

One model is trained on a mixture of MQAR settings (each batch from one setting, batches shuffled) and
evaluated per setting, as in Zoology; accuracy is the fraction of queries whose most likely next token
is the right value.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from onconet.mqar.data import IGNORE_INDEX, MqarSegment
from onconet.mqar.models import MqarLanguageModel


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule.

    Attributes:
        epochs: passes over the training mixture.
        batch_size: sequences per step (all from one setting).
        learning_rate: peak AdamW learning rate.
        weight_decay: AdamW weight decay (not applied to norms, biases and embeddings).
        warmup_fraction: share of the steps with a linear warm-up; cosine decay afterwards.
        seed: order of the batches.
    """

    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 0.1
    warmup_fraction: float = 0.1
    seed: int = 0


@dataclass
class TrainResult:
    """What one training run left: loss per step and wall time."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def mqar_loss(model: MqarLanguageModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the query positions only."""
    scored = targets != IGNORE_INDEX
    return F.cross_entropy(model(inputs, positions=scored), targets[scored])


def _batches(
    segments: Sequence[MqarSegment], batch_size: int, generator: torch.Generator
) -> list[tuple[int, torch.Tensor]]:
    """(segment index, example indices) of every batch of one epoch, in random order."""
    batches = []
    for index, segment in enumerate(segments):
        order = torch.randperm(len(segment), generator=generator)
        batches += [(index, order[i : i + batch_size]) for i in range(0, len(segment), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices only."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        is_matrix = parameter.ndim >= 2 and "embedding" not in name
        (decay if is_matrix else no_decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.98))


def _warmup_cosine(step: int, total: int, warmup_fraction: float) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to 0."""
    warmup = max(1, int(warmup_fraction * total))
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_model(
    model: MqarLanguageModel,
    segments: Sequence[MqarSegment],
    config: TrainConfig,
    progress: bool = False,
    description: str = "train",
) -> TrainResult:
    """Train ``model`` in place on the mixture of ``segments``.

    Args:
        model: the language model.
        segments: training settings; every epoch visits all their examples once.
        config: optimiser and schedule.
        progress: show a tqdm bar.
        description: the bar's label.

    Returns:
        The loss of every step and the wall time.
    """
    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = sum(math.ceil(len(s) / config.batch_size) for s in segments)
    total = config.epochs * steps_per_epoch
    optimizer = _optimizer(model, config)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _warmup_cosine(step, total, config.warmup_fraction)
    )
    result = TrainResult()
    start = time.perf_counter()
    model.train()
    with tqdm(total=total, desc=description, disable=not progress, leave=False) as bar:
        for _ in range(config.epochs):
            for index, rows in _batches(segments, config.batch_size, generator):
                segment = segments[index]
                loss = mqar_loss(model, segment.inputs[rows], segment.targets[rows])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                result.losses.append(loss.item())
                bar.update()
                bar.set_postfix(loss=f"{result.losses[-1]:.3f}", refresh=False)
    result.seconds = time.perf_counter() - start
    return result


@torch.no_grad()
def recall_accuracy(model: MqarLanguageModel, segment: MqarSegment, batch_size: int = 128) -> float:
    """Fraction of the segment's queries answered with the right value (argmax over the vocabulary)."""
    model.eval()
    correct = total = 0
    for i in range(0, len(segment), batch_size):
        inputs, targets = segment.inputs[i : i + batch_size], segment.targets[i : i + batch_size]
        scored = targets != IGNORE_INDEX
        predictions = model(inputs, positions=scored).argmax(dim=-1)
        correct += int((predictions == targets[scored]).sum())
        total += int(scored.sum())
    return correct / total


@contextmanager
def zeroed_output(module: torch.nn.Module) -> Iterator[None]:
    """Within the block, ``module`` outputs zeros (an ablation: what does the model lose without it?).

    Example:
        >>> layer = torch.nn.Linear(2, 2)
        >>> with zeroed_output(layer):
        ...     float(layer(torch.ones(1, 2)).abs().sum())
        0.0
    """
    handle = module.register_forward_hook(lambda _module, _inputs, output: torch.zeros_like(output))
    try:
        yield
    finally:
        handle.remove()


def ablations(model: MqarLanguageModel) -> dict[str, torch.nn.Module]:
    """The parts of a model worth switching off one at a time: each layer's mixer, and BASED's branches."""
    parts: dict[str, torch.nn.Module] = {}
    for index, block in enumerate(model.blocks):
        parts[f"layer {index} mixer"] = block.mixer
        if model.config.mixer == "based":
            parts[f"layer {index} window"] = block.mixer.window
            parts[f"layer {index} linear"] = block.mixer.linear
    return parts
