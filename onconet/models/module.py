"""The LightningModule: the paired-exam model, confidence-weighted cross-entropy, AdamW + warm-up cosine.

Batches come from :class:`onconet.data.datamodule.PairDataModule`: ``baseline`` and ``followup``
(B, 2, X, Y, Z) volumes (SUV, CT), ``label`` (B,) class indices of ``RESPONSE_CLASSES``, ``weight``
(B,) label confidences, ``suvmax`` (B, 2) the hottest-lesion SUVmax of baseline and follow-up as the
reports state them (NaN where a report gives none), and the pair's identifiers. The loss is the
confidence-weighted cross-entropy plus ``suvmax_loss_weight`` × a smooth-L1 loss between the model's
predicted log(1 + SUVmax) of each exam and the reported one: the reports give a number per exam, a far
richer signal than one class per pair, and it is the number the response criteria are computed from.
Validation and test log macro one-vs-rest AUROC,
the change AUROC, accuracy and quadratic kappa; after a test the metrics table is printed and saved
(``test_metrics.csv`` / ``.md``) with the per-pair probabilities (``test_predictions.csv``) in the run's
log folder. Under DDP, the samples Lightning's DistributedSampler repeats to even out the ranks are left
out of the metrics (synchronised by torchmetrics) and of ``test_predictions.csv`` (gathered on rank 0, one
row per pair); the logged losses are means over ranks and still include them.

Example:
    >>> import torch
    >>> module = ResponseModule("vit_sdpa", {"dim": 32, "depth": 1, "heads": 2}, image_size=(16, 16, 16))
    >>> batch = torch.randn(2, 2, 16, 16, 16)
    >>> module(batch, batch).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from onconet.classes import RESPONSE_CLASSES
from onconet.errors import ConfigError
from onconet.models.backbones import create_backbone
from onconet.models.fusion import PairedResponseModel
from onconet.models.graphs import GraphedForward
from onconet.models.metrics import METRIC_NAMES, ResponseMetrics, metrics_markdown

#: Identifier columns carried by every batch and written with each prediction.
ID_KEYS: tuple[str, ...] = ("patient_id", "site", "baseline_study_uid", "followup_study_uid")
PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"prob_{name}" for name in RESPONSE_CLASSES)
# Parameters kept out of weight decay besides biases and norms: learned embeddings, Monarch axis mixers
# (decay would pull them towards zero instead of their identity start).
_NO_DECAY_SUFFIXES = ("timepoint", ".w_x", ".w_y", ".w_z")


def weighted_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean over the batch of weight × cross-entropy (a weight-0 pair contributes nothing).

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
        >>> labels = torch.tensor([0, 2])
        >>> full = weighted_cross_entropy(logits, labels)
        >>> half = weighted_cross_entropy(logits, labels, torch.tensor([1.0, 0.0]))
        >>> bool(torch.isclose(half, F.cross_entropy(logits[:1], labels[:1]) / 2))
        True
    """
    losses = F.cross_entropy(logits.float(), labels, reduction="none", label_smoothing=label_smoothing)
    if weights is not None:
        losses = losses * weights.to(losses.dtype)
    return losses.mean()


