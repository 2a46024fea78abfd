"""PairDataModule over a real cache: the synthetic cohort ingested by ``onconet ingest``."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import pytest
import torch

from onconet.classes import RESPONSE_CLASSES
from onconet.data.cache import read_csv
from onconet.data.datamodule import PairDataModule, default_num_workers
from onconet.errors import ConfigError

SPACING, SIZE = (16.0, 16.0, 32.0), (24, 24, 32)  # coarse: fast, still the whole body


def truth_rows(cohort) -> dict[tuple[str, str], dict]:
    return {(r["baseline_study_uid"], r["followup_study_uid"]): r for r in read_csv(cohort.truth)}


def write_weak_labels(path: Path, cohort, *, blank: int = 0, wrong: bool = False) -> Path:
    """A labels.csv (labeling contract) from the truth: the first ``blank`` internal pairs abstain."""
    rows, blanked = [], 0
    for i, ((baseline, followup), row) in enumerate(truth_rows(cohort).items()):
        label = row["label"]
        if wrong:
            label = RESPONSE_CLASSES[(RESPONSE_CLASSES.index(label) + 1) % 3]
        if row["site"] == "internal" and blanked < blank:
            label, blanked = "", blanked + 1
        rows.append(
            {
                "patient_id": row["patient_id"],
                "baseline_study_uid": baseline,
                "followup_study_uid": followup,
                "label": label,
                "confidence": "0.8" if label else "0",
                "lf_within_report": label,
                # the reports' hottest-lesion SUVmax: the truth's values doubled, one baseline unreported
                "baseline_hottest": "" if i == 1 else f"{2 * float(row['baseline_suvmax']):.1f}",
                "followup_hottest": f"{2 * float(row['followup_suvmax']):.1f}",
            }
        )
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def datamodule(cache: Path, **options) -> PairDataModule:
    options = {"spacing": SPACING, "spatial_size": SIZE, "num_workers": 0, **options}
    dm = PairDataModule(cache=str(cache), **options)
    dm.setup("fit")
    return dm


def test_internal_test_fraction_holds_out_internal_patients_too(synthetic_cache, synthetic_cohort):
    truth = str(synthetic_cohort.truth)
    plain = datamodule(synthetic_cache, truth=truth, label_source="gold")
    dm = datamodule(synthetic_cache, truth=truth, label_source="gold", internal_test_fraction=0.34)
    sites = {r["patient_id"]: r["site"] for r in read_csv(synthetic_cache / "pairs.csv")}
    internal = {p for p, s in sites.items() if s == "internal"}
    train, val, test = (dm.splits.patients(s) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    held_out = test & internal
    assert len(held_out) == round(0.34 * len(internal)) and train and val
    assert test - held_out == plain.splits.patients("test")  # every external patient still tested
    assert train | val | held_out == internal
    assert {s["site"] for s in dm.splits.samples["test"]} == {"internal", "external"}
    # The same seed holds out the same patients; the default leaves the split as it was.
    again = datamodule(synthetic_cache, truth=truth, label_source="gold", internal_test_fraction=0.34)
    assert again.splits.patients("test") == test
    assert datamodule(synthetic_cache, truth=truth, label_source="gold").splits.patients("val") == (
        plain.splits.patients("val")
    )
    with pytest.raises(ConfigError, match="internal_test_fraction"):
        PairDataModule(cache=str(synthetic_cache), truth=truth, internal_test_fraction=1.0)


def test_splits_are_patient_level_and_the_external_site_is_only_in_test(synthetic_cache, synthetic_cohort):
    dm = datamodule(synthetic_cache, truth=str(synthetic_cohort.truth), label_source="gold")
    train, val, test = (dm.splits.patients(s) for s in ("train", "val", "test"))
    assert train and val and test
    assert not (train & val) and not (train & test) and not (val & test)
    sites = {r["patient_id"]: r["site"] for r in read_csv(synthetic_cache / "pairs.csv")}
    assert {sites[p] for p in test} == {"external"}
    assert test == {p for p, s in sites.items() if s == "external"}
    assert {sites[p] for p in train | val} == {"internal"}
    assert len(dm.all_samples) == len(sites)


def test_batches_hold_two_channel_volumes_and_labels(synthetic_cache, synthetic_cohort):
    dm = datamodule(synthetic_cache, truth=str(synthetic_cohort.truth), label_source="gold", batch_size=3)
    batch = next(iter(dm.train_dataloader()))
    for exam in ("baseline", "followup"):
        volume = batch[exam]
        assert volume.shape == (3, 2, *SIZE) and volume.dtype == torch.float32
        suv, ct = volume[:, 0], volume[:, 1]
        assert suv.min() >= 0 and suv.max() > 0.3  # log1p(SUV)/log1p(20): lesions and bladder are hot
        assert ct.min() >= 0 and ct.max() <= 1 and ct.max() > ct.min()  # air 0 .. bone
    assert batch["label"].dtype == torch.long and batch["weight"].tolist() == [1.0, 1.0, 1.0]
    truth = truth_rows(synthetic_cohort)
    for i, key in enumerate(zip(batch["baseline_study_uid"], batch["followup_study_uid"], strict=True)):
        assert RESPONSE_CLASSES[int(batch["label"][i])] == truth[key]["label"]


def test_splits_follow_the_seed(synthetic_cache, synthetic_cohort):
    def val_patients(seed: int) -> frozenset:
        dm = datamodule(synthetic_cache, truth=str(synthetic_cohort.truth), label_source="gold", seed=seed)
        return frozenset(dm.splits.patients("val"))

    assert val_patients(0) == val_patients(0)
    assert len({val_patients(seed) for seed in range(6)}) > 1


def test_pairs_without_a_weak_label_are_dropped_and_counted(
    synthetic_cache, synthetic_cohort, tmp_path, caplog
):
    labels = write_weak_labels(tmp_path / "labels.csv", synthetic_cohort, blank=2)
    with caplog.at_level(logging.INFO, logger="onconet.data.datamodule"):
        dm = datamodule(synthetic_cache, labels=str(labels), eval_label_source="weak")
    dropped = dm.splits.dropped_unlabelled
    assert sum(dropped.values()) == 2 and set(dropped) <= {"train", "val"}
    internal = sum(r["site"] == "internal" for r in read_csv(synthetic_cache / "pairs.csv"))
    assert len(dm.splits.samples["train"]) + len(dm.splits.samples["val"]) == internal - 2
    assert all(s["weight"] == pytest.approx(0.8) for s in dm.splits.samples["train"])
    assert "dropped without a label" in caplog.text
    assert len(dm.predict_dataloader().dataset) == len(dm.all_samples)  # predict keeps every pair


def test_weak_labels_train_while_gold_labels_evaluate(synthetic_cache, synthetic_cohort, tmp_path):
    labels = write_weak_labels(tmp_path / "labels.csv", synthetic_cohort, wrong=True)
    dm = datamodule(synthetic_cache, labels=str(labels), truth=str(synthetic_cohort.truth))
    assert dm.eval_source() == "gold"
    truth = truth_rows(synthetic_cohort)
    for split, agrees in (("train", False), ("val", True), ("test", True)):
        for sample in dm.splits.samples[split]:
            gold = truth[(sample["baseline_study_uid"], sample["followup_study_uid"])]["label"]
            assert (RESPONSE_CLASSES[sample["label"]] == gold) is agrees


def test_missing_inputs_are_config_errors(synthetic_cache, synthetic_cohort, tmp_path):
    with pytest.raises(ConfigError, match=r"pairs\.csv: no such file"):
        datamodule(tmp_path, truth=str(synthetic_cohort.truth), label_source="gold")
    with pytest.raises(ConfigError, match="no such file"):
        datamodule(synthetic_cache, labels=str(tmp_path / "absent.csv"))
    with pytest.raises(ConfigError, match=r"data\.labels"):
        datamodule(synthetic_cache, truth=str(synthetic_cohort.truth), label_source="weak")


def test_worker_count_fits_the_machine():
    workers = default_num_workers()
    assert 0 <= workers <= max(0, (os.cpu_count() or 1) // 2)


def test_docstring_example():
    import doctest

    from onconet.data import datamodule as datamodule_module

    result = doctest.testmod(datamodule_module)
    assert result.attempted > 0 and result.failed == 0


def test_samples_carry_the_hottest_lesion_suvmax_of_their_label_source(
    synthetic_cache, synthetic_cohort, tmp_path
):
    # Training pairs read the reports' values (labels.csv), evaluation pairs the true ones (truth.csv);
    # an unreported value is NaN, which the SUVmax loss leaves out.
    labels = write_weak_labels(tmp_path / "labels.csv", synthetic_cohort, blank=1)
    dm = datamodule(synthetic_cache, labels=str(labels), truth=str(synthetic_cohort.truth))
    truth = truth_rows(synthetic_cohort)
    reported = {(r["baseline_study_uid"], r["followup_study_uid"]): r for r in read_csv(labels)}
    unreported = 0
    for split in ("train", "val", "test"):
        for sample in dm.splits.samples[split]:
            key = (sample["baseline_study_uid"], sample["followup_study_uid"])
            gold = [float(truth[key][f"{exam}_suvmax"]) for exam in ("baseline", "followup")]
            if split == "train":
                weak = [reported[key][f"{exam}_hottest"] for exam in ("baseline", "followup")]
                expected = [float(v) if v else float("nan") for v in weak]
                unreported += not weak[0]
            else:
                expected = gold
            torch.testing.assert_close(sample["suvmax"], torch.tensor(expected), equal_nan=True)
    assert unreported <= 1  # the second pair's, if it trains
    batch = next(iter(dm.train_dataloader()))
    assert batch["suvmax"].shape == (dm.hparams.batch_size, 2) and batch["suvmax"].dtype == torch.float32
