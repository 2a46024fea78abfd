"""Notebook 04 (MQAR recall study) runs end to end with the small profile."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "04_mqar_recall.ipynb"


def test_mqar_notebook_executes_with_the_small_profile(monkeypatch):
    monkeypatch.setenv("ONCONET_PROFILE", "small")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "profile=small" in text and "a temporary folder" in text  # the stored results are left alone
    assert "Recall accuracy" in text and "| attention |" in text  # the CLI's table
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # pairs per length, trade-off, training curves
    tables = "".join(out.get("data", {}).get("text/html", "") for out in outputs)
    for model in ("attention", "based", "taylor", "monarch"):
        assert model in tables
    assert "layer 0 mixer" in tables and "layer 1 window" in tables  # the ablation table
