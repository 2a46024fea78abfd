"""Replay a model's training forward and backward from CUDA graphs (``model.cuda_graphs``).

At 128³ one training step of the paired model launches about 600 CUDA kernels; in eager PyTorch the
host needs 25-40 ms to enqueue them (Python, autograd, autocast, the Triton launchers) while the GPU needs
about 24 ms (BASED-3D) or 19 ms (Monarch-3D) to run them, so the eager step is bound by the host
(``benchmarks/backbones.py --modes eager graphs``). ``torch.cuda.make_graphed_callables`` records the
forward and the backward once and then replays each with a single launch: the step runs at the GPU's
speed. The
loss, the gradient clipping and the optimizer stay eager (a few dozen launches), so Lightning's automatic
optimization, schedulers and logging work unchanged.

A graph replays fixed shapes: a batch of any other shape (the last, smaller batch of an epoch), and every
call in eval mode, runs the eager forward of the same module, with the same parameters.

Example:
    >>> import torch
    >>> from torch import nn
    >>> calls = []
    >>> def fake_capture(module, sample_args):  # stands in for torch.cuda.make_graphed_callables
    ...     calls.append(tuple(a.shape for a in sample_args))
    ...     return lambda *args: ("graph", module(*args))
    >>> forward = GraphedForward(nn.Identity(), capture=fake_capture, device_type="cpu")
    >>> forward(torch.ones(2, 3))[0], forward(torch.ones(2, 3))[0], forward(torch.ones(1, 3)).shape
    ('graph', 'graph', torch.Size([1, 3]))
    >>> calls
    [(torch.Size([2, 3]),)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

Capture = Callable[[nn.Module, tuple[torch.Tensor, ...]], Callable[..., Any]]


def make_graphed_module(module: nn.Module, sample_args: tuple[torch.Tensor, ...]) -> Callable[..., Any]:
    """``torch.cuda.make_graphed_callables`` of ``module``, returning the graphed forward.

    It runs a few warm-up forward/backward passes on a side stream (gradients returned, not accumulated
    into ``.grad``), then records one forward and one backward graph.
    """
    graphed = torch.cuda.make_graphed_callables(module, sample_args)
    forward = graphed.forward
    # make_graphed_callables replaces the module's forward in place; put the eager one back, so that
    # calling the module itself (other shapes, eval) stays eager
    del graphed.forward
    return forward


class GraphedForward:
    """Call ``module`` through CUDA graphs of its training forward and backward where the shapes allow.

    The graphs are recorded at the first training-mode call whose inputs are all on the device, for that
    call's shapes, dtypes and devices. Later training calls with the same signature replay them; calls
    with another signature, in eval mode, or under ``torch.no_grad`` run ``module`` eagerly. Not a
    submodule (it holds no parameters of its own): the caller keeps ``module`` in its module tree.

    Args:
        module: the module to graph; its forward takes tensors and returns a tensor or a tuple of tensors.
            It must not synchronise with the host and must not use autocast's weight cache.
        capture: records the graphs (default :func:`make_graphed_module`); tests pass a stand-in.
        device_type: the device type whose calls are graphed ("cpu" only with a stand-in ``capture``).
    """

    def __init__(
        self, module: nn.Module, capture: Capture = make_graphed_module, device_type: str = "cuda"
    ) -> None:
        self.module = module
        self.capture = capture
        self.device_type = device_type
        self.signature: tuple | None = None
        self.graphed: Callable[..., Any] | None = None

    @staticmethod
    def signature_of(args: tuple[torch.Tensor, ...]) -> tuple:
        return tuple((tuple(a.shape), a.dtype, a.device, a.requires_grad) for a in args)

    def can_replay(self, args: tuple[torch.Tensor, ...]) -> bool:
        on_device = all(a.device.type == self.device_type for a in args)
        return self.module.training and torch.is_grad_enabled() and on_device

    def __call__(self, *args: torch.Tensor) -> Any:
        if not self.can_replay(args):
            return self.module(*args)
        signature = self.signature_of(args)
        if self.graphed is None:
            self.graphed = self.capture(self.module, tuple(a.detach().clone() for a in args))
            self.signature = signature
        if signature != self.signature:
            return self.module(*args)
        return self.graphed(*args)
