"""The runnable examples in docstrings stay true."""

import doctest
import importlib

import pytest

MODULES = [
    "onconet.classes",
    "onconet.evaluation.metrics",
    "onconet.evaluation.bootstrap",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
