"""Fixtures of the synthetic cohort's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from synth_readers import series_folders


@pytest.fixture(scope="session")
def cohort_series(synthetic_cohort) -> dict[tuple[str, str], Path]:
    return series_folders(synthetic_cohort.dicom_dir)
