"""benchmarks/new_lesion_signal.py: the scores see a new cool lesion and ignore a small shift."""

from __future__ import annotations

import torch
from benchmark_scripts import load_benchmark_script

signal = load_benchmark_script("new_lesion_signal")


def test_a_new_lesion_cooler_than_the_hottest_is_seen_only_with_a_neighbourhood():
    baseline = torch.zeros(1, 24, 24, 24)
    baseline[0, 10, 10, 10] = 8.0  # the hottest lesion
    followup = torch.zeros(1, 24, 24, 24)
    followup[0, 14, 10, 10] = 8.0  # the same lesion, one patch further along x (misregistration)
    followup[0, 2, 20, 3] = 3.0  # a new, cooler lesion
    scores = signal.pair_scores(baseline, followup, [1, 3])
    assert scores["max_change"] == 0.0  # the global maximum cannot tell
    assert scores["new_3"] == 3.0 and scores["gone_3"] == 0.0
    assert scores["new_1"] == 8.0 and scores["gone_1"] == 8.0  # patch by patch, the shift looks like change
