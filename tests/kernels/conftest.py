"""Kernel tests: without a GPU the Triton kernels run in Triton's CPU interpreter.

``TRITON_INTERPRET`` is read when a kernel is decorated with ``triton.jit``, so it is set here before
the tests import the kernel modules; a kernel module that another test imported earlier (compiled
mode) is reloaded so that its kernels become interpreted.
"""

from __future__ import annotations

import importlib
import os
import random
import sys

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _reload_compiled_kernel_modules() -> None:
    """Reload ``kernels.*`` modules whose Triton kernels were decorated before the interpreter was on."""
    if os.environ.get("TRITON_INTERPRET") != "1" or "triton" not in sys.modules:
        return
    from triton.runtime.jit import JITFunction

    for name in sorted(sys.modules):
        module = sys.modules[name]
        if name.startswith("kernels.") and any(isinstance(x, JITFunction) for x in vars(module).values()):
            importlib.reload(module)


_reload_compiled_kernel_modules()


@pytest.fixture
def kernel_device() -> torch.device:
    """CUDA when present, else the CPU (the Triton path then runs in the interpreter)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def seeded_generator(request: pytest.FixtureRequest) -> torch.Generator:
    """A CPU generator with a fresh seed per test, printed so that a failure can be replayed."""
    seed = int(os.environ.get("KERNELS_TEST_SEED", random.randrange(2**31)))
    print(f"{request.node.nodeid}: seed {seed} (replay with KERNELS_TEST_SEED={seed})")
    return torch.Generator().manual_seed(seed)
