"""The runnable examples in the labeling package's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "labeling",
    "labeling.tokenizer",
    "labeling.sections",
    "labeling.mentions",
    "labeling.patterns",
    "labeling.pipeline",
    "labeling.report",
    "labeling.functions",
    "labeling.label_model",
    "labeling.metrics",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
