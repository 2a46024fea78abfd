"""Pairs loaded one at a time by DataLoader workers, batched in the calling process (on the device).

A DataLoader that batches in its workers hands each worker a whole batch: with a batch of 16 and ~80 ms
of CPU per pair, nothing reaches the model for 16 x 80 ms after start, and at the end a few workers finish
their last whole batches while the rest idle (96 pairs, batch 16, 12 workers: 6 busy workers). Here the
workers load single pairs in order and this process groups ``batch_size`` consecutive pairs into a batch,
so the first batch is ready after ``batch_size / workers`` pairs per worker and every worker stays busy to
the end. The workers hand over each pair's volumes on the model grid unpadded, and the batch is padded
and stacked where it is made, on the device (:func:`~onconet.inference.dataset.collate_pairs`; on CUDA
the loader's thread pins the volumes, so the copies to the GPU are queued, not waited for). The
batches hold the same pairs in the same order as batching in the workers (and, on DDP, as Lightning's
unrepeated distributed sampler: rank ``r`` of ``w`` takes pairs ``r, r + w, ...``), so the predictions
are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from onconet.inference.dataset import collate_pairs, freeze_imported_objects

#: Where this process's share goes: (rank, world size, device), asked when iteration starts (after a DDP
#: launch has set the ranks).
Placement = Callable[[], tuple[int, int, torch.device]]


def on_cpu() -> tuple[int, int, torch.device]:
    """The placement of a single process on the CPU."""
    return 0, 1, torch.device("cpu")


def single_item(item: dict[str, Any]) -> dict[str, Any]:
    """``collate_fn`` of a loader of single pairs: the item as the dataset made it (no conversion)."""
    return item


class PairBatches:
    """This rank's pairs, loaded one at a time in ``num_workers`` processes, in batches of ``batch_size``.

    Args:
        dataset: the pairs (a :class:`~onconet.inference.dataset.DicomPairDataset`).
        batch_size: pairs per batch.
        num_workers: DataLoader workers (0: load in this process).
        placement: rank, world size and device of this process (default: one process on the CPU).
        prefetch: pairs each worker may load ahead (default: enough for two batches over all workers, so
            that they keep loading while the model runs on a batch).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        num_workers: int,
        placement: Placement = on_cpu,
        prefetch: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.placement = placement
        self.prefetch = prefetch or max(2, 2 * math.ceil(batch_size / max(1, num_workers)))
        self._started: Iterator[dict[str, Any]] | None = None

    def indices(self) -> range:
        """The dataset indices of this rank's pairs."""
        rank, world, _device = self.placement()
        return range(rank, len(self.dataset), world)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return math.ceil(len(self.indices()) / self.batch_size)

    def loader(self, pin_memory: bool = False) -> DataLoader:
        """The DataLoader of this rank's single pairs, in order (``pin_memory``: copied into page-locked
        memory by the loader's thread, so that the copy to the GPU is a DMA the main thread only queues)."""
        return DataLoader(
            Subset(self.dataset, self.indices()),
            batch_size=None,  # one pair per item: the workers never wait to fill a batch
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=single_item,
            worker_init_fn=freeze_imported_objects if self.num_workers else None,
            prefetch_factor=self.prefetch if self.num_workers else None,
            persistent_workers=False,
            pin_memory=pin_memory,
        )

    def start(self) -> None:
        """Start the workers now, so that they load the first pairs while the caller sets up the device and
        the model (single process only: a DDP rank learns its share after the launch)."""
        if self._started is None:
            cuda = self.placement()[2].type == "cuda"
            self._started = iter(self.loader(pin_memory=cuda))

    def close(self) -> None:
        """Stop workers that :meth:`start` started and no iteration consumed (e.g. the set-up failed)."""
        started, self._started = self._started, None
        shutdown = getattr(started, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        _rank, _world, device = self.placement()
        cuda = device.type == "cuda"
        started, self._started = self._started, None
        items: list[dict[str, Any]] = []
        for item in started if started is not None else self.loader(pin_memory=cuda):
            items.append(item)
            if len(items) == self.batch_size:
                yield collate_pairs(items, device)
                items = []
        if items:
            yield collate_pairs(items, device)
