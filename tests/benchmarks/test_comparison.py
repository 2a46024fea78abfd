"""The plumbing of benchmarks/comparison.py (no training): site split, label check, goals, stored results."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark_script

from onconet.errors import OncoNetError

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


cmp = load_benchmark_script("comparison")


def _row(auroc: float, kappa: float, width: float = 0.04) -> dict[str, float]:
    row = {"n": 100.0}
    for metric, value in (("macro_auroc", auroc), ("change_auroc", auroc), ("kappa_quadratic", kappa)):
        row.update({metric: value, f"{metric}_low": value - width, f"{metric}_high": value + width})
    return row


def _table(**external: tuple[float, float]) -> dict:
    return {m: {"internal": _row(a, k), "external": _row(a, k)} for m, (a, k) in external.items()}


def test_goals_name_the_best_efficient_backbone_and_decide_each_goal():
    table = _table(
        based3d=(0.91, 0.82), monarch3d=(0.88, 0.7), densenet121=(0.90, 0.8), based3d_gold=(0.92, 0.85),
        heuristic=(0.55, 0.1),
    )  # fmt: skip
    lines = "\n".join(cmp.goals(table))
    assert "`based3d`" in lines
    assert "0.910 → **met**" in lines and "0.820 → **met**" in lines
    assert "gap +0.010 → **met**" in lines
    assert "DenseNet121-3D (0.900): **met**" in lines
    assert "heuristic clearly worse" in lines and lines.rstrip().endswith("**met**")
    worse = "\n".join(cmp.goals(_table(based3d=(0.85, 0.6), densenet121=(0.9, 0.8), heuristic=(0.84, 0.5))))
    assert worse.count("**not met**") == 4  # AUROC, kappa, DenseNet, heuristic overlap


def test_predictions_split_by_site_and_labels_must_name_the_cohorts_pairs(tmp_path):
    rows = [
        {"patient_id": f"P{i}", "site": "internal" if i % 3 else "external", "baseline_study_uid": f"b{i}",
         "followup_study_uid": f"f{i}", "predicted": "stable", "prob_response": "0.2", "prob_stable": "0.5",
         "prob_progression": "0.3", "target": "stable"}
        for i in range(9)
    ]  # fmt: skip
    paths = cmp.split_by_site(rows, tmp_path / "model")
    for site, path in paths.items():
        written = list(csv.DictReader(path.open()))
        assert {r["site"] for r in written} == {site} and "target" not in written[0]
    assert sum(len(list(csv.DictReader(p.open()))) for p in paths.values()) == 9
    with pytest.raises(OncoNetError, match="no external"):
        cmp.split_by_site([r for r in rows if r["site"] == "internal"], tmp_path / "other")

    columns = ["baseline_study_uid", "followup_study_uid", "label"]
    cmp.write_rows(tmp_path / "truth.csv", rows, tuple(columns))
    cmp.write_rows(tmp_path / "labels.csv", rows, tuple(columns))
    cmp.check_labels_match(tmp_path / "truth.csv", tmp_path / "labels.csv")
    cmp.write_rows(tmp_path / "labels.csv", rows[:-1], tuple(columns))
    with pytest.raises(OncoNetError, match="different pairs"):
        cmp.check_labels_match(tmp_path / "truth.csv", tmp_path / "labels.csv")


def test_stored_comparison_has_every_model_file_notebook_02_reads():
    folder = RESULTS / "comparison"
    truth = {
        (r["baseline_study_uid"], r["followup_study_uid"])
        for r in csv.DictReader((folder / "truth.csv").open())
    }
    for model in [*cmp.MODELS, cmp.HEURISTIC]:
        for site in cmp.SITES:
            rows = list(csv.DictReader((folder / model / f"{site}_predictions.csv").open()))
            assert rows and {r["site"] for r in rows} == {site}
            assert {(r["baseline_study_uid"], r["followup_study_uid"]) for r in rows} <= truth
    table = list(csv.DictReader((RESULTS / "comparison.csv").open()))
    assert {r["model"] for r in table} == {*cmp.MODELS, cmp.HEURISTIC}


def test_training_curves_are_one_row_per_epoch_from_the_fit_events(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "lightning_logs" / "version_0"))
    for step, epoch in ((9, 0), (19, 1), (29, 2)):  # Lightning logs "epoch" with every logged step
        writer.add_scalar("epoch", epoch, step)
        writer.add_scalar("val/macro_auroc", 0.5 + 0.1 * epoch, step)
        writer.add_scalar("train/loss", 1.0, step)  # a per-step scalar: not a curve column
    writer.add_scalar("epoch", 2, 31)
    writer.close()
    curves = cmp.training_curves(tmp_path)
    assert [row["epoch"] for row in curves] == [1, 2, 3]
    assert [row["val/macro_auroc"] for row in curves] == [0.5, 0.6, 0.7]
    assert all(set(row) == {"epoch", "val/macro_auroc"} for row in curves)
    assert cmp.training_curves(tmp_path / "nothing") == []


def test_the_stored_runs_keep_each_fit_s_curves():
    for folder, table in (
        ("comparison", "comparison.csv"),
        ("comparison_noshift", "comparison_noshift.csv"),
        ("comparison_run2", "comparison_run2.csv"),
    ):
        epochs = {
            r["model"]: int(r["epochs"]) for r in csv.DictReader((RESULTS / table).open()) if r["epochs"]
        }
        for model in cmp.MODELS:
            rows = list(csv.DictReader((RESULTS / folder / model / "curves.csv").open()))
            assert [int(r["epoch"]) for r in rows] == list(range(1, epochs[model] + 1)), (folder, model)
            assert all(0.0 <= float(r["val/macro_auroc"]) <= 1.0 for r in rows)


def test_the_stored_ablation_keeps_every_variant_s_thirty_epochs():
    md = (RESULTS / "comparison_ablation.md").read_text()
    variants = sorted(p.name for p in (RESULTS / "comparison_ablation").iterdir())
    assert variants == [
        "A_monarch",
        "B_monarch_pm",
        "C_monarch_pm_nohead",
        "D_based_pm",
        "E_monarch_pm_lr1e3",
    ]
    for variant in variants:
        rows = list(csv.DictReader((RESULTS / "comparison_ablation" / variant / "curves.csv").open()))
        assert [int(r["epoch"]) for r in rows] == list(range(1, 31)), variant
        best = max(rows, key=lambda r: float(r["val/macro_auroc"]))
        # the table's last column is each variant's best validation AUROC and its epoch
        assert f"| {float(best['val/macro_auroc']):.3f} ({best['epoch']}) |" in md, variant
        assert ("val/suvmax_loss" in rows[0] and rows[0]["val/suvmax_loss"] != "") == (
            variant != "C_monarch_pm_nohead"
        )
