"""Fixtures for the real third-party test data: archives extracted once per test session (and worker)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from onconet.data.dicom import Volume, load_series

ARCHIVES = ("suv_dro.tar.xz", "pet_sts001.tar.xz", "pet_headers.tar.xz")


@pytest.fixture(scope="session")
def realdata_root(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three archives of ``../shared/realdata`` extracted into one session cache folder."""
    root = tmp_path_factory.mktemp("realdata")
    for name in ARCHIVES:
        with tarfile.open(realdata / name) as archive:
            archive.extractall(root, filter="data")
    return root


@pytest.fixture(scope="session")
def dro_root(realdata_root: Path) -> Path:
    """``DRO/`` with one folder per SUV digital reference object."""
    return realdata_root / "DRO"


@pytest.fixture(scope="session")
def sts_pet_dir(realdata_root: Path) -> Path:
    """STS_001's complete FDG PET series (267 slices, GE, BQML, START)."""
    return realdata_root / "mirp_sts_001_fdg_pet" / "image"


@pytest.fixture(scope="session")
def sts_pet_volume(sts_pet_dir: Path) -> Volume:
    """STS_001's PET assembled once (rescaled stored values, Bq/mL); tests convert copies of it."""
    return load_series(sts_pet_dir)
