"""The LightningDataModule over the NIfTI cache: labelled pairs, patient-level splits, in-memory caching.

Inputs (the data contracts): ``CACHE/pairs.csv`` and the NIfTI files it names; weak labels
(``labels.csv`` from ``onconet label``: ``label``, ``confidence``, and the reports' hottest-lesion SUVmax
``baseline_hottest`` / ``followup_hottest``) and/or gold labels (``truth.csv``: ``label``,
``baseline_suvmax`` / ``followup_suvmax``), joined on (baseline_study_uid, followup_study_uid). Each sample
carries ``suvmax`` (2,): the two exams' hottest-lesion SUVmax of its label source, NaN where unknown (the
target of the model's auxiliary SUVmax loss).

Splits: pairs of the held-out site (``test_site``, default ``external``; pairs.csv ``site``) form the test
set, joined by an ``internal_test_fraction`` of the other patients when it is set (an internal
held-out test: ``test_predictions.csv`` then holds both sites, told apart by ``site``); the remaining
patients are shuffled with ``seed`` and a ``val_fraction`` of them validates, the rest trains, so a
patient's pairs never cross splits. Without pairs of the test site, a ``test_fraction`` of
the patients is held out instead. Training and validation pairs without a label are dropped (counted and
logged); the test set keeps only labelled pairs; ``predict`` runs on every pair.

Example:
    >>> dm = PairDataModule(cache="demo_out/cache", labels="demo_out/labels.csv", spatial_size=(48, 48, 64))
    >>> dm.hparams.test_site
    'external'
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from monai.data import CacheDataset, Dataset
from torch.utils.data import DataLoader

from onconet.classes import RESPONSE_CLASSES
from onconet.data.cache import read_csv
from onconet.data.transforms import SuvScaling, pair_transforms
from onconet.errors import ConfigError

log = logging.getLogger(__name__)

LabelSource = Literal["weak", "gold"]
SPLITS: tuple[str, ...] = ("train", "val", "test")
PAIR_KEY: tuple[str, str] = ("baseline_study_uid", "followup_study_uid")
#: pairs.csv column of each image key of a sample.
IMAGE_COLUMNS: dict[str, str] = {
    "baseline_suv": "baseline_pet",
    "baseline_ct": "baseline_ct",
    "followup_suv": "followup_pet",
    "followup_ct": "followup_ct",
}
UNLABELLED = -1
#: Columns of each exam's hottest-lesion SUVmax (baseline, follow-up) per label source; optional.
SUVMAX_COLUMNS: dict[str, tuple[str, str]] = {
    "weak": ("baseline_hottest", "followup_hottest"),
    "gold": ("baseline_suvmax", "followup_suvmax"),
}


@dataclass(frozen=True)
class PairLabel:
    """A pair's label: class index (or ``UNLABELLED``), confidence, hottest-lesion SUVmax (NaN: unknown)."""

    index: int
    confidence: float
    suvmax: tuple[float, float] = (math.nan, math.nan)


MISSING_LABEL = PairLabel(UNLABELLED, 0.0)


@dataclass
class PairSplits:
    """The samples of each split and what was left out."""

    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dropped_unlabelled: Counter = field(default_factory=Counter)

    def patients(self, split: str) -> set[str]:
        """The patient IDs in one split."""
        return {s["patient_id"] for s in self.samples.get(split, [])}


