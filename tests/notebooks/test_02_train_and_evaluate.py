"""Notebook 02 (train, evaluate) runs with the small profile; its table is what `onconet evaluate` prints."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from onconet.cli import main

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_train_and_evaluate.ipynb"


def markdown_rows(text: str) -> dict[str, list[str]]:
    """First cell -> the other cells, for every body row of the Markdown tables in ``text``."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| site |"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_train_and_evaluate_notebook_executes_with_the_small_profile(monkeypatch, tmp_path, capsys):
    out = tmp_path / "notebook"
    monkeypatch.setenv("ONCONET_PROFILE", "small")
    monkeypatch.setenv("ONCONET_NOTEBOOK_OUT", str(out))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "profile=small" in text
    for command in ("synth", "ingest", "label", "fit", "test", "heuristic"):
        assert f"$ onconet {command} " in text, command
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # ROC grid, calibration grid, at least one example pair
    assert "true class:" in text and "predicted:" in text

    # Every cell of the notebook's comparison table equals what `onconet evaluate` prints for that file.
    shown = {name: cells for name, cells in markdown_rows(text).items() if " / " in name}
    files = sorted((out / "predictions").glob("*/*_predictions.csv"))
    assert {f.parent.name for f in files} == {"based3d_demo", "heuristic"} and len(files) == 4
    assert len(shown) == len(files)
    capsys.readouterr()
    for path in files:
        model, site = path.parent.name, path.name.removesuffix("_predictions.csv")
        arguments = ["evaluate", "--predictions", str(path), "--truth", str(out / "cohort" / "truth.csv")]
        assert main([*arguments, "--out", str(tmp_path / "check" / model / site)]) == 0
        printed = markdown_rows(capsys.readouterr().out)
        assert shown[f"{model} / {site}"] == printed["all"], (model, site)


STORED = NOTEBOOK.parents[1] / "benchmarks" / "results" / "comparison"


def test_the_stored_full_run_shows_what_onconet_evaluate_prints_for_the_stored_files(tmp_path, capsys):
    files = sorted(STORED.glob("*/*_predictions.csv"))
    if not files:
        pytest.skip(f"no comparison run stored in {STORED}")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "profile=full" in text, "notebook 02 is stored without its full run"
    shown = {name: cells for name, cells in markdown_rows(text).items() if " / " in name}
    assert len(shown) == len(files)
    capsys.readouterr()
    for path in files:
        model, site = path.parent.name, path.name.removesuffix("_predictions.csv")
        arguments = ["evaluate", "--predictions", str(path), "--truth", str(STORED / "truth.csv")]
        assert main([*arguments, "--out", str(tmp_path / model / site)]) == 0
        assert shown[f"{model} / {site}"] == markdown_rows(capsys.readouterr().out)["all"], (model, site)
