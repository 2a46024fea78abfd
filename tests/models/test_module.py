"""The LightningModule: overfitting, confidence-weighted loss, schedule, metrics, test table, checkpoints."""

from __future__ import annotations

import csv
import doctest
import math

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from onconet.classes import RESPONSE_CLASSES
from onconet.errors import ConfigError
from onconet.models import metrics as metrics_module
from onconet.models import module as module_module
from onconet.models.metrics import ResponseMetrics
from onconet.models.module import (
    ResponseModule,
    suvmax_regression_loss,
    warmup_cosine_factor,
    weighted_cross_entropy,
)

SIZE = (16, 16, 8)
TINY = {"dim": 32, "depth": 1, "heads": 2, "feature_dim": 8, "patch_size": 4}
TINY_BACKBONES = {
    "based3d": TINY,
    "monarch3d": {"dim": 32, "depth": 1, "heads": 2, "nblocks": 4, "patch_size": 4},
    "vit_sdpa": {"dim": 32, "depth": 1, "heads": 2, "patch_size": 4},
    "densenet121": {"dim": 32, "init_features": 8, "growth_rate": 4, "block_config": (2, 2)},
}


def tiny_module(**overrides) -> ResponseModule:
    torch.manual_seed(0)
    options = {
        "backbone": "based3d",
        "backbone_kwargs": TINY,
        "image_size": SIZE,
        "fusion_heads": 2,
        "fusion_feature_dim": 8,
        "head_hidden": 32,
        "dropout": 0.0,
        "learning_rate": 3e-3,
        "weight_decay": 0.0,
    }
    return ResponseModule(**{**options, **overrides})


def pairs_with_signal(n: int = 8, seed: int = 0) -> list[dict]:
    """Random volumes with one hot blob whose uptake falls, stays or rises from baseline to follow-up."""
    rng = np.random.default_rng(seed)
    ratios = {"response": 0.4, "stable": 1.0, "progression": 1.9}
    samples = []
    for i in range(n):
        label = RESPONSE_CLASSES[i % 3]
        centre = rng.integers(2, np.array(SIZE) - 2)
        exams = []
        amplitudes = (b := rng.uniform(0.6, 1.0), b * ratios[label])
        for amplitude in amplitudes:
            volume = rng.normal(0.0, 0.05, size=(2, *SIZE)).astype(np.float32)
            x, y, z = centre
            volume[0, x - 1 : x + 2, y - 1 : y + 2, z - 1 : z + 2] += amplitude
            exams.append(torch.from_numpy(volume))
        samples.append(
            {
                "baseline": exams[0],
                "followup": exams[1],
                "label": RESPONSE_CLASSES.index(label),
                "weight": 1.0,
                # the blob's peak as a reader would report it: the SUV channel is log1p(SUV) / log1p(20)
                "suvmax": torch.tensor([math.expm1(a * math.log1p(20.0)) for a in amplitudes]),
                "patient_id": f"P{i:02d}",
                "site": "internal",
                "baseline_study_uid": f"1.{i}.1",
                "followup_study_uid": f"1.{i}.2",
            }
        )
    return samples


def quiet_trainer(tmp_path, **options) -> pl.Trainer:
    defaults = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
    }
    return pl.Trainer(**{**defaults, **options})


@pytest.mark.parametrize("backbone", sorted(TINY_BACKBONES))
def test_overfits_eight_pairs_to_zero_training_error(tmp_path, backbone: str) -> None:
    samples = pairs_with_signal(8)
    module = tiny_module(backbone=backbone, backbone_kwargs=TINY_BACKBONES[backbone])
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(tmp_path, max_epochs=40)
    trainer.fit(module, DataLoader(samples, batch_size=4, shuffle=True))
    batch = next(iter(DataLoader(samples, batch_size=8)))
    module.eval()
    with torch.no_grad():
        predicted = module(batch["baseline"], batch["followup"]).argmax(dim=1)
    assert predicted.tolist() == batch["label"].tolist()


@pytest.mark.parametrize("backbone", sorted(TINY_BACKBONES))
def test_learns_the_uptake_change_on_pairs_it_has_not_seen(tmp_path, backbone: str) -> None:
    # Not memorisation: 48 training pairs, 48 new pairs (new blob places, sizes of uptake).
    train, unseen = pairs_with_signal(48, seed=1), pairs_with_signal(48, seed=2)
    module = tiny_module(backbone=backbone, backbone_kwargs=TINY_BACKBONES[backbone], learning_rate=2e-3)
    pl.seed_everything(0, verbose=False)
    quiet_trainer(tmp_path, max_epochs=20).fit(module, DataLoader(train, batch_size=8, shuffle=True))
    batch = next(iter(DataLoader(unseen, batch_size=48)))
    module.eval()
    with torch.no_grad():
        predicted = module(batch["baseline"], batch["followup"]).argmax(dim=1)
    assert (predicted == batch["label"]).float().mean() >= 0.85


