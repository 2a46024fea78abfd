"""The Taylor kernels compile for the H200 (sm_90) with the default launch configuration.

Like ``test_monarch_compiles.py``: Triton compiles for a GPU target ahead of time without a GPU, which
catches compiler failures the interpreter never sees (register tuples across the prefetching loops,
tensor-core tile shapes). It also reports each kernel's registers and spills. The
compilation runs in a child process, since this test session runs Triton in its interpreter.
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

from kernels import _taylor_triton as taylor  # noqa: E402

BF16_POINTERS = {"K", "V", "Q", "OUT", "O", "DO", "DQ", "DK", "DVAL", "DNUM"}
FLOAT32_POINTERS = {"PART_S", "PART_Z", "STATE", "NORM", "INV_SCALE", "DDEN", "WEIGHT", "DSTATE", "DNORM"}
FLOATS = {"eps", "scale1", "scale2", "scale_quad", "scale_lin"}


def _signature(kernel, constexprs: dict) -> tuple[dict[str, str], dict]:
    """Argument types, and the divisibility by 16 that Triton's launcher finds for pointers and strides
    of (B, H, N, 16 | 64) tensors (without it, loads compile to 2-byte accesses)."""
    signature, attrs = {}, {}
    for index, param in enumerate(inspect.signature(kernel.fn).parameters):
        if param in constexprs:
            signature[param] = "constexpr"
        elif param in BF16_POINTERS:
            signature[param] = "*bf16"
        elif param in FLOAT32_POINTERS:
            signature[param] = "*fp32"
        elif param == "MASK":
            signature[param] = "*u8"
        elif param == "PAIRS":
            signature[param] = "*i32"
        elif param in FLOATS:
            signature[param] = "fp32"
        else:
            signature[param] = "i32"
        if signature[param].startswith("*") or param.startswith("stride") or param == "rows_per_chunk":
            attrs[(index,)] = [["tt.divisibility", 16]]
    return signature, attrs


def launched_kernels(config: taylor.LaunchConfig) -> list[tuple[str, dict, int]]:
    """(kernel name, constexprs, warps) of a bfloat16 forward + backward, d = 16, D = 64, with a mask."""
    common = {"DP": taylor.FEATURE_PAD, "DV": 64, "R": taylor.STATE_ROWS, "QUAD_MODE": config.quad_mode}
    common |= {"PRECISION": "ieee", "EVEN_QK": True, "EVEN_V": True}
    grads = {**common, "CONTRACT_PRECISION": "tf32", "PREFETCH": config.prefetch_grads}
    z_precision = {"Z_PRECISION": "tf32" if config.z_products_tf32 else "ieee"}
    grads |= z_precision
    reduce = {"DV": 64, "R": taylor.STATE_ROWS, "QUAD_ROWS": taylor.QUAD_FEATURES, "ROWS": taylor.REDUCE_ROWS}
    reduce |= {"COUNT_ROW": taylor.QUAD_FEATURES + taylor.FEATURE_PAD}
    if config.state_feature_block and config.quad_mode == 0:
        state_kernel = "_state_block_kernel"
        state = {k: v for k, v in common.items() if k != "QUAD_MODE"}
        state |= {"FEATURE_BLOCK": config.state_feature_block, "TRANSPOSED": config.state_transposed}
        state |= {"SEPARATE_Z": config.state_separate_z, "SYMMETRIC": config.state_symmetric}
        pairs = (8, 8) if config.state_symmetric else (config.state_feature_block // 16, 16)
        quad = 3 if config.state_symmetric else 256 // config.state_feature_block
        state |= {"PAIR_I": pairs[0], "PAIR_J": pairs[1], "QUAD_PROGRAMS": quad}
    else:
        state_kernel, state = "_state_partial_kernel", common
    found = [
        (state_kernel, {**state, "HAS_MASK": True, "HAS_WEIGHT": False}, config.state),
        ("_output_kernel", {**common, **z_precision, "SYMMETRIC": config.output_symmetric,
                            "PREFETCH": config.output_prefetch}, config.output),
        ("_key_grad_kernel", {**grads, "HAS_MASK": True}, config.key_grad),
        ("_reduce_kernel", {**reduce, "SCALE_GIVEN": False}, taylor.Tile(0, 4)),  # no token tile
        ("_reduce_kernel", {**reduce, "SCALE_GIVEN": True}, taylor.Tile(0, 4)),
    ]  # fmt: skip
    query = {"fused": [(True, True, False)], "two_pass": [(True, False, False), (False, True, False)]}
    query["state_kernel"] = [(True, False, True)]
    for dq, accumulate, store in query[config.query_backward]:
        tile = config.query_grad if config.query_backward == "fused" else config.query_dq
        tile = tile if dq else config.query_state
        flags = {"COMPUTE_DQ": dq, "ACCUMULATE": accumulate, "STORE_DNUM": store}
        found.append(("_query_grad_kernel", {**grads, **flags}, tile))
    if config.query_backward == "state_kernel":
        found.append((state_kernel, {**state, "HAS_MASK": False, "HAS_WEIGHT": True}, config.query_state))
    result = []
    for name, constexprs, tile in found:
        if tile.block_n:
            constexprs = {**constexprs, "BLOCK_N": tile.block_n}
        result.append((name, constexprs, tile.num_warps))
    return result


def compile_all() -> list[str]:
    """Compile every launched kernel for sm_90; a line per kernel (registers, spills) or per failure."""
    lines = []
    config = taylor.current_config()
    for name, constexprs, warps in launched_kernels(config):
        kernel = getattr(taylor, name)
        signature, attrs = _signature(kernel, constexprs)
        source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
        options = {"num_warps": warps}
        if name == "_output_kernel" and config.output_max_registers is not None:
            options["maxnreg"] = config.output_max_registers  # as the launcher passes it (bf16)
        try:
            compiled = triton.compile(source, target=H200, options=options)
        except Exception as err:  # report every failing kernel, not only the first
            lines.append(
                f"FAILED {name} {constexprs}: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
            )
            continue
        lines.append(f"{name} warps={warps}: {resource_usage(compiled.asm['cubin'])}")
    return lines


def test_default_configuration_compiles_for_sm90():
    done = run_compile_script(__file__)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"compiled {len(launched_kernels(taylor.current_config()))} kernels" in done.stdout
    if "(no cuobjdump)" in done.stdout:
        return  # this Triton ships no cuobjdump: registers unknown
    # The reason for the feature-block state kernel: at most 128 registers per thread (4 programs of 4
    # warps per multiprocessor; the whole-state kernel needs 255 and spills) and no stack.
    found = re.findall(r"_state_block_kernel warps=4: (\d+) registers, stack (\d+) bytes", done.stdout)
    assert len(found) == 2, done.stdout  # forward and the backward's state gradient
    assert all(int(registers) <= 128 and int(stack) == 0 for registers, stack in found), found
    # The output kernel under its register cap (three programs per multiprocessor) does not spill.
    limit = taylor.current_config().output_max_registers or 255
    (output,) = re.findall(r"_output_kernel warps=4: (\d+) registers, stack (\d+) bytes", done.stdout)
    assert int(output[0]) <= limit and int(output[1]) == 0, output


if __name__ == "__main__":
    taylor.set_config(dataclasses.replace(taylor.current_config(), **taylor.parse_overrides(sys.argv[1:])))
    report = compile_all()
    print("\n".join(report))
    failed = [line for line in report if line.startswith("FAILED")]
    print(f"compiled {len(report) - len(failed)} kernels for sm_90 with Triton {triton.__version__}")
    sys.exit(1 if failed else 0)
