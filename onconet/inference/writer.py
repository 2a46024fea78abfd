"""predictions.csv and errors.csv: per-rank part files written batch by batch, merged at the end.

Each rank keeps its own part file, ``OUTDIR/parts/predictions.<run>.rank<r>.csv``, and after every batch
rewrites it through a temporary file and :func:`os.replace`, so a crash loses at most the batch in flight
and never leaves a half-written row. At the end rank 0 merges ``predictions.csv`` with every part file
(also those a crashed run left behind), drops duplicate pairs, and replaces ``predictions.csv`` atomically.
A re-run reads the same files to skip the pairs already predicted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter

from onconet.data.cache import read_csv, write_csv
from onconet.errors import ConfigError
from onconet.inference.plan import ERROR_COLUMNS
from onconet.models.module import PROBABILITY_COLUMNS

PAIR_KEY: tuple[str, str] = ("baseline_study_uid", "followup_study_uid")
PREDICTION_COLUMNS: tuple[str, ...] = (
    "patient_id", "baseline_study_uid", "followup_study_uid", "baseline_date", "followup_date", "site",
    "baseline_manufacturer", "followup_manufacturer", *PROBABILITY_COLUMNS, "predicted",
    "checkpoint_sha256", "onconet_version",
)  # fmt: skip
PARTS_DIR = "parts"


def part_files(out_dir: str | os.PathLike, kind: str) -> list[Path]:
    """The part files of ``kind`` (``predictions`` or ``errors``) under ``OUTDIR/parts``, sorted."""
    return sorted((Path(out_dir) / PARTS_DIR).glob(f"{kind}.*.csv"))


def _read_rows(paths: Iterable[Path]) -> list[dict[str, str]]:
    rows = []
    for path in paths:
        if path.is_file():
            rows.extend(read_csv(path))
    return rows


def existing_predictions(out_dir: str | os.PathLike, checkpoint_sha256: str) -> dict[tuple[str, str], dict]:
    """Pairs already predicted in ``OUTDIR`` (predictions.csv and leftover part files), by pair key.

    Raises:
        ConfigError: the folder holds predictions of another checkpoint (one table, one model).
    """
    out_dir = Path(out_dir)
    rows = _read_rows([out_dir / "predictions.csv", *part_files(out_dir, "predictions")])
    others = {row.get("checkpoint_sha256", "") for row in rows} - {checkpoint_sha256}
    if others:
        raise ConfigError(
            f"{out_dir}/predictions.csv holds predictions of another checkpoint (sha256 "
            f"{sorted(others)[0][:12]}..., this one is {checkpoint_sha256[:12]}...); use another --out folder"
        )
    return {(row[PAIR_KEY[0]], row[PAIR_KEY[1]]): row for row in rows}


def _pair_order(row: dict) -> tuple[str, ...]:
    return row.get("patient_id", ""), row.get("baseline_date", ""), row[PAIR_KEY[0]], row[PAIR_KEY[1]]


def merge_predictions(out_dir: str | os.PathLike, checkpoint_sha256: str) -> list[dict]:
    """Merge predictions.csv with every part file (no duplicates), write it atomically, delete the parts."""
    out_dir = Path(out_dir)
    parts = part_files(out_dir, "predictions")
    rows = sorted(existing_predictions(out_dir, checkpoint_sha256).values(), key=_pair_order)
    write_csv(out_dir / "predictions.csv", rows, PREDICTION_COLUMNS)
    for path in parts:
        path.unlink(missing_ok=True)
    return rows


def merge_errors(out_dir: str | os.PathLike, planned: Sequence[dict], run_id: str) -> list[dict]:
    """errors.csv = the plan's errors + this run's errors from the workers (no duplicates); parts deleted."""
    out_dir = Path(out_dir)
    parts = part_files(out_dir, "errors")
    current = [p for p in parts if p.name.startswith(f"errors.{run_id}.")]
    seen, rows = set(), []
    for row in [*planned, *_read_rows(current)]:
        key = tuple(str(row.get(c, "")) for c in ERROR_COLUMNS)
        if key not in seen:
            seen.add(key)
            rows.append(row)
    write_csv(out_dir / "errors.csv", rows, ERROR_COLUMNS)
    for path in parts:  # a crashed run's errors are stale: its failed pairs were tried again
        path.unlink(missing_ok=True)
    return rows


class CsvPredictionWriter(BasePredictionWriter):
    """Writes each batch's predictions and failures to this rank's part files (atomic rewrite).

    Args:
        out_dir: the run's output folder.
        run_id: names this run's part files (the same on every rank).
        static_columns: values for every row (checkpoint hash, package version).
    """

    def __init__(self, out_dir: str | os.PathLike, run_id: str, static_columns: dict[str, str]) -> None:
        super().__init__(write_interval="batch")
        self.out_dir = Path(out_dir)
        self.run_id = run_id
        self.static_columns = dict(static_columns)
        self.rows: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self._resumed = False

    def _path(self, kind: str, rank: int) -> Path:
        return self.out_dir / PARTS_DIR / f"{kind}.{self.run_id}.rank{rank}.csv"

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        rank = trainer.global_rank
        if not self._resumed:  # never overwrite rows a part file of the same name already holds
            self._resumed = True
            for kind, rows in (("predictions", self.rows), ("errors", self.errors)):
                if self._path(kind, rank).is_file():
                    rows.extend(read_csv(self._path(kind, rank)))
        new_rows = [{**row, **self.static_columns} for row in prediction["rows"]]
        if new_rows:
            self.rows.extend(new_rows)
            write_csv(self._path("predictions", rank), self.rows, PREDICTION_COLUMNS)
        if prediction["errors"]:
            self.errors.extend(prediction["errors"])
            write_csv(self._path("errors", rank), self.errors, ERROR_COLUMNS)
