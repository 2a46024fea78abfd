"""Fixtures of the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread per test process: the suite runs 2 xdist workers on 2 cores, and small ops
    with 2 OpenMP threads each wait on a descheduled thread (10-100x slower under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def synthetic_cache(synthetic_cohort, tmp_path_factory):
    """The 12-patient cohort ingested once per session (same folder and lock as tests/data)."""
    import os

    from filelock import FileLock

    from onconet.data.ingest import ingest

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    cache = base / "synthetic_cache_n12_seed0_small"
    with FileLock(str(cache) + ".lock"):
        if not (cache / "pairs.csv").is_file():
            summary = ingest(synthetic_cohort.dicom_dir, cache, workers=2, progress=False)
            assert len(summary.ok) == len(summary.outcomes)
    return cache
