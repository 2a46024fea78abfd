"""The no-learning heuristic on the real NIfTI cache of the synthetic cohort (DICOM → ingest → cache)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from onconet.classes import RESPONSE_CLASSES
from onconet.cli import main
from onconet.data.cache import read_csv, read_nifti
from onconet.evaluation.heuristic import heuristic_class, heuristic_scores, image_suvmax


def test_image_suvmax_is_the_hottest_voxel_the_generator_wrote(synthetic_cache, synthetic_cohort):
    exams = {row["pet_series_uid"]: row for row in read_csv(synthetic_cohort.exams)}
    manifest = read_csv(synthetic_cache / "manifest.csv")
    assert len(manifest) == len(exams)
    for row in manifest:
        path = synthetic_cache / row["pet_path"]
        volume, _ = read_nifti(path)
        value = image_suvmax(path)
        assert value == pytest.approx(float(volume.max()))
        # The SUV the reader recovers from the stored values is the generator's image maximum
        # (int16 quantisation of the stored values: well under 1 %).
        assert value == pytest.approx(float(exams[row["pet_series_uid"]]["image_suvmax"]), rel=0.01)


def test_scores_pick_the_class_of_the_thresholds():
    rng = np.random.default_rng(0)
    baseline = rng.uniform(1.0, 30.0, size=400)
    followup = baseline * np.exp(rng.normal(0.0, 0.5, size=400))
    # Values on the thresholds too: ratio 0.7 / 1.3 and the 0.8 absolute change.
    baseline = np.concatenate([baseline, [10.0, 10.0, 2.0, 2.0, 3.0]])
    followup = np.concatenate([followup, [7.0, 13.0, 1.3, 2.7, 3.9]])
    for b, f in zip(baseline, followup, strict=True):
        probs = heuristic_scores(float(b), float(f))
        assert probs.shape == (3,) and probs.sum() == pytest.approx(1.0) and (probs > 0).all()
        assert RESPONSE_CLASSES[int(probs.argmax())] == heuristic_class(float(b), float(f)) or (
            np.sort(probs)[-1] - np.sort(probs)[-2] < 1e-6  # exactly on a threshold: a tie
        )
    assert heuristic_class(10.0, 7.0) == "response"  # f = 0.7 b, b − f = 3 ≥ 0.8
    assert heuristic_class(2.0, 1.3) == "stable"  # ratio 0.65 but only 0.7 SUV lower
    assert heuristic_class(3.0, 3.9) == "progression"  # 1.3 b and 0.9 higher
    # The progression score grows with the follow-up's hottest voxel: monotone for AUROC.
    p = [heuristic_scores(5.0, f)[2] for f in np.linspace(1.0, 20.0, 40)]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(p))


def test_heuristic_command_writes_predictions_evaluate_reads(synthetic_cache, synthetic_cohort, tmp_path):
    out = tmp_path / "heuristic.csv"
    assert main(["heuristic", "--cache", str(synthetic_cache), "--out", str(out)]) == 0
    predictions = pd.read_csv(out)
    pairs = read_csv(synthetic_cache / "pairs.csv")
    assert len(predictions) == len(pairs)
    assert set(predictions["predicted"]) <= set(RESPONSE_CLASSES)
    probs = predictions[[f"prob_{c}" for c in RESPONSE_CLASSES]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    exams = {row["study_uid"]: float(row["image_suvmax"]) for row in read_csv(synthetic_cohort.exams)}
    for _, row in predictions.iterrows():
        assert row["baseline_image_suvmax"] == pytest.approx(exams[row["baseline_study_uid"]], rel=0.01)
        assert row["followup_image_suvmax"] == pytest.approx(exams[row["followup_study_uid"]], rel=0.01)
        assert row["predicted"] == heuristic_class(row["baseline_image_suvmax"], row["followup_image_suvmax"])
    external = tmp_path / "external.csv"
    assert (
        main(["heuristic", "--cache", str(synthetic_cache), "--site", "external", "--out", str(external)])
        == 0
    )
    assert set(pd.read_csv(external)["site"]) == {"external"}
    evaluation = tmp_path / "eval"
    args = ["--predictions", str(out), "--truth", str(synthetic_cohort.truth), "--out", str(evaluation)]
    assert main(["evaluate", *args, "--bootstrap", "50"]) == 0
    assert pd.read_csv(evaluation / "metrics.csv").loc[0, "n"] == len(pairs)


def test_heuristic_names_a_missing_cache(tmp_path, capsys):
    assert main(["heuristic", "--cache", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p.csv")]) == 1
    assert "pairs.csv" in capsys.readouterr().err
