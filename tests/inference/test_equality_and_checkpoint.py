"""``onconet infer`` gives the numbers of ``onconet predict`` (LightningCLI) on the same pairs; figures;
checkpoints that are not OncoNet's are refused with a ConfigError naming the file."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.image
import pytest
import torch
import yaml

from onconet.cli import main
from onconet.errors import ConfigError
from onconet.inference.checkpoint import load_checkpoint, sha256_of_file
from onconet.inference.figures import figure_name
from onconet.models.module import PROBABILITY_COLUMNS
from tests.inference.conftest import DATA, MODEL


class Payload:
    """An arbitrary pickled object: ``weights_only=True`` refuses to import and build it."""


def rows_by_pair(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(path, newline="") as handle:
        return {(r["baseline_study_uid"], r["followup_study_uid"]): r for r in csv.DictReader(handle)}


def test_infer_equals_lightning_predict_and_draws_a_figure_per_pair(trained_model, tmp_path) -> None:
    config = {
        "trainer": {"accelerator": "cpu", "devices": 1, "logger": False, "enable_progress_bar": False,
                    "default_root_dir": str(tmp_path / "runs")},
        "model": {k: list(v) if isinstance(v, tuple) else v for k, v in MODEL.items()},
        "data": {"cache": str(trained_model.cache), "truth": str(trained_model.truth), "label_source": "gold",
                 "test_site": None, "val_fraction": 0.0, "test_fraction": 0.0, "augment": False,
                 "batch_size": 2, "num_workers": 0,
                 **{k: list(v) if isinstance(v, tuple) else v for k, v in DATA.items()}},
        "prediction_writer": {"output": str(tmp_path / "lightning.csv")},
    }  # fmt: skip
    (tmp_path / "predict.yaml").write_text(yaml.safe_dump(config))
    code = main(
        ["predict", "--config", str(tmp_path / "predict.yaml"), "--ckpt_path", str(trained_model.ckpt)]
    )
    assert code == 0
    expected = rows_by_pair(tmp_path / "lightning.csv")

    out = tmp_path / "infer"
    argv = ["infer", "--dicom", str(trained_model.dicom), "--ckpt", str(trained_model.ckpt),
            "--out", str(out), "--batch-size", "2", "--num-workers", "1", "--figures",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    got = rows_by_pair(out / "predictions.csv")
    assert len(expected) == 4 and got.keys() == expected.keys()
    for key, row in got.items():
        assert [row[c] for c in (*PROBABILITY_COLUMNS, "predicted", "patient_id", "site")] == [
            expected[key][c] for c in (*PROBABILITY_COLUMNS, "predicted", "patient_id", "site")
        ]
        assert row["checkpoint_sha256"] == sha256_of_file(trained_model.ckpt)
        image = matplotlib.image.imread(out / "figures" / figure_name(row))
        assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100  # two MIPs side by side


def test_checkpoint_keeps_the_training_data_settings(trained_model) -> None:
    loaded = load_checkpoint(trained_model.ckpt)
    assert loaded.settings_from_checkpoint
    assert {
        k: tuple(v) if isinstance(v, list | tuple) else v for k, v in loaded.data_settings.items()
    } == DATA
    assert not loaded.module.training


def test_foreign_checkpoints_are_refused_with_the_file_named(trained_model, tmp_path) -> None:
    not_a_checkpoint = tmp_path / "notes.ckpt"
    not_a_checkpoint.write_bytes(b"hello")
    with pytest.raises(ConfigError, match=r"notes\.ckpt: cannot be loaded as a checkpoint with weights_only"):
        load_checkpoint(not_a_checkpoint)

    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "payload": Payload()}, unsafe)
    with pytest.raises(ConfigError, match=r"unsafe\.ckpt: cannot be loaded"):
        load_checkpoint(unsafe)

    other_model = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"hidden": 8}}, other_model)
    with pytest.raises(ConfigError, match=r"other\.ckpt: no model hyper-parameters"):
        load_checkpoint(other_model)

    checkpoint = torch.load(trained_model.ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["head_hidden"] = 64  # same backbone, other head: weights do not fit
    resized = tmp_path / "resized.ckpt"
    torch.save(checkpoint, resized)
    with pytest.raises(ConfigError, match=r"resized\.ckpt: its weights do not fit"):
        load_checkpoint(resized)
    with pytest.raises(ConfigError, match=r"missing\.ckpt: no such checkpoint"):
        load_checkpoint(tmp_path / "missing.ckpt")
