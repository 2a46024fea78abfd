"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Triton reads TRITON_INTERPRET when it is first imported, and Lightning imports it early: on a machine
# without a GPU set it here, before any test module is collected, so the kernels run in the interpreter.
if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread per test process: the suite runs 2 xdist workers on 2 cores, and small ops
    with 2 OpenMP threads each wait on a descheduled thread (10-100x slower under load)."""
    import torch  # here, not at collection: TRITON_INTERPRET must be set before torch pulls in Triton

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def session_shared_path(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A path in the temp folder that every pytest-xdist worker of this session shares."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / name


@pytest.fixture(scope="session")
def synthetic_cohort(tmp_path_factory):
    """A 12-patient small synthetic cohort (seed 0, internal + external sites) as ``CohortPaths``.

    Made once per test session: pytest-xdist workers share it through the common base temp folder and
    a file lock, so only the first worker that asks pays for it (about 25 s on 2 cores).
    """
    from filelock import FileLock

    from onconet.data.synthetic import CohortPaths, generate_cohort

    out = session_shared_path(tmp_path_factory, "synthetic_cohort_n12_seed0_small")
    with FileLock(str(out) + ".lock"):
        # cohort.json is written last: its presence means the cohort is whole.
        if not (out / "cohort.json").is_file():
            generate_cohort(out, patients=12, seed=0, sites=("internal", "external"), size="small")
    return CohortPaths.of(out)


@pytest.fixture(scope="session")
def synthetic_cache(synthetic_cohort, tmp_path_factory) -> Path:
    """The 12-patient cohort ingested once per session into a NIfTI cache (shared like the cohort)."""
    from filelock import FileLock

    from onconet.data.ingest import ingest

    cache = session_shared_path(tmp_path_factory, "synthetic_cache_n12_seed0_small")
    with FileLock(str(cache) + ".lock"):
        if not (cache / "pairs.csv").is_file():
            summary = ingest(synthetic_cohort.dicom_dir, cache, workers=2, progress=False)
            assert len(summary.ok) == len(summary.outcomes)
    return cache
