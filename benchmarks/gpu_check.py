"""Correctness of the Triton kernels at full size on a GPU, against the float64 PyTorch references.

For each op present in ``kernels``: forward and every gradient, relative error ‖x − ref‖/‖ref‖ with the
reference evaluated in float64 on the same (rounded) inputs; outputs are poisoned with NaN beforehand so an
unwritten element fails. Limits: 1e-2 for bfloat16/float16, 1e-4 for float32.

    python benchmarks/gpu_check.py            # on a CUDA GPU
    TRITON_INTERPRET=1 python benchmarks/gpu_check.py --small   # dry run of this script on the CPU
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import functools
import multiprocessing
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
# This folder holds a kernels.py too: take it off the path so that `import kernels` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO_ROOT))

import kernels  # noqa: E402
from kernels import _monarch_triton as monarch_triton  # noqa: E402
from kernels import _taylor_triton as taylor_triton  # noqa: E402

TOLERANCE = {torch.bfloat16: 1e-2, torch.float16: 1e-2, torch.float32: 1e-4}


@dataclasses.dataclass
class Result:
    case: str
    errors: dict[str, float]
    tolerance: float
    seconds: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.note and all(e < self.tolerance for e in self.errors.values())


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    if not torch.isfinite(value).all():
        return float("inf")
    return ((value.double() - reference).norm() / reference.norm()).item()


def compare_op(op, reference, inputs: list[torch.Tensor], dtype: torch.dtype, **kwargs) -> dict[str, float]:
    """Relative errors of op's output and input gradients (op on dtype, reference in float64)."""
    leaves = [x.to(dtype).requires_grad_() for x in inputs]
    out = op(*leaves, **kwargs)
    grad = torch.randn(out.shape, device=out.device, dtype=torch.float64)
    grads = torch.autograd.grad(out, leaves, grad.to(dtype))
    ref_leaves = [x.detach().double().requires_grad_() for x in leaves]
    ref = reference(*ref_leaves, **kwargs)
    ref_grads = torch.autograd.grad(ref, ref_leaves, grad)
    errors = {"out": relative_error(out.detach(), ref.detach())}
    for i, (g, g_ref) in enumerate(zip(grads, ref_grads, strict=True)):
        errors[f"grad{i}"] = relative_error(g, g_ref)
    return errors


