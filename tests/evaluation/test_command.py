"""``onconet evaluate`` end to end on CSV files."""

import numpy as np
import pandas as pd
import pytest

from onconet.classes import RESPONSE_CLASSES
from onconet.cli import main
from onconet.evaluation.bootstrap import bootstrap_intervals
from onconet.evaluation.metrics import classification_metrics


def _tables(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    logits = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    keys = {
        "baseline_study_uid": [f"1.2.3.{i}.1" for i in range(n)],
        "followup_study_uid": [f"1.2.3.{i}.2" for i in range(n)],
    }
    truth = pd.DataFrame(
        {
            **keys,
            "site": np.where(np.arange(n) % 3 == 0, "external", "internal"),
            "label": np.array(RESPONSE_CLASSES)[y],
        }
    )
    predictions = pd.DataFrame({**keys, **{f"prob_{c}": probs[:, i] for i, c in enumerate(RESPONSE_CLASSES)}})
    return predictions, truth


def test_evaluate_writes_table_and_plots(tmp_path, capsys):
    predictions, truth = _tables()
    predictions.iloc[:-5].to_csv(tmp_path / "predictions.csv", index=False)  # 5 pairs without prediction
    truth.to_csv(tmp_path / "truth.csv", index=False)
    out = tmp_path / "eval"
    args = ["--predictions", str(tmp_path / "predictions.csv"), "--truth", str(tmp_path / "truth.csv")]
    code = main(["evaluate", *args, "--out", str(out), "--bootstrap", "200"])
    assert code == 0
    table = pd.read_csv(out / "metrics.csv")
    assert list(table["site"]) == ["all", "external", "internal"]
    assert table.loc[0, "n"] == 55
    joined = truth.iloc[:-5]
    y = joined["label"].map(RESPONSE_CLASSES.index).to_numpy()
    probs = predictions.iloc[:-5][[f"prob_{c}" for c in RESPONSE_CLASSES]].to_numpy()
    assert table.loc[0, "macro_auroc"] == pytest.approx(classification_metrics(y, probs)["macro_auroc"])
    for metric in ("macro_auroc", "kappa_quadratic"):
        assert table.loc[0, f"{metric}_low"] <= table.loc[0, metric] <= table.loc[0, f"{metric}_high"]
    for name in ("metrics.md", "roc.png", "confusion.png", "calibration.png"):
        assert (out / name).stat().st_size > 0
    assert "macro_auroc" in capsys.readouterr().out


def test_evaluate_names_missing_columns(tmp_path, capsys):
    predictions, truth = _tables()
    predictions.drop(columns=["prob_stable"]).to_csv(tmp_path / "p.csv", index=False)
    truth.to_csv(tmp_path / "t.csv", index=False)
    args = ["--predictions", str(tmp_path / "p.csv"), "--truth", str(tmp_path / "t.csv")]
    code = main(["evaluate", *args, "--out", str(tmp_path / "o")])
    assert code == 1
    assert "prob_stable" in capsys.readouterr().err


def test_bootstrap_interval_narrows_with_more_pairs():
    small_p, small_t = _tables(40, seed=1)
    large_p, large_t = _tables(400, seed=1)

    def width(p, t):
        y = t["label"].map(RESPONSE_CLASSES.index).to_numpy()
        low, high = bootstrap_intervals(y, p.filter(like="prob_").to_numpy(), n_resamples=300)["accuracy"]
        return high - low

    assert width(large_p, large_t) < width(small_p, small_t)


def test_evaluate_takes_the_label_from_the_truth_table(tmp_path):
    predictions, truth = _tables()
    predictions["label"] = "stable"  # e.g. the weak label the model was trained on
    predictions.to_csv(tmp_path / "p.csv", index=False)
    truth.to_csv(tmp_path / "t.csv", index=False)
    args = ["--predictions", str(tmp_path / "p.csv"), "--truth", str(tmp_path / "t.csv")]
    assert main(["evaluate", *args, "--out", str(tmp_path / "o"), "--bootstrap", "50"]) == 0
    table = pd.read_csv(tmp_path / "o" / "metrics.csv")
    y = truth["label"].map(RESPONSE_CLASSES.index).to_numpy()
    probs = predictions[[f"prob_{c}" for c in RESPONSE_CLASSES]].to_numpy()
    assert table.loc[0, "accuracy"] == pytest.approx(classification_metrics(y, probs)["accuracy"])
