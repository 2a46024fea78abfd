"""Shared by the ahead-of-time compile tests: the H200 target and the child process that compiles.

The test session runs Triton in its interpreter (``TRITON_INTERPRET=1``), which cannot compile, so each
compile test runs its own file as a script in a child process without that variable.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
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


def resource_usage(cubin: bytes) -> str:
    """Registers and stack (spill) bytes from the cuobjdump that Triton ships, if it is there."""
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tool.is_file():
        return "(no cuobjdump)"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        report = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+)", report)
    return f"{found.group(1)} registers, stack {found.group(2)} bytes" if found else "(no usage line)"
