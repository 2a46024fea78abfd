"""Notebook 03 (kernel and backbone figures) runs with the small profile and plots the stored H200 numbers."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03_kernels_and_backbones.ipynb"


def test_kernels_and_backbones_notebook_executes_with_the_small_profile(monkeypatch):
    monkeypatch.setenv("ONCONET_PROFILE", "small")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "profile=small" in text and "nothing measured here" in text
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) == 3  # kernels vs tokens, mixers at one size, backbones vs tokens
    tables = "".join(out.get("data", {}).get("text/plain", "") for out in outputs)
    html = "".join(out.get("data", {}).get("text/html", "") for out in outputs)
    # values of the stored H200 files, read back, not typed in: kernels.md, kernels_mixers.md, backbones.md
    for value in ("0.242", "629.553", "1829", "flex_attention", "1439.1", "8133.5", "densenet121"):
        assert value in tables or value in html, value
    assert "38.8×" in html and "258.5×" in html  # cuDNN SDPA / ours, computed from the read tables
