"""The model moved to its device in a thread while discovery runs (onconet/inference/device.py)."""

from __future__ import annotations

import pytest
import torch

from onconet.inference.device import DevicePreparation, prepare_device


class Refuses(torch.nn.Module):
    """A module whose move fails, as a device out of memory would."""

    def _apply(self, fn, recurse=True):  # what Module.to calls
        raise RuntimeError("no memory left on the device")


def test_the_thread_moves_the_module_and_hands_back_its_error() -> None:
    module = torch.nn.Linear(3, 2)
    preparation = DevicePreparation(module, torch.device("cpu"))
    preparation.wait()
    assert preparation.error is None and preparation.seconds > 0
    failing = DevicePreparation(Refuses(), torch.device("cpu"))
    failing.join()  # joining never raises (used when the run ends anyway)
    with pytest.raises(RuntimeError, match="no memory left"):
        failing.wait()


def test_only_a_single_cuda_device_is_prepared_early() -> None:
    module = torch.nn.Linear(3, 2)
    assert prepare_device(module, torch.device("cpu"), world_size=1) is None
    assert prepare_device(module, torch.device("cuda", 0), world_size=2) is None  # DDP: after the launch
