"""The inference run: plan -> pairs loaded by DataLoader workers, batched here -> ``Trainer.predict``.

:func:`infer` is what ``onconet infer`` calls. The same code runs on the CPU, on one GPU, or on several
with DDP: Lightning re-launches the command once per rank, each rank plans the same pairs and predicts its
share (an unrepeated distributed sampler), writes its part files, and rank 0 merges them after a barrier.

Example::

    summary = infer("export/", "model.ckpt", "out/", batch_size=4, num_workers=2)
    print("\\n".join(summary.lines()))
"""

from __future__ import annotations

import logging
import os
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from tqdm import tqdm

from onconet import __version__
from onconet.data.discovery import start_discovery
from onconet.data.pairs import PAIR_MODES
from onconet.errors import ConfigError
from onconet.inference.batching import PairBatches
from onconet.inference.checkpoint import LoadedCheckpoint, load_checkpoint
from onconet.inference.dataset import DicomPairDataset
from onconet.inference.device import prepare_device
from onconet.inference.figures import save_pair_figure
from onconet.inference.plan import discovery_processes, plan_from_discovery
from onconet.inference.writer import (
    CsvPredictionWriter,
    existing_predictions,
    merge_errors,
    merge_predictions,
)

log = logging.getLogger(__name__)

#: Environment variable naming the run, so every DDP rank (a re-launched process) uses the same name.
RUN_ID_ENV = "ONCONET_INFER_RUN_ID"
#: Per-row columns taken from the sample's metadata (the model's rows carry IDs, classes, probabilities).
META_COLUMNS = ("baseline_date", "followup_date", "site", "baseline_manufacturer", "followup_manufacturer")


class PairPredictor(pl.LightningModule):
    """Runs a ResponseModule's ``predict_step`` on the good pairs of a batch, passes failures through."""

    def __init__(self, module: pl.LightningModule) -> None:
        super().__init__()
        self.module = module

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        rows = []
        if batch["meta"]:
            for row, meta in zip(self.module.predict_step(batch, batch_idx), batch["meta"], strict=True):
                row = {k: v for k, v in row.items() if k not in ("label", "target")}
                rows.append({**row, **{k: meta[k] for k in META_COLUMNS}})
        return {"rows": rows, "errors": batch["errors"]}


class PairProgress(Callback):
    """A progress bar in pairs (pairs per second) on rank 0, and the count of pairs done."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.enabled, self.pairs = total, enabled, 0
        self.bar: tqdm | None = None
        self.started = 0.0  # when the prediction loop started (processes launched, model on the device)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.perf_counter()
        share = -(-self.total // trainer.world_size)
        self.bar = tqdm(
            total=share, desc="infer", unit="pair", disable=not self.enabled or trainer.global_rank
        )

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.pairs += batch["size"]
        if self.bar is not None:
            self.bar.update(batch["size"])

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()


class PairFigures(Callback):
    """``--figures``: one PNG per predicted pair under ``OUTDIR/figures``."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        for row, meta in zip(outputs["rows"], batch["meta"], strict=True):
            save_pair_figure(row, meta["baseline_view"], meta["followup_view"], self.out_dir)


@dataclass
class InferenceSummary:
    """What one run did (rank 0's view after the merge)."""

    out_dir: Path
    pairs_planned: int = 0
    pairs_already_done: int = 0
    pairs_attempted: int = 0
    predictions: int = 0  # rows in predictions.csv after the run
    new_predictions: int = 0
    failed_pairs: int = 0
    error_rows: int = 0
    seconds: float = 0.0
    loop_seconds: float = 0.0  # the prediction loop alone, until every rank is done (no start-up)
    world_size: int = 1
    checkpoint_sha256: str = ""
    rank: int = 0  # DDP ranks other than 0 return before the merge and print nothing
    #: seconds from the start of the run at which each step ended (see :func:`infer`)
    marks: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The human-readable final summary."""
        rate = self.pairs_attempted / self.seconds if self.seconds > 0 else 0.0
        return [
            f"pairs: {self.pairs_planned} planned, {self.pairs_already_done} already in predictions.csv, "
            f"{self.pairs_attempted} run now ({self.new_predictions} predicted, {self.failed_pairs} failed) "
            f"in {self.seconds:.1f} s ({rate:.2f} pairs/s)",
            f"prediction loop: {self.loop_seconds:.1f} s on {self.world_size} rank(s) "
            f"({self.pairs_attempted / self.loop_seconds if self.loop_seconds > 0 else 0.0:.2f} pairs/s)",
            f"predictions.csv: {self.predictions} rows; errors.csv: {self.error_rows} rows "
            f"(checkpoint sha256 {self.checkpoint_sha256[:12]}...)",
            f"written to {self.out_dir}",
        ]


def _placement(trainer: pl.Trainer) -> tuple[int, int, torch.device]:
    """This process's rank, the world size and its device (known once a DDP launch has set the ranks)."""
    return trainer.global_rank, trainer.world_size, trainer.strategy.root_device


