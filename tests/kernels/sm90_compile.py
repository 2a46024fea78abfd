"""Shared by the ahead-of-time compile tests: the H200 target and the child process that compiles.

The test session runs Triton in its interpreter (``TRITON_INTERPRET=1``), which cannot compile, so each
compile test runs its own file as a script in a child process without that variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from triton.backends.compiler import GPUTarget

H200 = GPUTarget("cuda", 90, 32)


def run_compile_script(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``script`` (a compile test's own file, with ``args``) with the repository importable and no
    interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, script, *args], env=env, capture_output=True, text=True, timeout=600, cwd=root
    )
