"""The model on its device while discovery runs in other processes.

Creating the CUDA context and moving the model is what Lightning does first in ``Trainer.predict``; done
there, it came after discovery and planning, which keep the CPU cores busy in worker processes while this
process only waits for their results. With one device the device is known when the Trainer is made, so
this process does the same steps then, while the headers are read elsewhere; Lightning later finds the
model on its device (``module.to`` of a module already there changes nothing). It is done here, in the
calling thread, not in a thread of its own: the DataLoader forks its workers afterwards, and a process
forked while another thread is inside CUDA's initialisation (or an import it makes) inherits that
thread's locks held; such workers hung on the H200 (session 6). Forking after CUDA is set up is what
Lightning's own loops do (the workers never touch CUDA). With DDP (several devices) a rank learns its
device only after the launch: nothing is done early.
"""

from __future__ import annotations

import torch


def prepare_device(module: torch.nn.Module, device: torch.device, world_size: int) -> bool:
    """Move ``module`` to ``device`` now when this is the only process and ``device`` is a CUDA device
    (creates the CUDA context); whether it did."""
    if world_size != 1 or device.type != "cuda":
        return False
    module.to(device)
    torch.cuda.synchronize(device)
    return True