def test_a_zero_confidence_label_contributes_no_gradient() -> None:
    logits = torch.randn(3, 3, requires_grad=True)
    labels = torch.tensor([0, 1, 2])
    weights = torch.tensor([1.0, 0.0, 0.5])
    weighted_cross_entropy(logits, labels, weights).backward()
    assert logits.grad[1].abs().sum() == 0
    assert logits.grad[0].abs().sum() > 0 and logits.grad[2].abs().sum() > 0
    plain = torch.nn.functional.cross_entropy(logits.detach(), labels, reduction="none")
    torch.testing.assert_close(
        weighted_cross_entropy(logits.detach(), labels, weights), (plain * weights).mean()
    )


def test_suvmax_loss_uses_only_the_reported_values() -> None:
    predicted = torch.zeros(3, 2, requires_grad=True)
    reported = torch.tensor([[math.e - 1, float("nan")], [float("nan"), float("nan")], [0.0, math.e**2 - 1]])
    loss = suvmax_regression_loss(predicted, reported)
    loss.backward()
    # smooth L1 (beta 0.1) of |0 - 1| = 0.95 and |0 - 2| = 1.95, and |0 - log1p(0)| = 0, over 3 known values
    assert float(loss) == pytest.approx((0.95 + 1.95 + 0.0) / 3)
    assert predicted.grad[0, 1] == 0 and predicted.grad[1].abs().sum() == 0
    assert predicted.grad[0, 0] < 0 and predicted.grad[2, 1] < 0  # pushes the predictions up


def test_training_step_adds_the_suvmax_loss_with_its_weight() -> None:
    batch = next(iter(DataLoader(pairs_with_signal(4), batch_size=4)))
    plain, aux = tiny_module(suvmax_loss_weight=0.0), tiny_module(suvmax_loss_weight=2.0)
    aux.load_state_dict(plain.state_dict())
    logits, suvmax = aux.forward_with_suvmax(batch["baseline"], batch["followup"])
    expected = weighted_cross_entropy(logits, batch["label"], batch["weight"]) + 2.0 * suvmax_regression_loss(
        suvmax, batch["suvmax"]
    )
    torch.testing.assert_close(aux.training_step(batch, 0).detach(), expected.detach())
    torch.testing.assert_close(
        plain.training_step(batch, 0).detach(), weighted_cross_entropy(logits, batch["label"]).detach()
    )
    with pytest.raises(ConfigError, match="suvmax_head"):
        tiny_module(suvmax_head=False, suvmax_loss_weight=1.0)


def test_predicts_the_hottest_lesion_suvmax_of_exams_it_has_not_seen(tmp_path) -> None:
    # The auxiliary head learns the quantity the reports state, the SUVmax of the hottest lesion (here
    # the blob's peak), on new blob places and amplitudes: far better than the best constant guess.
    train, unseen = pairs_with_signal(48, seed=1), pairs_with_signal(48, seed=2)
    module = tiny_module(learning_rate=2e-3)
    pl.seed_everything(0, verbose=False)
    quiet_trainer(tmp_path, max_epochs=20).fit(module, DataLoader(train, batch_size=8, shuffle=True))
    batch = next(iter(DataLoader(unseen, batch_size=48)))
    module.eval()
    with torch.no_grad():
        _, predicted = module.forward_with_suvmax(batch["baseline"], batch["followup"])
    truth = batch["suvmax"]
    error = float(((predicted.expm1() - truth).abs() / truth).median())
    constant = min(float(((c - truth).abs() / truth).median()) for c in torch.linspace(1, 20, 400))
    assert error < 0.5 * constant, (error, constant)


def test_training_step_weighs_by_confidence_only_when_asked() -> None:
    samples = pairs_with_signal(2)
    batch = next(iter(DataLoader(samples, batch_size=2)))
    batch["weight"] = torch.tensor([0.0, 0.0])
    # the class loss only: the SUVmax loss follows the reports' numbers, not the class confidence
    weighted = tiny_module(suvmax_loss_weight=0.0)
    unweighted = tiny_module(confidence_weighting=False, suvmax_loss_weight=0.0)
    assert float(weighted.training_step(batch, 0).detach()) == 0.0
    assert float(unweighted.training_step(batch, 0).detach()) > 0.0


def test_warmup_then_cosine_schedule() -> None:
    total, warmup, floor = 100, 10, 0.01
    factors = [warmup_cosine_factor(step, total, warmup, floor) for step in range(total + 1)]
    assert factors[:warmup] == sorted(factors[:warmup]) and factors[warmup - 1] == 1.0
    assert factors[warmup:] == sorted(factors[warmup:], reverse=True)
    assert math.isclose(factors[warmup + 45], floor + (1 - floor) / 2)
    assert math.isclose(factors[total], floor)
    assert warmup_cosine_factor(500, None, warmup, floor) == 1.0  # no known end: constant after warm-up


def test_learning_rate_follows_the_schedule_during_fit(tmp_path) -> None:
    module = tiny_module(warmup_fraction=0.25, min_lr_ratio=0.0)
    seen = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = quiet_trainer(tmp_path, max_steps=8, callbacks=[Record()])
    trainer.fit(module, DataLoader(pairs_with_signal(4), batch_size=1))
    expected = [3e-3 * warmup_cosine_factor(step, 8, 2, 0.0) for step in range(8)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)


