"""The Monarch kernels compile for the H200 (sm_90) at every tile shape the launchers choose.

Triton can compile for a GPU target ahead of time without a GPU, so this runs on the CPU machines too. It
guards against compiler failures that the interpreter never sees (Triton 3.6 fails on 64×64 plane tiles
with 1 or 4 channels, which the launcher therefore no longer produces). The compilation runs in a child
process: this test session runs Triton in its interpreter (``TRITON_INTERPRET=1``), which cannot compile.
"""

from __future__ import annotations

import inspect
import sys

import pytest

triton = pytest.importorskip("triton")
pytest.importorskip("triton.backends.nvidia")

from sm90_compile import H200, run_compile_script  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from kernels import _monarch_triton as monarch  # noqa: E402

POINTERS = {
    "_plane_forward_kernel": {"IN", "WY", "WZ", "OUT"},
    "_plane_backward_kernel": {"IN", "GRAD_MIXED", "WY", "WZ", "GRAD_IN"},
    "_axis_kernel": {"IN", "W", "OUT", "OTHER"},
}
FLOAT32_POINTERS = {"DWY_PARTIAL", "DWZ_PARTIAL", "DW_PARTIAL"}
GRIDS = (16, 24, 32, 48, 64, 96, 128)  # tokens per axis: 64³ … 512³ volumes with 4³ patches
CHANNELS = (32, 64, 128, 256)


def compile_for_h200(name: str, constexprs: dict, num_warps: int) -> None:
    """Compile for sm_90, the pointers marked 16-byte aligned as Triton's launcher marks them (without the
    marks loads compile to 2-byte accesses)."""
    kernel = getattr(monarch, name)
    signature, attrs = {}, {}
    for index, param in enumerate(inspect.signature(kernel.fn).parameters):
        if param in constexprs:
            signature[param] = "constexpr"
            continue
        if param in POINTERS[name]:
            signature[param] = "*bf16"
        elif param in FLOAT32_POINTERS:
            signature[param] = "*fp32"
        else:
            signature[param] = "i32"
        if signature[param].startswith("*"):
            attrs[(index,)] = [["tt.divisibility", 16]]
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    triton.compile(source, target=H200, options={"num_warps": num_warps})


def launched_tiles() -> set[tuple[str, tuple]]:
    """Every (kernel, constexprs) that mix3d_forward / mix3d_backward launch over GRIDS × CHANNELS."""
    config = monarch.MIX_CONFIG
    found = set()
    for size in GRIDS:
        for channels in CHANNELS:
            shape = (2, size, size, size, channels)
            planes = monarch.mix3d_strategy(shape, config) == "planes"
            views = monarch._axis_views(shape)  # (outer, S, inner) per axis, as the launchers use them
            axes = views[:1] if planes else views
            for _, axis_size, cols in axes:
                tiles = monarch.axis_tiles(axis_size, cols, config)
                for weight_grad in (False, True):
                    found.add(("_axis_kernel", (*tiles.items(), ("WITH_WEIGHT_GRAD", weight_grad))))
            if planes:
                for name, budget in (
                    ("_plane_forward_kernel", config.plane_elements),
                    ("_plane_backward_kernel", config.plane_backward_elements),
                ):
                    found.add((name, tuple(monarch.plane_tiles(shape, budget).items())))
    return found


def test_large_grids_take_the_axes_strategy():
    config = monarch.MIX_CONFIG
    assert monarch.mix3d_strategy((1, 32, 32, 32, 128), config) == config.strategy
    assert monarch.mix3d_strategy((1, 48, 48, 48, 128), config) == "axes"
    assert monarch.mix3d_unsupported_reason((1, 128, 128, 128, 8)) is None
    assert "Y=130" in monarch.mix3d_unsupported_reason((1, 8, 130, 8, 8))


def compile_all() -> list[str]:
    """Compile every launched tile for sm_90; the failures as lines of text."""
    failures = []
    for kernel, tiles in sorted(launched_tiles(), key=str):
        constexprs = {**dict(tiles), "PRECISION": "ieee"}
        if kernel == "_axis_kernel":
            constexprs["TRANSPOSE_W"] = constexprs["WITH_WEIGHT_GRAD"]  # the backward transposes
        config = monarch.MIX_CONFIG
        warps = config.axis_warps if kernel == "_axis_kernel" else config.plane_warps
        try:
            compile_for_h200(kernel, constexprs, warps)
        except Exception as err:  # report every failing tile, not only the first
            failures.append(f"{kernel} {constexprs}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
    return failures


def test_every_launched_tile_compiles_for_sm90():
    done = run_compile_script(__file__)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"compiled {len(launched_tiles())} tiles" in done.stdout


if __name__ == "__main__":
    failed = compile_all()
    done = f"compiled {len(launched_tiles())} tiles for sm_90 with Triton {triton.__version__}"
    print("\n".join(failed) or done)
    sys.exit(1 if failed else 0)
