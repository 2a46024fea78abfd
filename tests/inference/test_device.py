"""The model moved to its device while discovery runs (onconet/inference/device.py)."""

from __future__ import annotations

import pytest
import torch

from onconet.inference.device import prepare_device


def test_only_a_single_cuda_device_is_prepared_early() -> None:
    module = torch.nn.Linear(3, 2)
    assert not prepare_device(module, torch.device("cpu"), world_size=1)
    assert not prepare_device(module, torch.device("cuda", 0), world_size=2)  # DDP: after the launch
    assert next(module.parameters()).device.type == "cpu"  # neither touched the module


def test_a_single_cuda_device_gets_the_model_now() -> None:
    module = torch.nn.Linear(3, 2)
    if not torch.cuda.is_available():  # a CPU build still shows that it tried
        with pytest.raises((AssertionError, RuntimeError)):
            prepare_device(module, torch.device("cuda", 0), world_size=1)
        return
    assert prepare_device(module, torch.device("cuda", 0), world_size=1)
    assert next(module.parameters()).device == torch.device("cuda", 0)
