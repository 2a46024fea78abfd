"""benchmarks/response_ceiling.py: the rule reproduces the truth; measurement error costs AUROC."""

from __future__ import annotations

import numpy as np
from benchmark_scripts import load_benchmark_script

ceiling = load_benchmark_script("response_ceiling")
TRUTH = ceiling.REPO / "benchmarks" / "results" / "comparison" / "truth.csv"


def test_the_rule_without_error_gives_every_stored_truth_label():
    truth = ceiling.read_truth(TRUTH)
    labels = ceiling.percist_class(
        truth["baseline"], truth["followup"], truth["reference"], truth["new_lesion"]
    )
    assert len(labels) == 900 and np.array_equal(labels, truth["label"])
    assert set(labels.tolist()) == {0, 1, 2}


def test_thresholds_and_absolute_differences():
    b = np.array([10.0, 10.0, 2.0, 10.0, 10.0, 2.0, 5.0])
    f = np.array([7.0, 7.2, 1.3, 13.0, 12.8, 2.7, 1.0])
    reference = np.full(7, 1.5)
    new = np.array([False] * 6 + [True])
    names = [ceiling.RESPONSE_CLASSES[i] for i in ceiling.percist_class(b, f, reference, new)]
    # 0.7·b; just above it; below the reference (complete); 1.3·b; just below; +35 % but only +0.7; new lesion
    assert names == ["response", "stable", "response", "progression", "stable", "stable", "progression"]


def test_measurement_error_and_missed_new_lesions_lower_the_ceiling(capsys):
    assert ceiling.main(["--truth", str(TRUTH), "--sigmas", "0", "0.1", "0.3", "--draws", "50"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| 0.")]
    auroc = [float(r[1]) for r in rows]
    assert auroc[0] == 1.0 and 1.0 > auroc[1] > auroc[2] > 0.85
    assert ceiling.main(["--truth", str(TRUTH), "--sigmas", "0", "--miss-new-lesions"]) == 0
    missed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0."))
    assert float(missed.split("|")[2]) < 0.95
