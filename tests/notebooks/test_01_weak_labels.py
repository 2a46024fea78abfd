"""Notebook 01 (weak labels) runs end to end with the small profile and shows the tools' own numbers."""

from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_weak_labels.ipynb"


def test_weak_labels_notebook_executes_with_the_small_profile(monkeypatch, tmp_path):
    monkeypatch.setenv("ONCONET_PROFILE", "small")
    monkeypatch.setenv("ONCONET_NOTEBOOK_OUT", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "profile=small" in text and "patients=8" in text
    assert "$ onconet synth" in text and "$ onconet label" in text  # the tools ran, as commands
    assert "agreement with gold on 8 pairs" in text  # onconet label's own table
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # coverage / accuracy, votes per function, confidence
    html = "".join(out.get("data", {}).get("text/html", "") for out in outputs)
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
