"""benchmarks/backbones.py --rounds: interleaved repeats become a median with its range."""

from __future__ import annotations

import math

from benchmark_scripts import load_benchmark_script

bench = load_benchmark_script("backbones")


def result(step_ms: float, peak: float = 1.0, status: str = "ok"):
    return bench.Result("monarch3d", 128, 32768, 0.35, status, step_ms, peak)


def test_rounds_give_the_median_their_range_and_the_largest_peak():
    combined = bench.combine_rounds([result(47.5, 2.7), result(31.4, 2.6), result(40.0, 2.5)])
    assert combined.step_ms == 40.0 and combined.step_range == (31.4, 47.5) and combined.peak_gib == 2.7
    assert "31.4–47.5" in bench.table([combined])


def test_skipped_rounds_do_not_count_and_all_skipped_stays_skipped():
    skipped = result(math.nan, math.nan, "skipped: time budget")
    assert bench.combine_rounds([result(30.0), skipped, result(50.0)]).step_ms == 40.0
    assert bench.combine_rounds([skipped, skipped]).status == "skipped: time budget"


def test_one_round_keeps_the_table_of_earlier_runs():
    assert "step range" not in bench.table([result(40.0)])
