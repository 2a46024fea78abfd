"""Notebook 02 (train, evaluate) runs with the small profile; its table is what `onconet evaluate` prints."""

from pathlib import Path

import pytest
from notebook_runner import NOTEBOOKS, execute_small_profile, stored_outputs

from onconet.cli import main

NOTEBOOK = "02_train_and_evaluate.ipynb"


def markdown_rows(text: str) -> dict[str, list[str]]:
    """First cell -> the other cells, for every body row of the Markdown tables in ``text``."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| site |"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def assert_rows_equal_onconet_evaluate(text: str, files: list[Path], truth: Path, out: Path, capsys) -> None:
    """Every "<model> / <site>" row of the notebook's table is the "all" row evaluate prints for that file."""
    shown = {name: cells for name, cells in markdown_rows(text).items() if " / " in name}
    assert len(shown) == len(files)
    capsys.readouterr()
    for path in files:
        model, site = path.parent.name, path.name.removesuffix("_predictions.csv")
        arguments = ["evaluate", "--predictions", str(path), "--truth", str(truth)]
        assert main([*arguments, "--out", str(out / model / site)]) == 0
        assert shown[f"{model} / {site}"] == markdown_rows(capsys.readouterr().out)["all"], (model, site)


def test_train_and_evaluate_notebook_executes_with_the_small_profile(monkeypatch, tmp_path, capsys):
    out = tmp_path / "notebook"
    shown = execute_small_profile(monkeypatch, NOTEBOOK, timeout=300, out=out)
    text = shown.text
    assert "profile=small" in text
    for command in ("synth", "ingest", "label", "fit", "test", "heuristic"):
        assert f"$ onconet {command} " in text, command
    assert len(shown.images) >= 3  # ROC grid, calibration grid, at least one example pair
    assert "true class:" in text and "predicted:" in text

    # Every cell of the notebook's comparison table equals what `onconet evaluate` prints for that file.
    files = sorted((out / "predictions").glob("*/*_predictions.csv"))
    assert {f.parent.name for f in files} == {"based3d_demo", "heuristic"} and len(files) == 4
    assert_rows_equal_onconet_evaluate(text, files, out / "cohort" / "truth.csv", tmp_path / "check", capsys)


STORED = NOTEBOOKS.parent / "benchmarks" / "results" / "comparison"


def test_the_stored_full_run_shows_what_onconet_evaluate_prints_for_the_stored_files(tmp_path, capsys):
    files = sorted(STORED.glob("*/*_predictions.csv"))
    if not files:
        pytest.skip(f"no comparison run stored in {STORED}")
    text = stored_outputs(NOTEBOOK).text
    assert "profile=full" in text, "notebook 02 is stored without its full run"
    assert_rows_equal_onconet_evaluate(text, files, STORED / "truth.csv", tmp_path, capsys)