def suvmax_regression_loss(predicted: torch.Tensor, reported: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 between predicted log(1 + SUVmax) and log(1 + reported SUVmax), over the known values.

    Missing values (NaN: no number in the report, no lesion left) contribute nothing; with none known the
    loss is a zero that keeps the graph (every parameter still gets a gradient, as DDP expects).

    Example:
        >>> predicted = torch.tensor([[1.0, 0.5], [2.0, 0.0]])
        >>> reported = torch.tensor([[math.e - 1, float("nan")], [float("nan"), float("nan")]])
        >>> float(suvmax_regression_loss(predicted, reported))
        0.0
    """
    # masked, not indexed: no host synchronisation and fixed shapes (CUDA graphs, model.cuda_graphs)
    known = torch.isfinite(reported)
    target = torch.log1p(torch.where(known, reported, 0.0).clamp(min=0.0).to(torch.float32))
    losses = F.smooth_l1_loss(predicted.float(), target, beta=0.1, reduction="none")
    return torch.where(known, losses, 0.0).sum() / known.sum().clamp(min=1)


def warmup_cosine_factor(step: int, total_steps: int | None, warmup_steps: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total_steps``.

    Example:
        >>> [round(warmup_cosine_factor(s, 10, 2, 0.0), 3) for s in (0, 1, 2, 6, 10)]
        [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if total_steps is None:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class ResponseModule(pl.LightningModule):
    """Response / stable / progression from a pair of PET/CT exams.

    Args:
        backbone: registered backbone name (``based3d``, ``monarch3d``, ``densenet121``, ``vit_sdpa``).
        backbone_kwargs: the backbone's sizes (dim, depth, heads, patch_size, ...).
        image_size: input volume size (x, y, z); the CLI links it to ``data.spatial_size``.
        in_channels: image channels (SUV, CT).
        fusion_heads, fusion_feature_dim: prefix linear attention of the fusion.
        head_hidden: hidden width of the classification head.
        dropout: dropout in the head.
        learning_rate: peak AdamW learning rate.
        weight_decay: AdamW weight decay (not on biases, norms, embeddings, Monarch axis mixers).
        warmup_fraction: share of the training steps spent warming up linearly.
        min_lr_ratio: final learning rate / peak after the cosine decay.
        confidence_weighting: weigh each pair's loss by its label confidence (weak labels).
        label_smoothing: cross-entropy label smoothing.
        suvmax_head: predict each exam's hottest-lesion SUVmax (see :mod:`onconet.models.fusion`).
        suvmax_loss_weight: weight of the SUVmax regression loss against the reported values (0: off).
        local_change_window: pool what appeared and vanished between the exams within this odd window of
            tokens (:func:`onconet.models.fusion.local_change_pool`); 0: off.
        bf16_autocast: run the forward pass in bfloat16 autocast on CUDA (ignored on the CPU).
        gradient_checkpointing: recompute backbone blocks in the backward pass to save memory.
        cuda_graphs: on one CUDA device, replay the training forward and backward of full-size batches
            from CUDA graphs (:mod:`onconet.models.graphs`): the eager step is bound by the host's
            launching of ~600 kernels. Ignored on the CPU and under DDP (eager there).
    """

    def __init__(
        self,
        backbone: str = "based3d",
        backbone_kwargs: dict[str, Any] | None = None,
        image_size: Sequence[int] = (64, 64, 64),
        in_channels: int = 2,
        fusion_heads: int = 4,
        fusion_feature_dim: int = 16,
        head_hidden: int = 128,
        dropout: float = 0.1,
        learning_rate: float = 3e-4,
        weight_decay: float = 0.05,
        warmup_fraction: float = 0.1,
        min_lr_ratio: float = 0.01,
        confidence_weighting: bool = True,
        label_smoothing: float = 0.0,
        suvmax_head: bool = True,
        suvmax_loss_weight: float = 1.0,
        local_change_window: int = 0,
        bf16_autocast: bool = True,
        gradient_checkpointing: bool = False,
        cuda_graphs: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if cuda_graphs and gradient_checkpointing:
            raise ConfigError("model.cuda_graphs and model.gradient_checkpointing together are not supported")
        if suvmax_loss_weight and not suvmax_head:
            raise ConfigError("model.suvmax_loss_weight > 0 needs model.suvmax_head: true")
        kwargs = dict(backbone_kwargs or {})
        for reserved in ("image_size", "in_channels"):
            if reserved in kwargs:
                raise ConfigError(
                    f"model.backbone_kwargs.{reserved}: set model.{reserved} (or data.spatial_size) instead"
                )
        net = create_backbone(backbone, in_channels=in_channels, image_size=tuple(image_size), **kwargs)
        if gradient_checkpointing:
            net.set_grad_checkpointing(True)
        self.model = PairedResponseModel(
            net,
            num_classes=len(RESPONSE_CLASSES),
            fusion_heads=fusion_heads,
            fusion_feature_dim=fusion_feature_dim,
            head_hidden=head_hidden,
            dropout=dropout,
            suvmax_head=suvmax_head,
            local_change_window=local_change_window,
        )
        # Not submodules (plain attributes): the pair forward shares self.model's parameters, and a
        # second registration would duplicate them in the state dict.
        pair_forward = PairForward(self.model, bf16_autocast, autocast_cache=not cuda_graphs)
        self.__dict__["_pair_forward"] = pair_forward
        self.__dict__["_graphed_forward"] = GraphedForward(pair_forward) if cuda_graphs else None
        self.val_metrics = ResponseMetrics()
        self.test_metrics = ResponseMetrics()
        self._test_rows: list[dict[str, Any]] = []
        self._samples_seen: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------------
    # forward and steps
    # ------------------------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> ResponseModule:
        super().train(mode)
        self._pair_forward.train(mode)  # not a submodule: its mode decides whether a graph may replay
        return self

    def forward(self, baseline: torch.Tensor, followup: torch.Tensor) -> torch.Tensor:
        """Logits (B, 3) in float32, in the order of ``RESPONSE_CLASSES``."""
        return self.forward_with_suvmax(baseline, followup)[0]

    def forward_with_suvmax(
        self, baseline: torch.Tensor, followup: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, 3) and predicted log(1 + hottest-lesion SUVmax) (B, 2), both float32 (or ``None``)."""
        graphed = self._graphed_forward
        if graphed is not None and (self._trainer is None or self.trainer.world_size == 1):
            outputs = graphed(baseline, followup)
        else:
            outputs = self._pair_forward(baseline, followup)
        return outputs[0], outputs[1] if len(outputs) > 1 else None

    def _loss(
        self, batch: dict[str, Any], logits: torch.Tensor, suvmax: torch.Tensor | None, stage: str
    ) -> torch.Tensor:
        weights = batch["weight"] if self.hparams.confidence_weighting else None
        loss = weighted_cross_entropy(logits, batch["label"], weights, self.hparams.label_smoothing)
        weight = self.hparams.suvmax_loss_weight
        if weight and suvmax is not None and "suvmax" in batch:
            regression = suvmax_regression_loss(suvmax, batch["suvmax"])
            size = len(batch["label"])
            self.log(f"{stage}/suvmax_loss", regression, batch_size=size, sync_dist=True)
            loss = loss + weight * regression
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits, suvmax = self.forward_with_suvmax(batch["baseline"], batch["followup"])
        loss = self._loss(batch, logits, suvmax, "train")
        size = len(batch["label"])
        # sync_dist: every rank logs the mean over ranks (one all-reduce of a scalar), so a monitored
        # value is the same on every rank under DDP
        self.log("train/loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        accuracy = (logits.argmax(dim=1) == batch["label"]).float().mean()
        self.log("train/accuracy", accuracy, on_step=False, on_epoch=True, batch_size=size, sync_dist=True)
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str, metrics: ResponseMetrics) -> torch.Tensor:
        logits, suvmax = self.forward_with_suvmax(batch["baseline"], batch["followup"])
        loss = self._loss(batch, logits, suvmax, stage)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(batch["label"]), sync_dist=True)
        real = self._real_samples(stage, len(batch["label"]))
        if real:
            metrics.update(torch.softmax(logits[:real], dim=1), batch["label"][:real])
        return logits[:real]

    def _real_samples(self, stage: str, size: int) -> int:
        """How many of this batch's first samples are real, not DDP padding.

        Under DDP, Lightning's DistributedSampler evens out the ranks by repeating samples: of the padded
        index list, position ``p`` goes to rank ``p % world_size`` and positions ``>= len(dataset)`` are
        repeats, so they are the last samples a rank sees. Counting this rank's samples finds them; they
        are kept out of the metrics and prediction files (the torchmetrics states are then synchronised
        over exactly the dataset).
        """
        seen = self._samples_seen.get(stage, 0)
        self._samples_seen[stage] = seen + size
        trainer = self._trainer  # None when a step is called by hand, outside a Trainer
        if trainer is None or trainer.world_size <= 1:
            return size
        loaders = trainer.val_dataloaders if stage == "val" else trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
        sampler = getattr(loader, "sampler", None)
        if not isinstance(sampler, DistributedSampler) or sampler.drop_last:
            return size
        total, rank, world = len(sampler.dataset), sampler.rank, sampler.num_replicas
        return sum((seen + i) * world + rank < total for i in range(size))

    def _log_metrics(self, stage: str, metrics: ResponseMetrics) -> dict[str, float]:
        values = metrics.compute()  # torchmetrics gathers the states of every rank first
        metrics.reset()
        for name in METRIC_NAMES:
            # the same value on every rank: sync_dist only keeps Lightning's DDP bookkeeping consistent
            self.log(f"{stage}/{name}", values[name], prog_bar=name == "macro_auroc", sync_dist=True)
        return values

    def on_validation_epoch_start(self) -> None:
        self._samples_seen["val"] = 0

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self._evaluate(batch, "test", self.test_metrics)
        real = len(logits)
        kept = {k: v[:real] for k, v in batch.items() if k in (*ID_KEYS, "label")}
        self._test_rows.extend(prediction_rows(kept, torch.softmax(logits, dim=1)))

    def on_test_epoch_start(self) -> None:
        self._test_rows = []
        self._samples_seen["test"] = 0

    def on_test_epoch_end(self) -> None:
        values = self._log_metrics("test", self.test_metrics)
        out_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        rank = self.trainer.global_rank
        rows = gather_rows(self._test_rows, self.trainer.world_size)  # every rank's rows, on rank 0
        if rank == 0:
            write_rows(out_dir / "test_predictions.csv", rows)
            table = metrics_markdown(values, title="test")
            write_rows(out_dir / "test_metrics.csv", [{"split": "test", **values}])
            (out_dir / "test_metrics.md").write_text(table + "\n")
            print(f"\n{table}\n(saved in {out_dir}/test_metrics.csv, .md and test_predictions.csv)")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        return prediction_rows(batch, torch.softmax(self(batch["baseline"], batch["followup"]), dim=1))

    # ------------------------------------------------------------------------------------------------
    # optimisation
    # ------------------------------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, Any]:
        decay, no_decay = [], []
        for name, parameter in self.named_parameters():
            if not parameter.requires_grad:
                continue
            plain = parameter.ndim <= 1 or name.endswith(_NO_DECAY_SUFFIXES)
            (no_decay if plain else decay).append(parameter)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.hparams.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.hparams.learning_rate,
        )
        estimated = self.trainer.estimated_stepping_batches
        total = int(estimated) if math.isfinite(estimated) else None
        warmup = round(self.hparams.warmup_fraction * total) if total else 0
        min_ratio = self.hparams.min_lr_ratio

        def factor(step: int) -> float:  # a plain function: LambdaLR saves no state for it
            return warmup_cosine_factor(step, total, warmup, min_ratio)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class PairForward(torch.nn.Module):
    """The paired model's forward in bfloat16 autocast (on CUDA), returning a tuple of float32 tensors.

    ``(logits,)`` or ``(logits, suvmax)``: a tensor-only signature, as CUDA graphs need.
    ``autocast_cache``: autocast's cache of cast weights (CUDA graphs record the casts instead).
    """

    def __init__(self, model: torch.nn.Module, bf16_autocast: bool, autocast_cache: bool = True) -> None:
        super().__init__()
        self.model, self.bf16_autocast, self.autocast_cache = model, bf16_autocast, autocast_cache

    def forward(self, baseline: torch.Tensor, followup: torch.Tensor) -> tuple[torch.Tensor, ...]:
        enabled = self.bf16_autocast and baseline.is_cuda
        autocast = torch.autocast("cuda", torch.bfloat16, enabled=enabled, cache_enabled=self.autocast_cache)
        with autocast:
            logits, suvmax = self.model.forward_with_suvmax(baseline, followup)
        return (logits.float(),) if suvmax is None else (logits.float(), suvmax.float())


