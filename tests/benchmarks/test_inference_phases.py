"""benchmarks/inference.py: the end-to-end phases from the loop's batch times, and the bound it states."""

from __future__ import annotations

import pytest

from tests.benchmarks.benchmark_scripts import load_benchmark_script

STAGES = {"io": 0.002, "parse": 0.004, "decode": 0.001, "assemble": 0.003, "suv": 0.01, "resample": 0.01,
          "hand-over": 0.0, "transform": 0.01, "model": 0.001}  # fmt: skip  # data path 40 ms, reading 10


def loop_times(start: float, batches: list[tuple[float, float, int]]):
    loop = load_benchmark_script("inference").LoopTimes()
    loop.start, loop.batches = start, batches
    return loop


def test_phases_split_the_wall_time_at_the_first_and_last_batch() -> None:
    bench = load_benchmark_script("inference")
    loop = loop_times(3.0, [(4.0, 4.5, 8), (5.0, 5.5, 8), (6.0, 6.5, 4)])
    phases = bench.end_to_end_phases(0.0, 7.0, loop)
    assert phases == {"before loop": 3.0, "start-up": 1.0, "first batch": 0.5, "steady": 2.0,
                      "steady pairs": 12, "after loop": 0.5}  # fmt: skip
    assert sum(v for k, v in phases.items() if k != "steady pairs") == pytest.approx(7.0)


@pytest.mark.parametrize(("steady_seconds", "bound"), [(0.12, True), (0.5, False)])
def test_the_verdict_compares_the_steady_state_with_the_workers_ceiling(steady_seconds, bound) -> None:
    bench = load_benchmark_script("inference")
    # 4 workers x 1 / 40 ms = 100 pairs/s; 12 pairs in 0.12 s run at it, in 0.5 s at 24 %
    phases = {"before loop": 1.0, "start-up": 0.5, "first batch": 0.1, "steady": steady_seconds,
              "steady pairs": 12, "after loop": 0.1}  # fmt: skip
    text = "\n".join(bench.bound_lines(phases, 16, 2.0, 0.8, STAGES, 0.005, 4))
    assert "| 4 workers x data path (40.0 ms per pair) | 100.00 |" in text
    assert "| 4 workers x DICOM byte floor (5.0 ms per pair) | 800.00 |" in text
    if bound:
        assert "runs at 100 % of the workers' data-path ceiling (one process's data path x workers)" in text
        assert "reading DICOM is 25 % (2.00x its byte floor)" in text
    else:
        assert "reaches only 24 % of the workers' data-path ceiling (one" in text


def test_the_ceiling_measured_in_parallel_decides_when_given() -> None:
    bench = load_benchmark_script("inference")
    phases = {"before loop": 1.0, "start-up": 0.5, "first batch": 0.1, "steady": 0.12,
              "steady pairs": 12, "after loop": 0.1}  # fmt: skip
    transfer = {"pageable": 0.004, "pin copy": 0.003, "pinned": 0.001}
    # loading at once, each worker needs 80 ms per pair: 50 pairs/s allowed, the steady state runs at 100
    text = "\n".join(bench.bound_lines(phases, 16, 2.0, 0.8, STAGES, 0.005, 4, transfer, 0.08))
    assert "| 4 workers loading at once (80.0 ms wall per pair each) | 50.00 | 200 % |" in text
    assert "| main process: hand-over to the GPU, pageable (4.0 ms per pair) | 250.00 | 40 % |" in text
    assert "runs at 200 % of the workers' data-path ceiling (measured with all workers loading" in text
    assert "above it, so that ceiling was measured under other load; no verdict" in text
