"""Notebook 03 (kernel and backbone figures) runs with the small profile and plots the stored H200 numbers."""

from notebook_runner import execute_small_profile


def test_kernels_and_backbones_notebook_executes_with_the_small_profile(monkeypatch):
    shown = execute_small_profile(monkeypatch, "03_kernels_and_backbones.ipynb", timeout=240)
    assert "profile=small" in shown.text and "nothing measured here" in shown.text
    assert len(shown.images) == 3  # kernels vs tokens, mixers at one size, backbones vs tokens
    tables, html = shown.plain, shown.html
    # values of the stored H200 files, read back, not typed in: kernels.md, kernels_mixers.md, backbones.md
    for value in ("0.238", "635.253", "1818", "flex_attention", "1439.1", "8133.5", "densenet121"):
        assert value in tables or value in html, value
    assert "31.9×" in html and "484.7×" in html  # cuDNN SDPA / ours, computed from the read tables
    # Monarch mixing: the session-5 table (default vs chains, GPU time), not the session-3 one
    assert "1.36×" in html and "2.52×" in html and "4.02×" in html  # chain ÷ default, computed
