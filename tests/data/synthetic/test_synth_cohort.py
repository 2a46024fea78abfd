"""Determinism, independence of patients, the category plan, the API's errors and the CLI."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pydicom
import pytest
from synth_readers import read_csv

from onconet.classes import response_category
from onconet.cli import main
from onconet.data.synthetic import CohortPaths, generate_cohort, geometry
from onconet.data.synthetic.response import (
    CATEGORY_BLOCK,
    category_of,
    partial_limit,
    plan_hottest_followup,
    progression_limit,
)
from onconet.errors import ConfigError


def _pixel_bytes(paths: CohortPaths, patient: str) -> dict[str, bytes]:
    """Relative path -> PixelData of every file of one patient."""
    root = paths.dicom_dir / patient
    return {str(p.relative_to(root)): pydicom.dcmread(p).PixelData for p in sorted(root.rglob("*.dcm"))}


def test_same_seed_same_bytes_and_patients_independent_of_cohort_size(synthetic_cohort, tmp_path, capsys):
    """SYN0001 of a one-patient cohort is byte-identical to SYN0001 of the 12-patient fixture."""
    alone = generate_cohort(tmp_path / "one", patients=1, seed=0, workers=1)
    ours, theirs = _pixel_bytes(alone, "SYN0001"), _pixel_bytes(synthetic_cohort, "SYN0001")
    assert ours.keys() == theirs.keys() and len(ours) > 100
    assert ours == theirs
    a = sorted((alone.dicom_dir / "SYN0001").rglob("*.dcm"))
    b = sorted((synthetic_cohort.dicom_dir / "SYN0001").rglob("*.dcm"))
    assert [p.read_bytes() for p in a[:5]] == [p.read_bytes() for p in b[:5]]  # headers too
    assert alone.reports.read_text().splitlines()[0] == synthetic_cohort.reports.read_text().splitlines()[0]
    assert read_csv(alone.truth)[0] == read_csv(synthetic_cohort.truth)[0]

    # Another seed, through the command line, into a folder an earlier cohort left a patient in.
    out = tmp_path / "seed1"
    (out / "dicom" / "SYN0042").mkdir(parents=True)
    argv = [
        "synth",
        "--out",
        str(out),
        "--patients",
        "1",
        "--seed",
        "1",
        "--sites",
        "internal",
        "--workers",
        "1",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 patients, 2 exams" in printed and "internal 1" in printed and "categories:" in printed
    assert "SYN0001" not in printed  # no identifiers in the summary
    assert [p.name for p in (out / "dicom").iterdir()] == ["SYN0001"]  # the stale patient is gone
    other = CohortPaths.of(out)
    assert not set(_pixel_bytes(other, "SYN0001").values()) & set(ours.values())
    assert read_csv(other.truth)[0]["baseline_study_uid"] != read_csv(alone.truth)[0]["baseline_study_uid"]


def test_categories_are_balanced_per_block_and_vary_with_the_seed():
    for seed in range(3):
        for block in range(4):
            drawn = sorted(category_of(seed, 6 * block + k) for k in range(6))
            assert drawn == sorted(CATEGORY_BLOCK)
    assert [category_of(0, i) for i in range(12)] != [category_of(1, i) for i in range(12)]


@pytest.mark.parametrize("category", ["PMR", "SMD", "PMD"])
def test_planned_followup_values_give_their_category(category):
    rng = np.random.default_rng(5)
    planned = 0
    for _ in range(400):
        b, reference, near = rng.uniform(2.8, 20.0), rng.uniform(1.8, 2.7), bool(rng.random() < 0.5)
        f = plan_hottest_followup(rng, category, b, reference, floor=reference + 0.3, near=near)
        if f is None:
            continue
        planned += 1
        assert response_category(b, f, reference_suv=reference) == category
        if near:  # 1-4 % inside a threshold
            gaps = [abs(f / limit - 1) for limit in (partial_limit(b), progression_limit(b))]
            assert min(gaps) <= 0.045
    assert planned > 100


def test_cohort_json_declares_parameters_and_report_noise(synthetic_cohort):
    config = json.loads(synthetic_cohort.config.read_text())
    assert (config["patients"], config["seed"], config["size"]) == (12, 0, "small")
    assert config["sites"] == ["internal", "external"]
    assert config["report_noise"]["eps_max"] == 0.05
    assert set(config["site_profiles"]) == {"internal", "external"}


def test_bad_arguments_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown site 'nowhere'"):
        generate_cohort(tmp_path, patients=1, sites=("nowhere",))
    with pytest.raises(ConfigError, match="--patients"):
        generate_cohort(tmp_path, patients=0)
    with pytest.raises(ConfigError, match="size"):
        generate_cohort(tmp_path, patients=1, size="huge")


def test_cli_reports_bad_arguments(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--sites", "mars"]) == 1
    assert "unknown site 'mars'" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path), "--patients", "0"]) == 1
    assert "--patients" in capsys.readouterr().err


def test_docstring_examples():
    result = doctest.testmod(geometry)
    assert result.attempted > 0 and result.failed == 0
