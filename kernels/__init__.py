"""Sequence-mixing ops for the 3D backbones: PyTorch references, Triton kernels, dispatchers.

Each op dispatches CUDA tensors to Triton and CPU tensors to its PyTorch reference (see
:mod:`kernels.dispatch`). This package imports nothing from onconet or labeling.
"""

from __future__ import annotations

import importlib
from typing import Any

from kernels.dispatch import KernelError, resolve_backend

# Imported eagerly: a lazily imported submodule named like its function would shadow the function.
from kernels.local_attention_3d import local_attention_3d, local_attention_3d_reference
from kernels.monarch import (
    MonarchLinear,
    monarch_linear,
    monarch_linear_reference,
    monarch_mix_3d,
    monarch_mix_3d_reference,
)
from kernels.taylor_linear_attention import (
    taylor_feature_map,
    taylor_linear_attention,
    taylor_linear_attention_reference,
)

# Ops of the other kernel modules, imported on first use so that this package does not fail while a
# sibling module is being written.
_LAZY_EXPORTS: dict[str, str] = {}

__all__ = [
    "KernelError",
    "MonarchLinear",
    "local_attention_3d",
    "local_attention_3d_reference",
    "monarch_linear",
    "monarch_linear_reference",
    "monarch_mix_3d",
    "monarch_mix_3d_reference",
    "resolve_backend",
    "taylor_feature_map",
    "taylor_linear_attention",
    "taylor_linear_attention_reference",
    *_LAZY_EXPORTS,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXPORTS:
        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