def test_no_weight_decay_on_biases_norms_and_embeddings() -> None:
    module = tiny_module(weight_decay=0.1)
    module.trainer = None  # configure_optimizers reads the trainer's step estimate
    names = {id(p): n for n, p in module.named_parameters()}

    class FakeTrainer:
        estimated_stepping_batches = 10

    module._trainer = FakeTrainer()
    optimizer = module.configure_optimizers()["optimizer"]
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"])
    plain = {names[id(p)] for p in no_decay["params"]}
    assert "model.fusion.timepoint" in plain and any(n.endswith("norm.weight") for n in plain)
    assert len(decay["params"]) + len(no_decay["params"]) == len(names)


def test_metrics_agree_with_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    probs = rng.dirichlet(np.ones(3), 40) * 0.5 + np.eye(3)[labels] * 0.5 * rng.uniform(0, 1, (40, 1))
    probs /= probs.sum(axis=1, keepdims=True)
    metrics = ResponseMetrics()
    for chunk in np.array_split(np.arange(40), 3):  # accumulated over batches
        metrics.update(torch.tensor(probs[chunk]), torch.tensor(labels[chunk]))
    values = metrics.compute()
    changed = labels != RESPONSE_CLASSES.index("stable")
    expected = {
        "macro_auroc": sklearn_metrics.roc_auc_score(labels, probs, multi_class="ovr", average="macro"),
        "change_auroc": sklearn_metrics.roc_auc_score(changed, 1 - probs[:, 1]),
        "accuracy": sklearn_metrics.accuracy_score(labels, probs.argmax(1)),
        "kappa_quadratic": sklearn_metrics.cohen_kappa_score(labels, probs.argmax(1), weights="quadratic"),
    }
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, abs=1e-5), name
    assert values["n"] == 40


def test_metrics_leave_out_classes_that_are_absent() -> None:
    metrics = ResponseMetrics()
    # no progression at all: macro AUROC over response and stable only; change AUROC = response vs stable
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.4, 0.3]])
    metrics.update(probs, torch.tensor([0, 1, 0, 1]))
    values = metrics.compute()
    assert values["macro_auroc"] == pytest.approx(1.0)
    assert values["change_auroc"] == pytest.approx(1.0)
    metrics.reset()
    metrics.update(probs, torch.tensor([1, 1, 1, 1]))
    assert math.isnan(metrics.compute()["macro_auroc"]) and math.isnan(metrics.compute()["change_auroc"])


def test_test_run_prints_and_saves_the_metrics_table(tmp_path, capsys) -> None:
    module = tiny_module()
    trainer = quiet_trainer(tmp_path)
    samples = pairs_with_signal(6)
    result = trainer.test(module, DataLoader(samples, batch_size=4), verbose=False)[0]
    out = capsys.readouterr().out
    assert "| split | n | macro_auroc | change_auroc | accuracy | kappa_quadratic |" in out
    with open(tmp_path / "test_metrics.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["n"]) == 6
    for name in ("macro_auroc", "change_auroc", "accuracy", "kappa_quadratic"):
        assert float(row[name]) == pytest.approx(result[f"test/{name}"], abs=1e-6)
    assert (tmp_path / "test_metrics.md").read_text().startswith("| split |")
    with open(tmp_path / "test_predictions.csv") as handle:
        predictions = list(csv.DictReader(handle))
    assert [p["baseline_study_uid"] for p in predictions] == [s["baseline_study_uid"] for s in samples]
    for p in predictions:
        probs = [float(p[f"prob_{c}"]) for c in RESPONSE_CLASSES]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert p["predicted"] == RESPONSE_CLASSES[int(np.argmax(probs))]


def test_checkpoints_load_with_weights_only(tmp_path) -> None:
    samples = pairs_with_signal(4)
    module = tiny_module()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", filename="last")
    trainer = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(module, DataLoader(samples, batch_size=2))
    path = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(path, weights_only=True, map_location="cpu")
    assert state["hyper_parameters"]["backbone"] == "based3d"
    restored = ResponseModule.load_from_checkpoint(path, weights_only=True, map_location="cpu").eval()
    module.eval()
    batch = next(iter(DataLoader(samples, batch_size=4)))
    with torch.no_grad():
        torch.testing.assert_close(
            restored(batch["baseline"], batch["followup"]), module(batch["baseline"], batch["followup"])
        )


@pytest.mark.parametrize("module", [module_module, metrics_module])
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_local_change_window_reaches_the_model() -> None:
    module = ResponseModule(
        "based3d", {"dim": 32, "depth": 1, "heads": 2}, image_size=(16, 16, 16), local_change_window=3
    )
    assert module.model.local_change_window == 3
    volumes = torch.randn(2, 2, 16, 16, 16)
    assert module(volumes, volumes).shape == (2, 3)
