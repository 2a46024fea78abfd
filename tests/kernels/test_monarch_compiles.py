"""The Monarch kernels compile for the H200 (sm_90) at every tile shape the launchers choose.

Triton can compile for a GPU target ahead of time without a GPU, so this runs on the CPU machines too. It
guards against compiler failures that the interpreter never sees (Triton 3.6 fails on 64×64 plane tiles
with 1 or 4 channels, which the launcher therefore no longer produces). The compilation runs in a child
process: this test session runs Triton in its interpreter (``TRITON_INTERPRET=1``), which cannot compile.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys

import pytest

triton = pytest.importorskip("triton")
pytest.importorskip("triton.backends.nvidia")

from sm90_compile import H200, resource_usage, run_compile_script  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from kernels import _monarch_triton as monarch  # noqa: E402

POINTERS = {
    "_plane_forward_kernel": {"IN", "WY", "WZ", "OUT"},
    "_plane_backward_kernel": {"IN", "GRAD_MIXED", "WY", "WZ", "GRAD_IN"},
    "_axis_kernel": {"IN", "W", "OUT", "OTHER"},
    "_fused_forward_kernel": {"IN", "WX", "WY", "WZ", "MIXED", "OUT"},
    "_fused_backward_kernel": {"IN", "GRAD_OUT", "MIXED", "WX", "WY", "WZ", "GRAD_MIXED", "GRAD_IN"},
}
FLOAT32_POINTERS = {"DWY_PARTIAL", "DWZ_PARTIAL", "DW_PARTIAL", "DWX_PARTIAL"}
INT32_POINTERS = {"COUNTERS"}
GRIDS = (16, 24, 32, 48, 64, 96, 128)  # tokens per axis: 64³ … 512³ volumes with 4³ patches
CHANNELS = (32, 64, 128, 256)


def compile_for_h200(name: str, constexprs: dict, num_warps: int, multiples_of_16: set[str] = frozenset()):
    """Compile for sm_90; ``multiples_of_16``: integer arguments that Triton's launcher would find divisible
    by 16 (it marks them, and the pointers, so; without the marks loads compile to 2-byte accesses)."""
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
        elif param in INT32_POINTERS:
            signature[param] = "*i32"
        else:
            signature[param] = "i32"
        if signature[param].startswith("*") or param in multiples_of_16:
            attrs[(index,)] = [["tt.divisibility", 16]]
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(source, target=H200, options={"num_warps": num_warps})


def headline_fused_usage() -> str:
    """Registers and stack of the fused forward at the benchmark's (2, 32, 32, 32, 256) bfloat16 input."""
    config = dataclasses.replace(monarch.MIX_CONFIG, strategy="fused")
    constexprs = {**monarch.fused_tiles((2, 32, 32, 32, 256), config), "PRECISION": "tf32"}
    multiples = {"size_x", "size_y", "size_z", "channels", "channel_blocks", "n_chunks", "position_tiles"}
    compiled = compile_for_h200("_fused_forward_kernel", constexprs, config.fused_warps, multiples)
    return f"fused forward at the headline input: {resource_usage(compiled.asm['cubin'])}"


def launched_tiles() -> set[tuple[str, tuple]]:
    """Every (kernel, constexprs) that mix3d_forward / mix3d_backward launch over GRIDS × CHANNELS, with
    the configured strategy and with the "fused" forward."""
    found = set()
    for strategy in sorted({monarch.MIX_CONFIG.strategy, "fused"}):
        found |= _launched_tiles(dataclasses.replace(monarch.MIX_CONFIG, strategy=strategy))
    return found


def _launched_tiles(config: monarch.MixConfig) -> set[tuple[str, tuple]]:
    found = set()
    for size in GRIDS:
        for channels in CHANNELS:
            shape = (2, size, size, size, channels)
            strategy = monarch.mix3d_strategy(shape, config)
            if strategy == "fused":
                found.add(("_fused_forward_kernel", tuple(monarch.fused_tiles(shape, config).items())))
                backward_tiles = monarch.fused_tiles(shape, config, backward=True)
                found.add(("_fused_backward_kernel", tuple(backward_tiles.items())))
            planes = strategy in ("planes", "fused")  # the same backward
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
                    if name == "_plane_forward_kernel" and strategy == "fused":
                        continue
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
        warps = {"_axis_kernel": config.axis_warps, "_fused_forward_kernel": config.fused_warps}.get(
            kernel, config.plane_warps
        )
        try:
            compile_for_h200(kernel, constexprs, warps)
        except Exception as err:  # report every failing tile, not only the first
            failures.append(f"{kernel} {constexprs}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
    return failures


def test_every_launched_tile_compiles_for_sm90():
    done = run_compile_script(__file__)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"compiled {len(launched_tiles())} tiles" in done.stdout
    if "(no cuobjdump)" in done.stdout:
        return  # this Triton ships no cuobjdump: registers unknown
    # Two programs of the fused forward per multiprocessor (the latency of one item hides behind the
    # other's): at most 128 registers per thread with 8 warps, and nothing spilled.
    found = re.search(r"headline input: (\d+) registers, stack (\d+) bytes", done.stdout)
    assert found, done.stdout
    assert int(found.group(1)) * 32 * monarch.MIX_CONFIG.fused_warps * 2 <= 65536 and found.group(2) == "0"


if __name__ == "__main__":
    failed = compile_all()
    done = f"compiled {len(launched_tiles())} tiles for sm_90 with Triton {triton.__version__}"
    print("\n".join(failed) or done)
    print(headline_fused_usage())
    sys.exit(1 if failed else 0)
