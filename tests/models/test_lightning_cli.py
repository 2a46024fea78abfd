"""``onconet fit`` -> ``test`` -> ``predict`` through LightningCLI on the ingested synthetic cohort."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from onconet.classes import RESPONSE_CLASSES
from onconet.cli import main
from onconet.data.cache import read_csv

REPO_ROOT = Path(__file__).resolve().parents[2]


def options(cache: Path, cohort, root: Path) -> list[str]:
    return [
        "--config", str(REPO_ROOT / "configs" / "demo.yaml"),
        "--data.cache", str(cache),
        "--data.labels", "null",
        "--data.truth", str(cohort.truth),
        "--data.label_source", "gold",
        "--data.spacing", "[16.0, 16.0, 32.0]",
        "--data.spatial_size", "[24, 24, 32]",
        "--data.num_workers", "0",
        "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false",
        "--checkpoint.dirpath", str(root / "checkpoints"),
        # the experiment configs' checkpointing (demo.yaml keeps its final epoch instead)
        "--checkpoint.monitor", "val/loss",
        "--checkpoint.filename", "best",
        "--checkpoint.save_last", "true",
    ]  # fmt: skip


def log_dirs(root: Path) -> list[Path]:
    return sorted((root / "lightning_logs").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


@pytest.fixture(scope="module")
def fitted(synthetic_cache, synthetic_cohort, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli_run")
    code = main(["fit", *options(synthetic_cache, synthetic_cohort, root), "--trainer.max_epochs", "2"])
    assert code == 0
    return root


def test_fit_saves_the_config_and_safe_checkpoints(fitted) -> None:
    (run,) = log_dirs(fitted)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["backbone"] == "based3d" and config["data"]["spatial_size"] == [24, 24, 32]
    for name in ("best.ckpt", "last.ckpt"):
        state = torch.load(fitted / "checkpoints" / name, weights_only=True, map_location="cpu")
        assert state["epoch"] in (0, 1) and "state_dict" in state
        assert list(state["hyper_parameters"]["image_size"]) == [24, 24, 32]  # linked from data.spatial_size


def test_test_prints_and_saves_the_metrics_table(fitted, synthetic_cache, synthetic_cohort, capsys) -> None:
    args = options(synthetic_cache, synthetic_cohort, fitted)
    assert main(["test", *args, "--ckpt_path", str(fitted / "checkpoints" / "best.ckpt")]) == 0
    assert (
        "| split | n | macro_auroc | change_auroc | accuracy | kappa_quadratic |" in capsys.readouterr().out
    )
    run = log_dirs(fitted)[-1]
    (row,) = read_csv(run / "test_metrics.csv")
    external = [r for r in read_csv(synthetic_cache / "pairs.csv") if r["site"] == "external"]
    assert int(float(row["n"])) == len(external)
    assert 0.0 <= float(row["accuracy"]) <= 1.0
    predictions = read_csv(run / "test_predictions.csv")
    assert {p["site"] for p in predictions} == {"external"}


def test_predict_writes_one_row_per_pair(fitted, synthetic_cache, synthetic_cohort) -> None:
    out = fitted / "predictions.csv"
    args = [*options(synthetic_cache, synthetic_cohort, fitted), "--prediction_writer.output", str(out)]
    assert main(["predict", *args, "--ckpt_path", str(fitted / "checkpoints" / "last.ckpt")]) == 0
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(read_csv(synthetic_cache / "pairs.csv"))
    for row in rows:
        probs = [float(row[f"prob_{c}"]) for c in RESPONSE_CLASSES]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5) and row["predicted"] in RESPONSE_CLASSES


def test_bad_options_fail_with_a_message(capsys) -> None:
    assert main(["fit", "--config", str(REPO_ROOT / "configs" / "demo.yaml"), "--model.no_such", "1"]) == 2
    assert "no_such" in capsys.readouterr().err
