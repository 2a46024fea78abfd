"""Kernel tests: without a GPU the Triton kernels run in Triton's CPU interpreter.

``TRITON_INTERPRET`` is read when a function is decorated with ``triton.jit`` (Triton's own library
functions at ``import triton``), so it is set here before the tests import Triton or the kernel modules.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _triton_compiled_before_us() -> bool:
    """Whether Triton was imported (by another test module) before ``TRITON_INTERPRET`` was set.

    Triton decorates its own library (``tl.zeros``, reduction helpers, ...) with ``triton.jit`` when it
    is imported; compiled-mode library functions cannot be called by interpreted kernels, and Triton
    cannot be imported twice in one process.
    """
    if os.environ.get("TRITON_INTERPRET") != "1" or "triton" not in sys.modules:
        return False
    import triton.language.standard
    from triton.runtime.jit import JITFunction

    return isinstance(triton.language.standard.zeros, JITFunction)


RUN_TRITON_TESTS_IN_SUBPROCESS = _triton_compiled_before_us()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a Triton test (one that uses ``kernel_device``) in a fresh interpreter process if needed."""
    if not (RUN_TRITON_TESTS_IN_SUBPROCESS and "kernel_device" in pyfuncitem.fixturenames):
        return None
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", pyfuncitem.nodeid]
    result = subprocess.run(command, cwd=pyfuncitem.config.rootpath, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"in a fresh interpreter process:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
    return True


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
