"""CUDA-graph replay of the training forward/backward (onconet.models.graphs, model.cuda_graphs)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from onconet.errors import ConfigError
from onconet.models.graphs import GraphedForward
from onconet.models.module import ResponseModule, suvmax_regression_loss, weighted_cross_entropy

TINY = {"dim": 32, "depth": 1, "heads": 2, "patch_size": 4}


class RecordingCapture:
    """Stand-in for make_graphed_callables: records what is captured and marks replayed outputs."""

    def __init__(self) -> None:
        self.captured: list[tuple[torch.Size, ...]] = []
        self.replays = 0

    def __call__(self, module: nn.Module, sample_args: tuple[torch.Tensor, ...]):
        self.captured.append(tuple(a.shape for a in sample_args))

        def replay(*args: torch.Tensor):
            self.replays += 1
            return module(*args)

        return replay


def test_graph_recorded_once_and_replayed_only_for_its_signature() -> None:
    capture = RecordingCapture()
    forward = GraphedForward(nn.Linear(3, 2), capture=capture, device_type="cpu")
    x = torch.randn(4, 3)
    forward(x)
    forward(torch.randn(4, 3))
    assert capture.captured == [(torch.Size([4, 3]),)] and capture.replays == 2
    forward(torch.randn(2, 3))  # the last, smaller batch of an epoch: eager
    forward(x.double().float().requires_grad_())  # another requires_grad: eager
    assert capture.replays == 2
    with torch.no_grad():
        forward(x)
    forward.module.eval()
    forward(x)
    assert capture.replays == 2 and len(capture.captured) == 1


def test_other_devices_never_captured() -> None:
    capture = RecordingCapture()
    forward = GraphedForward(nn.Linear(3, 2), capture=capture)  # graphs CUDA calls only
    out = forward(torch.randn(4, 3))
    assert out.shape == (4, 2) and capture.captured == []


def indexed_suvmax_loss(predicted: torch.Tensor, reported: torch.Tensor) -> torch.Tensor:
    """The loss as first written: smooth-L1 over the known values, picked by boolean indexing."""
    known = torch.isfinite(reported)
    target = torch.log1p(reported[known].clamp(min=0.0))
    return torch.nn.functional.smooth_l1_loss(predicted[known], target, beta=0.1)


def test_masked_suvmax_loss_equals_the_indexed_one() -> None:
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        predicted = torch.randn(6, 2, generator=generator, dtype=torch.float64, requires_grad=True)
        reported = torch.rand(6, 2, generator=generator, dtype=torch.float64) * 20 - 1
        reported[torch.rand(6, 2, generator=generator) < 0.4] = math.nan
        reported[0, 0] = 3.0  # at least one known value
        masked = suvmax_regression_loss(predicted, reported)
        indexed = indexed_suvmax_loss(predicted, reported)
        assert torch.allclose(masked, indexed.float(), atol=1e-6)
        (grad,) = torch.autograd.grad(masked, predicted)
        (grad_ref,) = torch.autograd.grad(indexed, predicted)
        assert torch.allclose(grad, grad_ref, atol=1e-6)
        assert torch.all(grad[~torch.isfinite(reported)] == 0)


def test_masked_suvmax_loss_without_known_values_is_a_zero_with_gradient() -> None:
    predicted = torch.randn(3, 2, requires_grad=True)
    loss = suvmax_regression_loss(predicted, torch.full((3, 2), math.nan))
    loss.backward()
    assert float(loss) == 0.0 and predicted.grad is not None and torch.all(predicted.grad == 0)


def test_cuda_graphs_option_is_eager_on_the_cpu_and_keeps_the_state_dict() -> None:
    torch.manual_seed(0)
    plain = ResponseModule("based3d", TINY, image_size=(16, 16, 16), dropout=0.0)
    graphed = ResponseModule("based3d", TINY, image_size=(16, 16, 16), dropout=0.0, cuda_graphs=True)
    graphed.load_state_dict(plain.state_dict())
    assert list(graphed.state_dict()) == list(plain.state_dict())
    x, y = torch.randn(2, 2, 16, 16, 16), torch.randn(2, 2, 16, 16, 16)
    assert torch.equal(plain(x, y), graphed(x, y))
    graphed.eval()
    assert not graphed._pair_forward.training and not graphed.model.training


def test_cuda_graphs_with_gradient_checkpointing_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cuda_graphs"):
        ResponseModule(
            "based3d", TINY, image_size=(16, 16, 16), cuda_graphs=True, gradient_checkpointing=True
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (CUDA graphs)")
@pytest.mark.parametrize("backbone", ["based3d", "monarch3d"])
def test_graphed_training_step_matches_eager_on_the_gpu(backbone: str) -> None:
    size = (32, 32, 32)
    torch.manual_seed(0)
    eager = ResponseModule(backbone, TINY, image_size=size, dropout=0.0).cuda().train()
    graphed = ResponseModule(backbone, TINY, image_size=size, dropout=0.0, cuda_graphs=True).cuda().train()
    graphed.load_state_dict(eager.state_dict())
    labels = torch.tensor([0, 2], device="cuda")
    reported = torch.tensor([[4.0, math.nan], [9.0, 2.0]], device="cuda")
    for step in range(3):  # capture at the first call, replay after
        x, y = torch.randn(2, 2, *size, device="cuda"), torch.randn(2, 2, *size, device="cuda")
        results = []
        for module in (eager, graphed):
            module.zero_grad(set_to_none=True)
            logits, suvmax = module.forward_with_suvmax(x, y)
            loss = weighted_cross_entropy(logits, labels) + suvmax_regression_loss(suvmax, reported)
            loss.backward()
            results.append((logits.detach().clone(), [p.grad.clone() for p in module.parameters()]))
        (logits_e, grads_e), (logits_g, grads_g) = results
        assert torch.allclose(logits_e, logits_g, atol=2e-2, rtol=2e-2), step
        for grad_e, grad_g in zip(grads_e, grads_g, strict=True):
            assert torch.linalg.vector_norm(grad_e - grad_g) <= 5e-2 * torch.linalg.vector_norm(grad_e) + 1e-6
    assert graphed._graphed_forward.graphed is not None
    smaller = graphed.forward_with_suvmax(x[:1], y[:1])[0]  # another shape: eager, same model
    assert smaller.shape == (1, 3)
