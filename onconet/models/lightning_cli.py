"""``onconet fit|validate|test|predict --config configs/<name>.yaml`` through LightningCLI.

The model is :class:`onconet.models.module.ResponseModule`, the data
:class:`onconet.data.datamodule.PairDataModule`; ``data.spatial_size`` is linked to ``model.image_size``.
Every run has a ModelCheckpoint (``checkpoint.*``: best on ``val/loss`` as ``best.ckpt``, with
``last.ckpt`` a copy of the latest saved one, in ``<log dir>/checkpoints`` unless ``--checkpoint.dirpath``;
``checkpoint.monitor: null`` keeps the final epoch instead), early stopping
(``early_stopping.*``), a progress bar, and saves its resolved ``config.yaml`` in the log folder.
``predict`` writes ``predictions.csv`` (``--prediction_writer.output`` or the log folder; under DDP rank 0
gathers every rank's rows into it, one row per pair). Checkpoints are
always read with ``weights_only=True`` (``--ckpt_path``).

Example:
    >>> run_lightning_cli(["fit", "--config", "configs/demo.yaml", "--print_config"])  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter, EarlyStopping, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from onconet.data.datamodule import PairDataModule
from onconet.models.module import ResponseModule, gather_rows, write_rows


class PredictionWriter(BasePredictionWriter):
    """Writes the predictions of ``onconet predict`` as CSV (identifiers, ``predicted``, ``prob_<class>``).

    Args:
        output: the CSV path; default ``<log dir>/predictions.csv``.
    """

    def __init__(self, output: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output = output

    def write_on_epoch_end(
        self, trainer: Trainer, pl_module: LightningModule, predictions: Sequence[Any], batch_indices: Any
    ) -> None:
        rows = [row for batch in predictions for row in batch]
        # Under DDP each rank predicted its share (Lightning's unrepeated sampler: no pair twice); rank 0
        # gathers them and writes the one table, each pair once, atomically.
        rows = gather_rows(rows, trainer.world_size)
        if trainer.global_rank != 0:
            return
        path = (
            Path(self.output)
            if self.output
            else Path(trainer.log_dir or trainer.default_root_dir) / "predictions.csv"
        )
        write_rows(path, rows)
        print(f"{len(rows)} predictions written to {path}")


class OncoNetCLI(LightningCLI):
    """LightningCLI with OncoNet's links, callbacks and safe checkpoint loading."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.spatial_size", "model.image_size")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.filename": "best",
                "checkpoint.save_last": True,
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val/loss", "early_stopping.patience": 20})
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")

    def _run_trainer(self, method: str, **kwargs: Any) -> Any:
        # Lightning leaves weights_only=None to torch's default; OncoNet loads checkpoints safely always.
        if kwargs.get("weights_only") is None:
            kwargs["weights_only"] = True
        return getattr(self.trainer, method)(**kwargs)

    def fit(self, **kwargs: Any) -> Any:
        return self._run_trainer("fit", **kwargs)

    def validate(self, **kwargs: Any) -> Any:
        return self._run_trainer("validate", **kwargs)

    def test(self, **kwargs: Any) -> Any:
        return self._run_trainer("test", **kwargs)

    def predict(self, **kwargs: Any) -> Any:
        return self._run_trainer("predict", **kwargs)


def run_lightning_cli(argv: list[str]) -> int:
    """Run LightningCLI on ``argv`` (``[subcommand, *options]``); returns the exit code.

    ``--help`` and ``--print_config`` print and return 0; a parse error prints its message and returns 2.
    """
    try:
        with warnings.catch_warnings():
            # args= is how the onconet console script hands over its own command line
            warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
            OncoNetCLI(
                ResponseModule,
                PairDataModule,
                args=list(argv),
                seed_everything_default=0,
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"prog": "onconet"},
            )
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return int(stop.code or 0)
        print(stop.code, file=sys.stderr)
        return 2
    return 0
