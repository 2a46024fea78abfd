"""Every experiment config parses through ``onconet fit --config X --print_config`` and builds its model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from onconet.cli import main
from onconet.data.datamodule import PairDataModule
from onconet.models.module import ResponseModule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPECTED = {
    "based3d": ("based3d", "weak"),
    "monarch3d": ("monarch3d", "weak"),
    "densenet121": ("densenet121", "weak"),
    "vit_sdpa": ("vit_sdpa", "weak"),
    "based3d_gold": ("based3d", "gold"),
    "demo": ("based3d", "weak"),
}


def test_one_config_per_experiment() -> None:
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_parses_and_builds(name: str, capsys) -> None:
    assert main(["fit", "--config", str(CONFIGS / f"{name}.yaml"), "--print_config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    backbone, label_source = EXPECTED[name]
    assert config["model"]["backbone"] == backbone
    assert config["data"]["label_source"] == label_source
    assert config["early_stopping"]["monitor"] == "val/loss"
    # the experiments keep the best model on val/loss; the demo (two validation pairs) its final epoch
    assert config["checkpoint"]["monitor"] == (None if name == "demo" else "val/loss")

    torch.manual_seed(0)
    model = ResponseModule(**config["model"], image_size=config["data"]["spatial_size"])  # the CLI's link
    assert sum(p.numel() for p in model.parameters()) > 0
    data = PairDataModule(**config["data"])
    assert tuple(data.hparams.spatial_size) == tuple(config["data"]["spatial_size"])


def test_demo_model_runs_on_its_input_size() -> None:
    config = yaml.safe_load((CONFIGS / "demo.yaml").read_text())
    size = config["data"]["spatial_size"]
    model = ResponseModule(**config["model"], image_size=size).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 2, *size), torch.zeros(1, 2, *size)).shape == (1, 3)
