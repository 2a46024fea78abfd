"""Pairs of raw DICOM studies -> model tensors, in DataLoader workers.

Each item converts both studies with :func:`onconet.data.study.process_study` (SUV by the QIBA rules, CT
on the PET grid, NIfTI cache: a study already cached from the same files is not converted again) and then
applies the deterministic MONAI transforms of training (:func:`onconet.data.transforms.pair_transforms`
with ``train=False`` and the checkpoint's data settings). Going through the same NIfTI files and the same
transforms as ``onconet predict`` is what makes both commands give the same numbers. A study that fails
yields an item with ``error`` set instead of tensors; :func:`collate_pairs` keeps such items aside, so a
bad pair never stops a batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from onconet.data.study import process_study
from onconet.data.transforms import pair_transforms
from onconet.inference.plan import PairJob, error_row
from onconet.models.module import ID_KEYS


class DicomPairDataset(Dataset):
    """Items: ``baseline``/``followup`` (2, X, Y, Z) tensors and a ``meta`` dict, or an ``error`` row list."""

    def __init__(
        self,
        jobs: Sequence[PairJob],
        cache_dir: str | os.PathLike,
        data_settings: dict[str, Any],
        suv_kind: str = "bw",
    ) -> None:
        self.jobs = list(jobs)
        self.cache_dir = Path(cache_dir)
        self.suv_kind = suv_kind
        self.transform = pair_transforms(
            data_settings["spacing"],
            data_settings["spatial_size"],
            suv_scaling=data_settings["suv_scaling"],
            suv_max=data_settings["suv_max"],
            hu_range=data_settings["hu_range"],
            train=False,
        )

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        job = self.jobs[index]
        ids = {
            "patient_id": job.patient_id,
            "baseline_study_uid": job.baseline.study_uid,
            "followup_study_uid": job.followup.study_uid,
        }
        rows, errors = {}, []
        for exam, study in (("baseline", job.baseline), ("followup", job.followup)):
            outcome = process_study(study, self.cache_dir, self.suv_kind)
            rows[exam] = outcome.row
            if not outcome.ok:
                reason = outcome.reason
                errors.append(
                    error_row(
                        "study",
                        reason,
                        outcome.row["error"],
                        str(study.source_dir),
                        patient_id=job.patient_id,
                        study_uid=study.study_uid,
                    )
                )
                errors.append(
                    error_row(
                        "pair",
                        f"{exam} study failed: {reason}",
                        outcome.row["error"],
                        str(study.source_dir),
                        **ids,
                    )
                )
        if errors:
            return {"error": errors}
        sample = {
            f"{exam}_{kind}": str(self.cache_dir / rows[exam][f"{column}_path"])
            for exam in ("baseline", "followup")
            for kind, column in (("suv", "pet"), ("ct", "ct"))
        }
        try:
            tensors = self.transform(sample)
        except Exception as err:  # an unreadable cache file must not stop the batch either
            detail = f"{type(err).__name__}: {err}"
            return {"error": [error_row("pair", "transform failed", detail, sample["baseline_suv"], **ids)]}
        meta = {
            **ids,
            "site": job.site,
            "baseline_date": job.baseline.study_date,
            "followup_date": job.followup.study_date,
            "baseline_manufacturer": rows["baseline"].get("manufacturer", ""),
            "followup_manufacturer": rows["followup"].get("manufacturer", ""),
            "baseline_suv_path": sample["baseline_suv"],
            "followup_suv_path": sample["followup_suv"],
        }
        return {"baseline": tensors["baseline"], "followup": tensors["followup"], "meta": meta}


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the good items into a batch (``baseline``, ``followup``, identifiers, ``meta``); keep ``errors``.

    Example:
        >>> good = {"baseline": torch.zeros(2, 4, 4, 4), "followup": torch.ones(2, 4, 4, 4),
        ...         "meta": {"patient_id": "P1", "site": "s", "baseline_study_uid": "1",
        ...                  "followup_study_uid": "2"}}
        >>> batch = collate_pairs([good, {"error": [{"stage": "pair", "reason": "x"}]}])
        >>> batch["baseline"].shape, batch["patient_id"], len(batch["errors"])
        (torch.Size([1, 2, 4, 4, 4]), ['P1'], 1)
    """
    good = [item for item in items if "error" not in item]
    batch: dict[str, Any] = {
        "errors": [row for item in items if "error" in item for row in item["error"]],
        "meta": [item["meta"] for item in good],
        "size": len(items),
    }
    if good:
        batch["baseline"] = torch.stack([item["baseline"] for item in good])
        batch["followup"] = torch.stack([item["followup"] for item in good])
        for key in ID_KEYS:
            batch[key] = [item["meta"][key] for item in good]
    return batch
