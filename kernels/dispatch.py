"""Backend selection shared by every op: Triton on CUDA tensors, the PyTorch reference on the CPU.

The choice can be forced per call (``backend="triton"`` / ``"reference"``) or for the whole process with
the environment variable ``KERNELS_BACKEND``. Under ``TRITON_INTERPRET=1`` (set before Triton is
imported) the Triton path also runs on CPU tensors, which is how the tests exercise it without a GPU.

Example:
    >>> import torch
    >>> from kernels.dispatch import resolve_backend
    >>> resolve_backend(torch.zeros(2), backend="reference")
    'reference'
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable

import torch

BACKENDS = ("triton", "reference")
BACKEND_ENV_VAR = "KERNELS_BACKEND"


class KernelError(ValueError):
    """Bad input to a kernel op, or a backend that cannot run here."""


def interpreter_enabled() -> bool:
    """Whether Triton runs its kernels in the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def _triton_importable() -> bool:
    # find_spec, not import: importing triton fixes its interpreter mode for the whole process.
    return importlib.util.find_spec("triton") is not None


def resolve_backend(*tensors: torch.Tensor | None, backend: str | None = None) -> str:
    """The backend an op should use for these tensors.

    Args:
        *tensors: the op's tensor arguments (``None`` entries are skipped).
        backend: ``"triton"``, ``"reference"``, or ``None``/``"auto"`` to use ``$KERNELS_BACKEND`` if set,
            else Triton for CUDA tensors and the reference otherwise.

    Returns:
        ``"triton"`` or ``"reference"``.

    Raises:
        KernelError: unknown backend name, tensors on several devices, or Triton forced where it cannot run.
    """
    present = [t for t in tensors if t is not None]
    devices = {t.device for t in present}
    if len(devices) > 1:
        raise KernelError(
            f"kernel inputs are on several devices {sorted(map(str, devices))}; move them to one"
        )
    on_cuda = bool(present) and present[0].is_cuda

    choice = backend if backend not in (None, "auto") else os.environ.get(BACKEND_ENV_VAR, "auto")
    choice = choice.strip().lower()
    if choice == "auto":
        return "triton" if on_cuda and _triton_importable() else "reference"
    if choice not in BACKENDS:
        raise KernelError(
            f"unknown kernel backend {choice!r} (argument or ${BACKEND_ENV_VAR}); "
            f"use one of {BACKENDS} or 'auto'"
        )
    if choice == "triton":
        if not _triton_importable():
            raise KernelError("backend 'triton' was forced but triton is not installed; install triton>=3.2")
        if not on_cuda and not interpreter_enabled():
            raise KernelError(
                "backend 'triton' was forced for CPU tensors: move them to a CUDA device, or set "
                "TRITON_INTERPRET=1 before triton is imported to run the kernels in the interpreter"
            )
    return choice


def check_same_dtype(
    names: Iterable[str], tensors: Iterable[torch.Tensor], allowed: tuple[torch.dtype, ...]
) -> None:
    """Raise :class:`KernelError` unless all tensors share one dtype from ``allowed``."""
    names, tensors = list(names), list(tensors)
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1:
        found = ", ".join(f"{n}={t.dtype}" for n, t in zip(names, tensors, strict=True))
        raise KernelError(f"{', '.join(names)} must share one dtype, got {found}; cast them first")
    (dtype,) = dtypes
    if dtype not in allowed:
        raise KernelError(f"{', '.join(names)} have dtype {dtype}; supported: {allowed}")


def opaque_to_compiler(apply: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``Function.apply`` that ``torch.compile`` calls as is instead of tracing into the Triton launch code.

    The compiled regions of a model then end and resume around each Triton op (a graph break), which keeps
    the ops' own launch logic (tile configs, chunking, poisoning) out of Dynamo's reach.
    """
    return torch.compiler.disable(apply)
