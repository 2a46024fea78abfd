"""The model on its device while discovery runs: a single CUDA device is set up in a thread.

Creating the CUDA context and moving the model is what Lightning does first in ``Trainer.predict``; done
there, it waits for discovery and planning, which keep the CPU cores busy but leave the device idle. With
one device the rank and the device are known when the Trainer is made, so a thread does the same steps
while the header reading runs in other processes; Lightning then finds the model already on its device
(``module.to`` of a module already there changes nothing). The caller waits for the thread before the
DataLoader forks its workers: a process forked while another thread is inside CUDA's initialisation (or
an import it makes) inherits that thread's locks held, and the workers hung on the H200 (session 6).
With DDP (several devices) a rank learns its device only after the launch: nothing
is done early.
"""

from __future__ import annotations

import threading
import time

import torch


class DevicePreparation:
    """``module.to(device)`` in a thread (creates the CUDA context); :meth:`wait` joins it.

    Args:
        module: the model Lightning will run.
        device: its device (the thread is started at once).
    """

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.module, self.device = module, device
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="onconet-device", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            self.module.to(self.device)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        except BaseException as err:  # handed to the caller in wait()
            self.error = err
        self.seconds = time.perf_counter() - started

    def wait(self) -> None:
        """Wait for the thread; re-raise what it raised."""
        self.join()
        if self.error is not None:
            raise self.error

    def join(self) -> None:
        """Wait for the thread (its error, if any, stays in :attr:`error`)."""
        self._thread.join()


def prepare_device(
    module: torch.nn.Module, device: torch.device, world_size: int
) -> DevicePreparation | None:
    """Start :class:`DevicePreparation` when this is the only process and its device is a CUDA device."""
    if world_size != 1 or device.type != "cuda":
        return None
    return DevicePreparation(module, device)
