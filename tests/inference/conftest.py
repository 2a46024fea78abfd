"""Fixtures of the inference tests: a small DICOM export (copied from the synthetic cohort) and a checkpoint.

The checkpoint is a tiny BASED-3D ResponseModule trained for one step with ``Trainer.fit`` on a
PairDataModule over the ingested export, so it carries the datamodule's settings exactly like a
checkpoint of ``onconet fit``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Patients of the synthetic cohort copied into the test export (4 patients, 8 studies, 4 pairs).
PATIENTS = ("SYN0001", "SYN0002", "SYN0003", "SYN0004")
SPATIAL_SIZE = (32, 32, 32)
DATA = {
    "spacing": (12.0, 12.0, 16.0),
    "spatial_size": SPATIAL_SIZE,
    "suv_scaling": "log1p",
    "suv_max": 20.0,
    "hu_range": (-1000.0, 1000.0),
}
MODEL = {
    "backbone": "based3d",
    "backbone_kwargs": {"dim": 32, "depth": 1, "heads": 2, "feature_dim": 8, "patch_size": 4},
    "image_size": SPATIAL_SIZE,
    "fusion_heads": 2,
    "fusion_feature_dim": 8,
    "head_hidden": 16,
    "dropout": 0.0,
}


@dataclass(frozen=True)
class TrainedModel:
    """A checkpoint and the cache / truth it was trained on."""

    ckpt: Path
    cache: Path
    truth: Path
    dicom: Path


def copy_patients(cohort_dicom: Path, dest: Path, patients=PATIENTS) -> Path:
    """Copy some patients' DICOM folders of the cohort into ``dest`` (a fresh export to damage)."""
    for patient in patients:
        shutil.copytree(cohort_dicom / patient, dest / patient)
    return dest


@pytest.fixture(scope="session")
def trained_model(synthetic_cohort, tmp_path_factory) -> TrainedModel:
    """A one-step checkpoint trained on the four test patients (made once per session)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # made once, shared by the pytest-xdist workers
    root = base / "inference_trained_model"
    ckpt = root / "model.ckpt"
    with FileLock(str(root) + ".lock"):
        if not ckpt.is_file():  # saved last: its presence means the whole fixture is there
            shutil.rmtree(root, ignore_errors=True)
            _train(synthetic_cohort, root, ckpt)
    return TrainedModel(ckpt, root / "cache", synthetic_cohort.truth, root / "dicom")


def _train(synthetic_cohort, root: Path, ckpt: Path) -> None:
    import lightning.pytorch as pl
    import torch

    from onconet.data.datamodule import PairDataModule
    from onconet.data.ingest import ingest
    from onconet.models.module import ResponseModule

    dicom = copy_patients(synthetic_cohort.dicom_dir, root / "dicom")
    cache = root / "cache"
    ingest(dicom, cache, progress=False)
    datamodule = PairDataModule(
        cache=str(cache), truth=str(synthetic_cohort.truth), label_source="gold", test_site=None,
        val_fraction=0.0, test_fraction=0.0, augment=False, batch_size=2, num_workers=0,
        cache_in_memory=False, **DATA,
    )  # fmt: skip
    torch.manual_seed(0)
    module = ResponseModule(**MODEL)
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=1, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=root,
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    trainer.save_checkpoint(ckpt.with_suffix(".tmp"))
    os.replace(ckpt.with_suffix(".tmp"), ckpt)
