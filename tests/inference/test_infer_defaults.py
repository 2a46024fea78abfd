"""How many processes `onconet infer` starts: DataLoader workers (``--num-workers``) and discovery."""

from __future__ import annotations

import argparse

import pytest

from onconet.inference import command
from onconet.inference.plan import discovery_processes


@pytest.mark.parametrize(
    ("cores", "devices", "workers"), [(16, 1, 15), (16, 2, 7), (2, 1, 1), (1, 1, 1), (2, 4, 1)]
)
def test_default_workers_leave_one_core_per_rank(monkeypatch, cores: int, devices: int, workers: int) -> None:
    monkeypatch.setattr("onconet.data.discovery.available_cpus", lambda: cores)
    assert command.default_workers(devices) == workers
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--dicom", "d", "--ckpt", "m.ckpt", "--out", "o"])
    assert args.num_workers is None  # resolved in run(): not fixed when the parser is made
    assert (
        parser.parse_args(
            ["--dicom", "d", "--ckpt", "m.ckpt", "--out", "o", "--num-workers", "0"]
        ).num_workers
        == 0
    )


@pytest.mark.parametrize(("workers", "devices", "processes"), [(12, 1, 16), (3, 2, 8), (0, 1, 1), (1, 32, 1)])
def test_discovery_uses_the_cores_of_this_rank(
    monkeypatch, workers: int, devices: int, processes: int
) -> None:
    monkeypatch.setattr("onconet.data.discovery.available_cpus", lambda: 16)
    assert discovery_processes(workers, devices) == processes
