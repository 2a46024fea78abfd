"""Sequence-mixing ops for the 3D backbones: PyTorch references, Triton kernels, dispatchers.

Each op dispatches CUDA tensors to Triton and CPU tensors to its PyTorch reference (see
:mod:`kernels.dispatch`). This package imports nothing from onconet or labeling.
"""

from __future__ import annotations

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
]