def prediction_rows(batch: dict[str, Any], probs: torch.Tensor) -> list[dict[str, Any]]:
    """One row per pair: identifiers, ``target`` (batch label or empty), ``predicted``, ``prob_<class>``."""
    probs = probs.detach().float().cpu()
    labels = batch.get("label")
    rows = []
    for i, p in enumerate(probs.tolist()):
        row: dict[str, Any] = {key: _item(batch[key], i) for key in ID_KEYS if key in batch}
        given = int(labels[i]) if labels is not None else -1
        row["target"] = RESPONSE_CLASSES[given] if given >= 0 else ""
        row["predicted"] = RESPONSE_CLASSES[max(range(len(p)), key=p.__getitem__)]
        row.update({column: f"{value:.6f}" for column, value in zip(PROBABILITY_COLUMNS, p, strict=True)})
        rows.append(row)
    return rows


def gather_rows(rows: list[dict[str, Any]], world_size: int) -> list[dict[str, Any]]:
    """Under DDP, every rank's rows concatenated on rank 0 (other ranks get ``[]``); else ``rows``.

    A pair seen by two ranks is kept once (by its study UIDs), so the table holds each pair exactly once.
    """
    if world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        return rows
    gathered: list[list[dict[str, Any]] | None] = [None] * world_size
    dist.all_gather_object(gathered, rows)  # works on gloo and NCCL alike
    if dist.get_rank() != 0:
        return []
    unique: dict[tuple, dict[str, Any]] = {}
    for part in gathered:
        for row in part or []:
            unique.setdefault((row.get("baseline_study_uid"), row.get("followup_study_uid")), row)
    return list(unique.values())


def _item(values: Any, i: int) -> Any:
    return values[i].item() if isinstance(values, torch.Tensor) else values[i]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write dict rows as CSV (columns from the first row); an empty list writes nothing."""
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
