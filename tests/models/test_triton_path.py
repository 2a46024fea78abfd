"""The models on the Triton kernels (the GPU path) equal the models on the PyTorch references.

Without a GPU the kernels run in Triton's CPU interpreter, which must be switched on before Triton is
imported, so the comparison runs in a fresh Python process: forward and parameter gradients of the
paired model (eval mode: no dropout) with BASED-3D and with Monarch-3D, once with every op forced to
Triton, once to the reference (``KERNELS_BACKEND`` is read at each call), in float32.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, os, torch
from onconet.models.backbones import create_backbone
from onconet.models.fusion import PairedResponseModel

def run(name, options):
    torch.manual_seed(0)
    backbone = create_backbone(name, image_size=(16, 16, 8), **options)
    model = PairedResponseModel(backbone, fusion_heads=2, fusion_feature_dim=8, head_hidden=16).eval()
    torch.manual_seed(1)
    baseline, followup = (torch.randn(2, 2, 16, 16, 8) for _ in range(2))
    results = {}
    for backend in ("triton", "reference"):
        os.environ["KERNELS_BACKEND"] = backend
        model.zero_grad()
        out = model(baseline, followup)
        out.square().sum().backward()
        grad = torch.cat([p.grad.flatten() for p in model.parameters()])
        results[backend] = (out.detach(), grad)
    (out_t, grad_t), (out_r, grad_r) = results["triton"], results["reference"]
    return {
        "out": float((out_t - out_r).abs().max() / out_r.abs().max()),
        "grad": float((grad_t - grad_r).abs().max() / grad_r.abs().max()),
    }

print(json.dumps({
    "based3d": run("based3d", {"dim": 32, "depth": 1, "heads": 2, "feature_dim": 8, "window": 3}),
    "monarch3d": run("monarch3d", {"dim": 64, "depth": 1, "heads": 2, "nblocks": 4}),
}))
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU runs the compiled kernels in the other tests")
def test_models_on_triton_kernels_match_the_references() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    differences = json.loads(done.stdout.strip().splitlines()[-1])
    for name, relative in differences.items():
        # float32 on both paths (the kernels take no float64); the summation orders differ
        assert relative["out"] < 1e-4, (name, relative)
        assert relative["grad"] < 1e-4, (name, relative)