def default_num_workers() -> int:
    """DataLoader workers for this machine: none on ≤ 2 cores (tensors are cached), else half the cores."""
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(8, cores // 2)


def _suvmax_value(text: str | None, path: Path, line: int, column: str) -> float:
    if text is None or text.strip() == "":
        return math.nan
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise ConfigError(f"{path}, line {line}: {column} {text!r} is not a number") from None
    return value if value >= 0 else math.nan


def read_labels(path: Path, source: LabelSource) -> dict[tuple[str, str], PairLabel]:
    """(baseline UID, follow-up UID) -> :class:`PairLabel` from labels.csv (weak) or truth.csv (gold)."""
    if not path.is_file():
        what = "onconet label" if source == "weak" else "the truth table (truth.csv)"
        raise ConfigError(
            f"{path}: no such file (data.{'labels' if source == 'weak' else 'truth'}); run {what}"
        )
    rows = read_csv(path)
    needed = [*PAIR_KEY, "label", *(["confidence"] if source == "weak" else [])]
    missing = [c for c in needed if rows and c not in rows[0]]
    if missing:
        raise ConfigError(f"{path}: missing columns {', '.join(missing)}; expected the {source} label table")
    labels = {}
    for line, row in enumerate(rows, start=2):
        name = (row["label"] or "").strip()
        if name and name not in RESPONSE_CLASSES:
            raise ConfigError(
                f"{path}, line {line}: label {name!r} is not one of {', '.join(RESPONSE_CLASSES)}"
            )
        index = RESPONSE_CLASSES.index(name) if name else UNLABELLED
        try:
            confidence = float(row["confidence"]) if source == "weak" and row["confidence"] != "" else 1.0
        except ValueError:
            raise ConfigError(
                f"{path}, line {line}: confidence {row['confidence']!r} is not a number"
            ) from None
        suvmax = tuple(_suvmax_value(row.get(c), path, line, c) for c in SUVMAX_COLUMNS[source])
        labels[(row[PAIR_KEY[0]], row[PAIR_KEY[1]])] = PairLabel(
            index, confidence if index != UNLABELLED else 0.0, suvmax
        )
    return labels


class PairDataModule(pl.LightningDataModule):
    """Exam pairs from the NIfTI cache with weak or gold labels.

    Args:
        cache: the cache folder of ``onconet ingest`` (pairs.csv, nifti/).
        labels: weak labels (labels.csv of ``onconet label``).
        truth: gold labels (truth.csv of the synthetic cohort): the upper bound, and honest evaluation.
        label_source: labels to train on, ``weak`` (labels.csv, weighed by confidence) or ``gold``.
        eval_label_source: labels of validation and test; default ``gold`` when ``truth`` is given, else
            ``label_source``.
        min_confidence: weak labels below this confidence count as missing.
        spacing: voxel size (mm) the volumes are resampled to.
        spatial_size: volume size after centre crop / pad (also the model's input size).
        suv_scaling: ``log1p`` or ``clip`` (see :mod:`onconet.data.transforms`).
        suv_max: the SUV that maps to 1.
        hu_range: CT window (HU) mapped to 0..1.
        augment: random flips and SUV scale jitter for training.
        flip_prob: probability of a flip along each of ``flip_axes``.
        flip_axes: RAS axes to flip (0 left-right, 1 posterior-anterior, 2 inferior-superior).
        intensity_jitter: relative SUV scale jitter (same factor for both exams).
        max_shift_mm: each training exam is translated by its own random whole-voxel offset of up to
            this many mm per axis (:class:`onconet.data.shift.RandShiftd`); 0: off.
        test_site: the site held out for testing (pairs.csv ``site``); ``None`` for a random hold-out.
        internal_test_fraction: share of the other sites' patients also held out for testing (0: none).
        val_fraction: share of the non-test patients used for validation.
        test_fraction: share of patients held out when no pair is from ``test_site``.
        seed: the patient shuffle.
        batch_size: pairs per batch.
        num_workers: DataLoader workers (default: from ``os.cpu_count()``).
        cache_in_memory: keep the transformed tensors in memory (MONAI CacheDataset).
    """

    def __init__(
        self,
        cache: str,
        labels: str | None = None,
        truth: str | None = None,
        label_source: LabelSource = "weak",
        eval_label_source: LabelSource | None = None,
        min_confidence: float = 0.0,
        spacing: tuple[float, float, float] = (8.0, 8.0, 16.0),
        spatial_size: tuple[int, int, int] = (48, 48, 64),
        suv_scaling: SuvScaling = "log1p",
        suv_max: float = 20.0,
        hu_range: tuple[float, float] = (-1000.0, 1000.0),
        augment: bool = True,
        flip_prob: float = 0.5,
        flip_axes: tuple[int, ...] = (0,),
        intensity_jitter: float = 0.05,
        max_shift_mm: float = 0.0,
        test_site: str | None = "external",
        internal_test_fraction: float = 0.0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        seed: int = 0,
        batch_size: int = 2,
        num_workers: int | None = None,
        cache_in_memory: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        fractions = (
            ("val_fraction", val_fraction),
            ("test_fraction", test_fraction),
            ("internal_test_fraction", internal_test_fraction),
        )
        for name, value in fractions:
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"data.{name} must be in [0, 1), got {value}")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {batch_size}")
        self.splits: PairSplits | None = None
        self._datasets: dict[str, Dataset] = {}

    # ------------------------------------------------------------------------------------------------
    # pairs, labels and splits
    # ------------------------------------------------------------------------------------------------

    def _label_tables(self) -> dict[LabelSource, dict[tuple[str, str], PairLabel]]:
        hp = self.hparams
        tables: dict[LabelSource, dict] = {}
        if hp.labels:
            tables["weak"] = read_labels(Path(hp.labels), "weak")
        if hp.truth:
            tables["gold"] = read_labels(Path(hp.truth), "gold")
        return tables

    def eval_source(self) -> LabelSource:
        """The label source of validation and test."""
        hp = self.hparams
        return hp.eval_label_source or ("gold" if hp.truth else hp.label_source)

    def read_pairs(self) -> list[dict[str, Any]]:
        """One sample dict per row of pairs.csv: image paths, identifiers, train and eval labels."""
        cache = Path(self.hparams.cache)
        pairs_csv = cache / "pairs.csv"
        if not pairs_csv.is_file():
            raise ConfigError(f"{pairs_csv}: no such file (data.cache); run `onconet ingest --cache {cache}`")
        tables = self._label_tables()
        train_source, eval_source = self.hparams.label_source, self.eval_source()
        for source in {train_source, eval_source}:
            if source not in tables:
                option = "data.labels (labels.csv)" if source == "weak" else "data.truth (truth.csv)"
                raise ConfigError(
                    f"{source} labels are needed (data.label_source / eval_label_source): set {option}"
                )
        samples = []
        for line, row in enumerate(read_csv(pairs_csv), start=2):
            sample: dict[str, Any] = {key: row[key] for key in ("patient_id", "site", *PAIR_KEY)}
            for key, column in IMAGE_COLUMNS.items():
                path = cache / (row.get(column) or "")
                if not row.get(column) or not path.is_file():
                    raise ConfigError(
                        f"{pairs_csv}, line {line}: {column} {row.get(column)!r} is not a file under "
                        f"{cache}; re-run onconet ingest"
                    )
                sample[key] = str(path)
            key = (row[PAIR_KEY[0]], row[PAIR_KEY[1]])
            for name, source in (("", train_source), ("eval_", eval_source)):
                label = tables[source].get(key, MISSING_LABEL)
                index, confidence = label.index, label.confidence
                if index != UNLABELLED and source == "weak" and confidence < self.hparams.min_confidence:
                    index, confidence = UNLABELLED, 0.0
                sample[f"{name}label"], sample[f"{name}weight"] = index, confidence
                sample[f"{name}suvmax"] = torch.tensor(label.suvmax, dtype=torch.float32)
            samples.append(sample)
        if not samples:
            raise ConfigError(f"{pairs_csv} holds no pairs; ingest at least two studies of one patient")
        return samples

    def split(self, samples: list[dict[str, Any]]) -> PairSplits:
        """Patient-level train / val / test splits; unlabelled training and evaluation pairs dropped."""
        hp = self.hparams
        test_site = hp.test_site
        patients = sorted({s["patient_id"] for s in samples})
        rng = random.Random(hp.seed)
        if test_site is not None and any(s["site"] == test_site for s in samples):
            test_patients = {s["patient_id"] for s in samples if s["site"] == test_site}
        else:
            if test_site is not None:
                log.warning("no pair from site %r; holding out %.0f %% of patients for test", test_site,
                            100 * hp.test_fraction)  # fmt: skip
            shuffled = patients[:]
            rng.shuffle(shuffled)
            test_patients = set(shuffled[: round(hp.test_fraction * len(shuffled))])
        rest = [p for p in patients if p not in test_patients]
        if hp.internal_test_fraction > 0 and test_site is not None and test_patients:
            # A stream of its own: the train / val split of the other patients is drawn as without it.
            held_out = rest[:]
            random.Random(f"internal-test-{hp.seed}").shuffle(held_out)
            n_internal = min(len(rest) - 2, round(hp.internal_test_fraction * len(rest)))
            test_patients |= set(held_out[: max(0, n_internal)])
            rest = [p for p in rest if p not in test_patients]
        rng.shuffle(rest)
        n_val = min(len(rest) - 1, max(1, round(hp.val_fraction * len(rest)))) if hp.val_fraction > 0 else 0
        val_patients = set(rest[: max(0, n_val)])

        splits = PairSplits(samples={name: [] for name in SPLITS})
        for sample in samples:
            patient = sample["patient_id"]
            name = "test" if patient in test_patients else "val" if patient in val_patients else "train"
            if name != "train":  # validation and test score against the evaluation labels
                sample = {
                    **sample,
                    "label": sample["eval_label"],
                    "weight": sample["eval_weight"],
                    "suvmax": sample["eval_suvmax"],
                }
            if sample["label"] == UNLABELLED:
                splits.dropped_unlabelled[name] += 1
                continue
            splits.samples[name].append(sample)
        return splits

    # ------------------------------------------------------------------------------------------------
    # Lightning hooks
    # ------------------------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Read pairs and labels and split them (once)."""
        if self.splits is not None:
            return
        self.all_samples = self.read_pairs()
        self.splits = self.split(self.all_samples)
        counts = {name: len(items) for name, items in self.splits.samples.items()}
        classes = Counter(RESPONSE_CLASSES[s["label"]] for s in self.splits.samples["train"])
        log.info(
            "pairs: %d in %s; train %d (%s), val %d, test %d; dropped without a label: %s",
            len(self.all_samples), self.hparams.cache, counts["train"],
            ", ".join(f"{c} {classes[c]}" for c in RESPONSE_CLASSES), counts["val"], counts["test"],
            dict(self.splits.dropped_unlabelled) or "none",
        )  # fmt: skip

    def _dataset(self, split: str) -> Dataset:
        if split not in self._datasets:
            if self.splits is None:
                self.setup()
            hp = self.hparams
            samples = self.all_samples if split == "predict" else self.splits.samples[split]
            if split in ("train", "val") and not samples:
                raise ConfigError(
                    f"no labelled pairs for {split} in {hp.cache}; check data.labels / data.truth and the "
                    "splits"
                )
            transform = pair_transforms(
                hp.spacing,
                hp.spatial_size,
                suv_scaling=hp.suv_scaling,
                suv_max=hp.suv_max,
                hu_range=hp.hu_range,
                train=split == "train" and hp.augment,
                flip_prob=hp.flip_prob,
                intensity_jitter=hp.intensity_jitter,
                flip_axes=hp.flip_axes,
                max_shift_mm=hp.max_shift_mm,
            )
            samples = [_without_eval_keys(s) for s in samples]
            if hp.cache_in_memory:
                workers = max(1, os.cpu_count() or 1)
                self._datasets[split] = CacheDataset(samples, transform, num_workers=workers, progress=False)
            else:
                self._datasets[split] = Dataset(samples, transform)
        return self._datasets[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        workers = self.hparams.num_workers if self.hparams.num_workers is not None else default_num_workers()
        return DataLoader(
            self._dataset(split),
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)


def _without_eval_keys(sample: dict[str, Any]) -> dict[str, Any]:
    # eval_* are bookkeeping of the split; a sample carries one label and one weight.
    return {k: v for k, v in sample.items() if not k.startswith("eval_")}
