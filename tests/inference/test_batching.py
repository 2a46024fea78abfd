"""Pairs loaded one at a time by workers and batched in the calling process (onconet/inference/batching.py)
give the batches that batching in the workers gave: same pairs, same order, same tensors (padded where the
batch is made, as ``PadStackd`` padded them in the workers); a DDP rank takes the pairs Lightning's
unrepeated distributed sampler gave it."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, default_collate

from onconet.data.transforms import CHANNELS, EXAMS, PadStackd
from onconet.inference.batching import PairBatches
from onconet.inference.checkpoint import load_checkpoint
from onconet.inference.dataset import DicomPairDataset, collate_pairs
from onconet.inference.plan import plan_inference


def batches_in_workers(dataset: DicomPairDataset, batch_size: int) -> list[dict]:
    """What infer's DataLoader gave before: each pair padded and stacked by ``PadStackd`` (the last step
    of ``in_memory_transforms``), batches stacked by ``default_collate``."""
    pad = PadStackd(dataset.grid)
    reference = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=list):
        padded = [pad({f"{e}_{c}": it[e][k] for e in EXAMS for k, c in enumerate(CHANNELS)}) for it in batch]
        reference.append({
            **collate_pairs(batch),
            **{exam: default_collate([p[exam] for p in padded]) for exam in EXAMS},
        })  # fmt: skip
    return reference


def assert_same_batches(ours: list[dict], theirs: list[dict]) -> None:
    assert [b["size"] for b in ours] == [b["size"] for b in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        assert mine["patient_id"] == other["patient_id"]
        assert mine["baseline_study_uid"] == other["baseline_study_uid"]
        assert mine["meta"] == other["meta"] and mine["errors"] == other["errors"]
        for key in ("baseline", "followup"):
            assert mine[key].shape == other[key].shape
            assert torch.equal(mine[key], other[key])


def test_batches_of_single_pairs_equal_batches_made_in_the_workers(trained_model) -> None:
    jobs = plan_inference(trained_model.dicom).jobs
    dataset = DicomPairDataset(jobs, None, load_checkpoint(trained_model.ckpt).data_settings)
    reference = batches_in_workers(dataset, 3)  # 4 pairs: batches of 3 and 1
    assert [b["size"] for b in reference] == [3, 1]

    batches = PairBatches(dataset, batch_size=3, num_workers=2)
    assert len(batches) == 2
    assert_same_batches(list(batches), reference)
    batches.start()  # workers started before the iteration (infer: while the model goes to the device)
    assert_same_batches(list(batches), reference)

    idle = PairBatches(dataset, batch_size=3, num_workers=1)
    idle.start()
    workers = idle._started._workers
    assert all(w.is_alive() for w in workers)
    idle.close()  # started, never iterated (the set-up failed): the workers stop
    assert not any(w.is_alive() for w in workers)

    # rank 1 of 2 takes pairs 1 and 3 (Lightning's unrepeated distributed sampler), rank 0 pairs 0 and 2
    cpu = torch.device("cpu")
    second = PairBatches(dataset, batch_size=3, num_workers=0, placement=lambda: (1, 2, cpu))
    first = PairBatches(dataset, batch_size=3, num_workers=0, placement=lambda: (0, 2, cpu))
    (got,) = list(second)
    assert got["patient_id"] == [reference[0]["patient_id"][1], reference[1]["patient_id"][0]]
    assert torch.equal(got["followup"][1], reference[1]["followup"][0])
    (got,) = list(first)
    assert got["patient_id"] == [reference[0]["patient_id"][0], reference[0]["patient_id"][2]]
