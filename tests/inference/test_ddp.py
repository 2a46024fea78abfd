"""DDP on the CPU (2 processes over gloo), through the ``onconet`` command line as a user runs it.

``onconet fit`` trains two steps on 2 ranks; ``onconet infer --devices 2`` resumes a table that already
holds one pair and predicts the other three (2 + 1 over the ranks: uneven shares), and the merged
``predictions.csv`` must equal a single-process run: same pairs, each once, same probabilities. ``onconet
test --trainer.devices 2`` on 3 test pairs (Lightning pads the ranks to 2 + 2 by repeating a pair) must
write each pair once and score exactly 3 pairs.

Lightning re-launches the command once per extra rank, so each command runs in a subprocess (pytest
itself must not be re-launched); one thread per process keeps it within the suite's budget.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from onconet.classes import RESPONSE_CLASSES
from onconet.data.cache import write_csv
from onconet.inference.writer import PREDICTION_COLUMNS
from onconet.models.module import PROBABILITY_COLUMNS
from tests.inference.conftest import DATA, MODEL

DDP_STARTED = "Starting with 2 processes"


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def by_pair(rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    keyed = {(r["baseline_study_uid"], r["followup_study_uid"]): r for r in rows}
    assert len(keyed) == len(rows), "a pair appears twice"
    return keyed


def onconet(*argv: str, cwd: Path) -> str:
    """Run ``python -m onconet.cli ARGV`` (1 thread per process); its output, or fail with it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ONCONET_INFER"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run(
        [sys.executable, "-m", "onconet.cli", *argv],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"onconet {argv[0]} exited {done.returncode}:\n{output[-4000:]}"
    return output


def config(trained_model, tmp_path: Path, **data) -> dict:
    """A LightningCLI config over the inference tests' ingested cache on 2 CPU ranks."""
    plain = lambda d: {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}  # noqa: E731
    return {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0,
                    "default_root_dir": str(tmp_path / "runs")},
        "model": plain(MODEL),
        "data": {"cache": str(trained_model.cache), "truth": str(trained_model.truth), "label_source": "gold",
                 "test_site": None, "augment": False, "batch_size": 1, "num_workers": 0,
                 "cache_in_memory": False, **plain(DATA), **data},
        "checkpoint": {"monitor": None, "filename": "final", "save_last": False,
                       "dirpath": str(tmp_path / "checkpoints")},
    }  # fmt: skip


@pytest.fixture(scope="module")
def ddp_checkpoint(trained_model, tmp_path_factory) -> Path:
    """``onconet fit`` for two steps on 2 ranks (3 training pairs, 1 validation pair, both padded)."""
    root = tmp_path_factory.mktemp("ddp_fit")
    settings = config(trained_model, root, val_fraction=0.25, test_fraction=0.0)
    settings["trainer"]["max_steps"] = 2
    (root / "fit.yaml").write_text(yaml.safe_dump(settings))
    output = onconet("fit", "--config", str(root / "fit.yaml"), cwd=root)
    assert DDP_STARTED in output and "max_steps=2" in output
    return root / "checkpoints" / "final.ckpt"


def infer_options(trained_model, ckpt: Path) -> list[str]:
    return ["--dicom", str(trained_model.dicom), "--ckpt", str(ckpt), "--accelerator", "cpu",
            "--batch-size", "2", "--num-workers", "0", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def single_table(ddp_checkpoint, trained_model, tmp_path_factory) -> dict[tuple[str, str], dict[str, str]]:
    """``onconet infer --devices 1`` with the DDP-trained checkpoint: the reference table (4 pairs)."""
    out = tmp_path_factory.mktemp("single_infer")
    onconet("infer", *infer_options(trained_model, ddp_checkpoint), "--out", str(out), "--devices", "1",
            cwd=out)  # fmt: skip
    return by_pair(rows_of(out / "predictions.csv"))


def assert_same_probabilities(row: dict[str, str], reference: dict[str, str]) -> None:
    for column in PROBABILITY_COLUMNS:  # written with 6 decimals; batch composition may move the last
        assert float(row[column]) == pytest.approx(float(reference[column]), abs=2e-6), column
    assert row["predicted"] == reference["predicted"]


def test_ddp_infer_resumes_and_merges_to_the_single_process_table(
    ddp_checkpoint, trained_model, single_table, tmp_path
):
    common = infer_options(trained_model, ddp_checkpoint)
    single = single_table
    assert len(single) == 4

    # A run interrupted after one pair: the DDP run must predict only the other three.
    first = sorted(single)[0]
    write_csv(tmp_path / "ddp" / "predictions.csv", [single[first]], PREDICTION_COLUMNS)
    output = onconet("infer", *common, "--out", str(tmp_path / "ddp"), "--devices", "2", cwd=tmp_path)
    assert DDP_STARTED in output
    assert "4 planned, 1 already in predictions.csv, 3 run now (3 predicted, 0 failed)" in output
    assert output.count("predictions.csv: 4 rows") == 1  # rank 0 alone merges and reports

    merged = by_pair(rows_of(tmp_path / "ddp" / "predictions.csv"))
    assert merged.keys() == single.keys()
    for key, row in merged.items():
        assert [row[c] for c in ("patient_id", "site", "checkpoint_sha256")] == [
            single[key][c] for c in ("patient_id", "site", "checkpoint_sha256")
        ]
        assert_same_probabilities(row, single[key])
    assert not list((tmp_path / "ddp" / "parts").glob("*.csv"))
    assert rows_of(tmp_path / "ddp" / "errors.csv") == []


def test_ddp_test_scores_each_pair_once(ddp_checkpoint, trained_model, single_table, tmp_path):
    settings = config(trained_model, tmp_path, val_fraction=0.0, test_fraction=0.75)  # 3 test pairs
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(settings))
    output = onconet("test", "--config", str(tmp_path / "test.yaml"), "--ckpt_path", str(ddp_checkpoint),
                     cwd=tmp_path)  # fmt: skip
    assert DDP_STARTED in output
    runs = tmp_path / "runs"
    rows = by_pair(rows_of(runs / "test_predictions.csv"))
    assert len(rows) == 3 and not list(runs.glob("test_predictions.rank*.csv"))
    (metrics,) = rows_of(runs / "test_metrics.csv")
    assert float(metrics["n"]) == 3.0
    correct = [r["predicted"] == r["target"] for r in rows.values()]
    assert float(metrics["accuracy"]) == pytest.approx(sum(correct) / 3)
    for key, row in rows.items():  # the test set's numbers are the single-process inference's
        assert_same_probabilities(row, single_table[key])
        assert row["target"] in RESPONSE_CLASSES
