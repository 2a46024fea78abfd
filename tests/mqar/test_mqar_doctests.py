"""The runnable examples in the MQAR docstrings stay true."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name", ["onconet.mqar.data", "onconet.mqar.causal_taylor", "onconet.mqar.models", "onconet.mqar.train"]
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
