"""Notebook 01 (weak labels) runs end to end with the small profile and shows the tools' own numbers."""

import pandas as pd
from notebook_runner import execute_small_profile


def test_weak_labels_notebook_executes_with_the_small_profile(monkeypatch, tmp_path):
    shown = execute_small_profile(monkeypatch, "01_weak_labels.ipynb", timeout=240, out=tmp_path)
    text = shown.text
    assert "profile=small" in text and "patients=8" in text
    assert "$ onconet synth" in text and "$ onconet label" in text  # the tools ran, as commands
    assert "agreement with gold on 8 pairs" in text  # onconet label's own table
    assert len(shown.images) >= 3  # coverage / accuracy, votes per function, confidence
    html = shown.html
    assert "majority vote" in html and "label model" in html and "lf_impression" in html

    # The table shown is the one the command wrote, and it agrees with the labels it wrote.
    agreement = pd.read_csv(tmp_path / "agreement.csv").set_index("source")
    labels = pd.read_csv(tmp_path / "labels.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(tmp_path / "cohort" / "truth.csv", dtype=str)
    joined = labels.merge(truth, on=["baseline_study_uid", "followup_study_uid"], suffixes=("", "_true"))
    assert len(joined) == 8
    assert agreement.loc["label model", "accuracy_all"] == (joined["label"] == joined["label_true"]).mean()
    for source, row in agreement.iterrows():
        if source.startswith("lf_"):
            assert row["coverage"] == (labels[source] != "").mean()
    assert f"label model {agreement.loc['label model', 'accuracy_all']:.3f}" in text
