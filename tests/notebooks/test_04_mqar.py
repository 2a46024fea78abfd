"""Notebook 04 (MQAR recall study) runs end to end with the small profile."""

from notebook_runner import execute_small_profile


def test_mqar_notebook_executes_with_the_small_profile(monkeypatch):
    shown = execute_small_profile(monkeypatch, "04_mqar_recall.ipynb", timeout=240)
    text = shown.text
    assert "profile=small" in text and "a temporary folder" in text  # the stored results are left alone
    assert "Recall accuracy" in text and "| attention |" in text  # the CLI's table
    assert len(shown.images) >= 3  # pairs per length, trade-off, training curves
    tables = shown.html
    for model in ("attention", "based", "taylor", "monarch"):
        assert model in tables
    assert "layer 0 mixer" in tables and "layer 1 window" in tables  # the ablation table