def taylor_cases(small: bool) -> list[tuple[str, dict]]:
    scale = 64 if small else 1
    headline = (2, 8, 32768 // scale, 16, 64)
    return [
        ("headline B2 H8 N32768 d16 D64 bf16", {"shape": headline, "dtype": torch.bfloat16}),
        (
            "headline, the other query-side backwards",
            {"shape": headline, "dtype": torch.bfloat16, "variants": ("query_backward",)},
        ),
        (
            "headline, without the gradient kernels' prefetch",
            {"shape": headline, "dtype": torch.bfloat16, "variants": ("prefetch_grads",)},
        ),
        (
            "headline, the other state kernels",
            {"shape": headline, "dtype": torch.bfloat16, "variants": ("state_kernel",)},
        ),
        (
            "headline, the other output kernel and z products",
            {
                "shape": headline,
                "dtype": torch.bfloat16,
                "variants": ("output_symmetric", "z_products_tf32", "output_launch"),
            },
        ),
        (
            "B2 H4 N20000 d16 D128 bf16 mask",
            {"shape": (2, 4, 20000 // scale, 16, 128), "dtype": torch.bfloat16, "mask": True},
        ),
        (
            "B1 H3 N5001 d8 D48 fp16 mask",
            {"shape": (1, 3, 5001 // scale, 8, 48), "dtype": torch.float16, "mask": True},
        ),
        ("B1 H2 N3000 d16 D64 fp32", {"shape": (1, 2, 3000 // scale, 16, 64), "dtype": torch.float32}),
    ]


VARIANTS: dict[str, tuple] = {
    "query_backward": ("fused", "two_pass", "state_kernel"),
    "prefetch_grads": (False, True),
    "output_symmetric": (False, True),
    "z_products_tf32": (False, True),
    "output_launch": (  # session 6: the output kernel's q prefetch, 3 programs per SM at 168 registers
        {"output_prefetch": True},
        {"output_prefetch": True, "output_programs_per_sm": 3, "output_max_registers": 168},
    ),
    # Launch-config overrides: the whole-state kernel and the feature-block ones (benchmarks/kernels.py).
    "state_kernel": (
        {"state_feature_block": 0},
        {"state_feature_block": 64, "state_separate_z": False, "state_transposed": False},
        {"state_feature_block": 64, "state_separate_z": True, "state_transposed": False},
        # (128-row and transposed blocks: not symmetric, which needs 64-row blocks and the plain layout)
        {
            "state_feature_block": 64,
            "state_separate_z": True,
            "state_transposed": True,
            "state_symmetric": False,
        },
        {
            "state_feature_block": 128,
            "state_separate_z": True,
            "state_transposed": False,
            "state_symmetric": False,
        },
        {"state_feature_block": 64, "state_separate_z": True, "state_symmetric": True},
        {"state_feature_block": 64, "state_separate_z": False, "state_symmetric": True},
        # the combinations benchmarks/kernels.py times
        {
            "state_feature_block": 64,
            "state_separate_z": True,
            "output_symmetric": True,
            "z_products_tf32": True,
        },
        {
            "state_feature_block": 64,
            "state_separate_z": True,
            "state_symmetric": True,
            "output_symmetric": True,
            "z_products_tf32": True,
        },
    ),
}


def variant_overrides(fields: tuple[str, ...]) -> list[dict]:
    """Launch-config overrides of the named fields, each value but the one in use (the default is
    checked by the other cases); a dict value is a set of overrides. [{}] if none is left."""
    config = taylor_triton.current_config()
    overrides = []
    for field in fields:
        for value in VARIANTS[field]:
            override = value if isinstance(value, dict) else {field: value}
            if any(getattr(config, key) != wanted for key, wanted in override.items()):
                overrides.append(override)
    return overrides or [{}]


def _short(field: str) -> str:
    return field.removeprefix("state_").replace("feature_block", "fb").replace("_symmetric", "_sym")


def _use_config(config: dict) -> None:
    """Launch-config overrides (``--config``) for the whole process (also in each case's worker)."""
    taylor_triton.set_config(dataclasses.replace(taylor_triton.current_config(), **config))


def _taylor_case(device: torch.device, small: bool, index: int, config: dict | None = None) -> Result:
    _use_config(config or {})
    name, case = taylor_cases(small)[index]
    t0 = time.perf_counter()
    seed = (time.time_ns() + index) % 2**31
    torch.manual_seed(seed)
    batch, heads, n, d, dv = case["shape"]
    dtype = case["dtype"]
    if dtype == torch.bfloat16 and device.type == "cpu":
        dtype = torch.float16  # the Triton interpreter cannot multiply bfloat16 matrices
    q, k = (torch.randn(batch, heads, n, d, device=device, dtype=torch.float64) for _ in range(2))
    v = torch.randn(batch, heads, n, dv, device=device, dtype=torch.float64)
    mask = None
    if case.get("mask"):
        mask = torch.ones(batch, n, device=device, dtype=torch.bool)
        mask[-1, int(0.7 * n) :] = False  # the last volume is 30% padding
    overrides = variant_overrides(case.get("variants", ()))
    names = {"grad0": "dq", "grad1": "dk", "grad2": "dv"}
    try:
        errors = {}
        for override in overrides:
            with taylor_triton.launch_config(poison=True, **override):
                found = compare_op(
                    functools.partial(kernels.taylor_linear_attention, backend="triton"),
                    kernels.taylor_linear_attention_reference,
                    [q, k, v],
                    dtype,
                    key_padding_mask=mask,
                )
            prefix = "".join(f"{_short(key)}={value}:" for key, value in override.items())
            errors.update({prefix + names.get(key, key): e for key, e in found.items()})
        note = ""
    except Exception as exc:
        errors, note = {}, f"{type(exc).__name__}: {exc}"[:300]
    return Result(f"taylor {name} (seed {seed})", errors, TOLERANCE[dtype], time.perf_counter() - t0, note)


def check_taylor(
    device: torch.device, small: bool, only: list[str] | None = None, config: dict | None = None
) -> list[Result]:
    """The cases (those whose name holds a string of ``only``, if given) run in parallel processes on a
    GPU, so that their Triton compilations overlap; ``config``: launch-config overrides for all of them."""
    config = config or {}
    _use_config(config)
    names = [name for name, _ in taylor_cases(small)]
    indices = [i for i, name in enumerate(names) if not only or any(text in name for text in only)]
    if device.type == "cuda":
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(len(indices), mp_context=context) as pool:
            futures = [pool.submit(_taylor_case, device, small, i, config) for i in indices]
            for future in concurrent.futures.as_completed(futures):
                print(_row(future.result()), flush=True)  # as they finish: a run cut short keeps them
            results = [future.result() for future in futures]
    else:
        results = [_taylor_case(device, small, i, config) for i in indices]
    return [*results, check_taylor_determinism(device, small)]


def _row(r: Result) -> str:
    errors = ", ".join(f"{k}={v:.2e}" for k, v in r.errors.items())
    verdict = "ok" if r.ok else f"FAIL {r.note}"
    return f"| {r.case} | {errors} | {r.tolerance:g} | {r.seconds:.1f} | {verdict} |"


def check_taylor_determinism(device: torch.device, small: bool) -> Result:
    """Forward and gradients are bitwise identical across runs (fixed-order reduction, no atomics)."""
    t0 = time.perf_counter()
    n = 512 if small else 32768
    dtype = torch.float16 if device.type == "cpu" else torch.bfloat16
    q, k = (torch.randn(2, 8, n, 16, device=device, dtype=dtype) for _ in range(2))
    v = torch.randn(2, 8, n, 64, device=device, dtype=dtype)
    grad = torch.randn_like(v)
    runs = []
    for _ in range(2):
        leaves = [x.detach().requires_grad_() for x in (q, k, v)]
        out = kernels.taylor_linear_attention(*leaves, backend="triton")
        runs.append([out.detach(), *torch.autograd.grad(out, leaves, grad)])
    same = all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
    return Result(
        "taylor determinism (2 runs bitwise equal)",
        {},
        0.0,
        time.perf_counter() - t0,
        "" if same else "differ",
    )


def _check(label: str, dtype: torch.dtype, run) -> Result:
    t0 = time.perf_counter()
    try:
        errors, note = run(), ""
    except Exception as exc:
        errors, note = {}, f"{type(exc).__name__}: {exc}"[:300]
    return Result(label, errors, TOLERANCE[dtype], time.perf_counter() - t0, note)


def _with_mix_config(config, mix, inputs: list[torch.Tensor], dtype: torch.dtype) -> dict[str, float]:
    """compare_op of monarch_mix_3d under ``config``, every output buffer poisoned with NaN."""
    saved = monarch_triton.MIX_CONFIG, monarch_triton.POISON_OUTPUTS
    monarch_triton.MIX_CONFIG, monarch_triton.POISON_OUTPUTS = config, True
    try:
        return compare_op(mix, kernels.monarch_mix_3d_reference, inputs, dtype)
    finally:
        monarch_triton.MIX_CONFIG, monarch_triton.POISON_OUTPUTS = saved


def check_mixers(device: torch.device, small: bool) -> list[Result]:
    """The other kernel modules' ops (local 3D attention, Monarch mixing and linear)."""
    dtype = torch.float16 if device.type == "cpu" else torch.bfloat16
    results = []

    grid, window = ((6, 5, 7), (3, 3, 5)) if small else ((24, 24, 24), (5, 5, 5))
    n = grid[0] * grid[1] * grid[2]
    q, k, v = (torch.randn(1, 2, n, 64, device=device, dtype=torch.float64) for _ in range(3))
    local = functools.partial(kernels.local_attention_3d, backend="triton")
    results.append(
        _check(
            f"local_attention_3d grid {grid} window {window}",
            dtype,
            lambda: compare_op(
                local, kernels.local_attention_3d_reference, [q, k, v], dtype, grid=grid, window=window
            ),
        )
    )

    size, channels = (8, 32) if small else (32, 128)
    x = torch.randn(2, size, size, size, channels, device=device, dtype=torch.float64)
    weights = [torch.randn(size, size, device=device, dtype=torch.float64) / size**0.5 for _ in range(3)]
    mix = functools.partial(kernels.monarch_mix_3d, backend="triton")
    strategies = {  # every strategy, poisoned outputs
        "planes": {"strategy": "planes"},
        "axes": {"strategy": "axes"},
    }
    for label, overrides in strategies.items():
        config = dataclasses.replace(monarch_triton.MIX_CONFIG, **overrides)
        results.append(
            _check(
                f"monarch_mix_3d {size}³ C={channels} {label}",
                dtype,
                functools.partial(_with_mix_config, config, mix, [x, *weights], dtype),
            )
        )

    # The default strategy (planes, MIX_CONFIG as is) at shapes that are multiples of no tile size: grid
    # sides padded to 16/32/64 (the last one's 64 × 64 planes fall back to the axes), channel counts
    # that leave partial channel blocks.
    odd_shapes = [(1, 5, 6, 7, 40), (2, 3, 17, 5, 3), (1, 2, 40, 33, 2)]
    odd_shapes += [] if small else [(2, 23, 29, 31, 200), (2, 31, 30, 29, 130), (1, 45, 37, 50, 72)]
    for shape in odd_shapes:
        xo = torch.randn(*shape, device=device, dtype=torch.float64)
        wo = [torch.randn(n, n, device=device, dtype=torch.float64) / n**0.5 for n in shape[1:4]]
        results.append(
            _check(
                f"monarch_mix_3d {shape} default "
                f"({monarch_triton.mix3d_strategy(shape, monarch_triton.MIX_CONFIG)})",
                dtype,
                functools.partial(_with_mix_config, monarch_triton.MIX_CONFIG, mix, [xo, *wo], dtype),
            )
        )

    tokens, nblocks, block = (64, 4, 16) if small else (65536, 16, 16)
    xl = torch.randn(tokens, nblocks * block, device=device, dtype=torch.float64)
    left = torch.randn(nblocks, block, block, device=device, dtype=torch.float64) / block**0.5
    right = torch.randn(nblocks, block, block, device=device, dtype=torch.float64) / block**0.5
    linear = functools.partial(kernels.monarch_linear, backend="triton")
    results.append(
        _check(
            f"monarch_linear {tokens} tokens, {nblocks} blocks of {block}",
            dtype,
            lambda: compare_op(linear, kernels.monarch_linear_reference, [xl, left, right], dtype),
        )
    )
    # Row counts that are multiples of no tile, in > out, a single block (the permutation is the identity).
    odd_linear = [((3, 100), 4, 16, 16, 32), ((37,), 2, 16, 32, 16), ((5, 3), 1, 32, 16, 16)]
    odd_linear += [] if small else [((3, 23339), 4, 16, 16, 32), ((70001,), 8, 32, 32, 16)]
    for rows, nb, mid, in_block, out_block in odd_linear:
        xo = torch.randn(*rows, nb * in_block, device=device, dtype=torch.float64)
        lo = torch.randn(nb, out_block, mid, device=device, dtype=torch.float64) / mid**0.5
        ro = torch.randn(nb, mid, in_block, device=device, dtype=torch.float64) / in_block**0.5
        results.append(
            _check(
                f"monarch_linear rows {rows}, {nb} blocks, mid {mid}, in {in_block}, out {out_block}",
                dtype,
                functools.partial(
                    _with_poison, linear, kernels.monarch_linear_reference, [xo, lo, ro], dtype
                ),
            )
        )
    return results


def _with_poison(op, reference, inputs: list[torch.Tensor], dtype: torch.dtype) -> dict[str, float]:
    """compare_op with the Monarch module's output buffers poisoned with NaN."""
    saved = monarch_triton.POISON_OUTPUTS
    monarch_triton.POISON_OUTPUTS = True
    try:
        return compare_op(op, reference, inputs, dtype)
    finally:
        monarch_triton.POISON_OUTPUTS = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="small sizes (a dry run of the script)")
    parser.add_argument("--taylor-only", action="store_true", help="leave out the local-3D and Monarch ops")
    parser.add_argument("--mixers-only", action="store_true", help="only the local-3D and Monarch ops")
    parser.add_argument(
        "--cases", nargs="+", metavar="TEXT", help="only the Taylor cases whose name holds one of these"
    )
    parser.add_argument(
        "--config", nargs="*", default=[], metavar="FIELD=VALUE", help="Taylor launch-config overrides"
    )
    args = parser.parse_args(argv)
    config = taylor_triton.parse_overrides(args.config)
    if torch.cuda.is_available():
        device = torch.device("cuda")
        print(f"GPU check on {torch.cuda.get_device_name(0)}", flush=True)
    elif args.small:
        device = torch.device("cpu")
        print("GPU check dry run on the CPU (Triton interpreter)", flush=True)
    else:
        print(
            "benchmarks/gpu_check.py needs a CUDA GPU (or --small with TRITON_INTERPRET=1)", file=sys.stderr
        )
        return 2
    torch.manual_seed(int(time.time()))
    if config:
        print(f"Taylor launch-config overrides: {config}", flush=True)
    results = [] if args.mixers_only else check_taylor(device, args.small, args.cases, config)
    if not args.taylor_only:
        results += check_mixers(device, args.small)
    print("\n| check | relative errors | limit | s | result |\n| --- | --- | ---: | ---: | --- |")
    for r in results:
        print(_row(r), flush=True)
    failed = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
