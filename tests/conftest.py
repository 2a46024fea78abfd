"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def realdata_dir() -> Path:
    """``../shared/realdata`` beside the checkout, or ``$ONCONET_REALDATA``."""
    return Path(os.environ.get("ONCONET_REALDATA", REPO_ROOT.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The folder of real third-party test material (never copied into the repository)."""
    path = realdata_dir()
    if not (path / "MANIFEST.md").is_file():
        pytest.skip(f"real test data not found at {path} (set ONCONET_REALDATA)")
    return path