def infer(
    dicom_dir: str | os.PathLike,
    ckpt: str | os.PathLike | LoadedCheckpoint,
    out_dir: str | os.PathLike,
    *,
    pairs_mode: str = "consecutive",
    accelerator: str = "auto",
    devices: int = 1,
    batch_size: int = 2,
    num_workers: int = 0,
    figures: bool = False,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> InferenceSummary:
    """Predict every pair of studies under ``dicom_dir`` into ``out_dir`` (see the module docstring).

    ``cache_dir``: also keep the converted volumes there as a NIfTI cache (reused by a re-run); ``None``
    hands them to the transforms in memory. ``callbacks`` run after the writer (tests inject a crash
    through one).
    """
    if pairs_mode not in PAIR_MODES:
        raise ConfigError(f"--pairs {pairs_mode!r}: use one of {', '.join(PAIR_MODES)}")
    for name, value, least in (("--devices", devices, 1), ("--batch-size", batch_size, 1),
                               ("--num-workers", num_workers, 0)):  # fmt: skip
        if value < least:
            raise ConfigError(f"{name} {value}: use {least} or more")
    # Every DDP rank re-runs this function in its own process; they share the run's name through the
    # environment. The process that named the run forgets the name at the end, crash or not.
    owner = RUN_ID_ENV not in os.environ
    run_id = os.environ.setdefault(RUN_ID_ENV, uuid.uuid4().hex[:12])
    try:
        return _infer(dicom_dir, ckpt, Path(out_dir), run_id, pairs_mode=pairs_mode, accelerator=accelerator,
                      devices=devices, batch_size=batch_size, num_workers=num_workers, figures=figures,
                      cache_dir=cache_dir, progress=progress, callbacks=callbacks)  # fmt: skip
    finally:
        if owner:
            os.environ.pop(RUN_ID_ENV, None)


def _infer(
    dicom_dir: str | os.PathLike,
    ckpt: str | os.PathLike | LoadedCheckpoint,
    out_dir: Path,
    run_id: str,
    *,
    pairs_mode: str,
    accelerator: str,
    devices: int,
    batch_size: int,
    num_workers: int,
    figures: bool,
    cache_dir: str | os.PathLike | None,
    progress: bool,
    callbacks: Sequence[Callback],
) -> InferenceSummary:
    started = time.perf_counter()
    marks: dict[str, float] = {}

    def mark(step: str) -> None:
        marks[step] = time.perf_counter() - started

    out_dir.mkdir(parents=True, exist_ok=True)
    # Discovery runs in worker processes from here on; meanwhile this process loads the checkpoint, makes
    # the Trainer and (one CUDA device) moves the model, instead of doing all that afterwards.
    with start_discovery(dicom_dir, discovery_processes(num_workers, devices)) as pending:
        loaded = ckpt if isinstance(ckpt, LoadedCheckpoint) else load_checkpoint(ckpt)
        mark("checkpoint")
        writer = CsvPredictionWriter(
            out_dir, run_id, {"checkpoint_sha256": loaded.sha256, "onconet_version": __version__}
        )
        extra: list[Callback] = [PairFigures(out_dir / "figures")] if figures else []
        progress_bar = PairProgress(0, progress)  # the total is known after planning
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            strategy="ddp" if devices > 1 else "auto",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=out_dir,
            callbacks=[writer, progress_bar, *extra, *callbacks],
        )
        mark("trainer")
        predictor = PairPredictor(loaded.module)
        if prepare_device(predictor, trainer.strategy.root_device, trainer.world_size):
            mark("device ready")
        found = pending.result()
    mark("discovery")
    plan = plan_from_discovery(found, pairs_mode)
    done = existing_predictions(out_dir, loaded.sha256)
    jobs = [job for job in plan.jobs if job.key not in done]
    mark("plan")
    summary = InferenceSummary(
        out_dir, len(plan.jobs), len(plan.jobs) - len(jobs), len(jobs), checkpoint_sha256=loaded.sha256
    )
    summary.marks = marks
    rank = 0
    if jobs:
        dataset = DicomPairDataset(jobs, cache_dir, loaded.data_settings, figures=figures)
        progress_bar.total = len(jobs)
        # the workers load single pairs, this process batches them (see onconet.inference.batching)
        batches = PairBatches(dataset, batch_size, num_workers, placement=lambda: _placement(trainer))
        if devices == 1:  # the workers read the first pairs while Lightning sets up the loop
            batches.start()
        mark("workers started")
        try:
            with warnings.catch_warnings():  # Lightning: batch indices are known only from its samplers
                warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")
                trainer.predict(predictor, dataloaders=batches, return_predictions=False)
        finally:
            batches.close()
        trainer.strategy.barrier()
        rank = trainer.global_rank
        marks["loop start"] = progress_bar.started - started
        mark("loop end")
        summary.loop_seconds = time.perf_counter() - progress_bar.started
        summary.world_size = trainer.world_size
    if rank != 0:
        summary.rank = rank
        return summary
    rows = merge_predictions(out_dir, loaded.sha256)
    errors = merge_errors(out_dir, plan.errors, run_id)
    keys = {(r["baseline_study_uid"], r["followup_study_uid"]) for r in rows}
    summary.predictions = len(rows)
    summary.new_predictions = sum(job.key in keys for job in jobs)
    summary.failed_pairs = summary.pairs_attempted - summary.new_predictions
    summary.error_rows = len(errors)
    summary.seconds = time.perf_counter() - started
    return summary
