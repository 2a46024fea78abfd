"""Pairs of raw DICOM studies -> model tensors, in DataLoader workers.

Each item converts both studies with :func:`onconet.data.study.process_study` (SUV by the QIBA rules, CT
on the PET grid) and then applies the deterministic MONAI transforms of training
(:func:`onconet.data.transforms.in_memory_transforms`: ``deterministic_transforms`` and the stacking
without the loading, with the checkpoint's data settings). By default the volumes go from the
conversion to the transforms in memory; with a cache folder they are also written as NIfTI (a study
already cached from the same files is read from there instead of converted again). Either way the
transforms see exactly what ``onconet predict`` sees after loading the cached NIfTI files: the same
float32 values on the affine at the NIfTI header's float32 precision (see :func:`nifti_equivalent`),
which is what makes both commands give the same numbers. A study that fails yields an item with
``error`` set instead of tensors; :func:`collate_pairs` keeps such items aside, so a bad pair never
stops a batch.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from monai.utils import SpaceKeys
from torch.utils.data import Dataset

from onconet.data.cache import read_nifti
from onconet.data.study import StudyOutcome, process_study
from onconet.data.transforms import CHANNELS, EXAMS, PadStackd, in_memory_transforms, pad_into, plain_tensor
from onconet.errors import OncoNetError
from onconet.inference.figures import mip_view
from onconet.inference.plan import PairJob, error_row
from onconet.models.module import ID_KEYS


def freeze_imported_objects(worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: move everything alive now (torch, MONAI, ... as imported) out of the
    garbage collector's sight.

    Reading DICOM allocates many small containers (a pydicom Dataset per slice), which triggers full
    collections; each one re-scans the half million objects the imports left, which cost about 40 % of
    the reading time. Frozen objects are still freed by reference counting; they are only not scanned.
    """
    gc.freeze()


def nifti_equivalent(array: np.ndarray, affine: np.ndarray) -> MetaTensor:
    """The MetaTensor MONAI's ``LoadImaged`` (NibabelReader) makes of this volume written by the cache.

    The NIfTI header keeps the affine (sform) in float32, so it is rounded the same way here; the values
    are float32 either way. The result is bit-identical to loading the cached file (tests check it).
    """
    affine = np.asarray(affine, dtype=np.float64).astype(np.float32).astype(np.float64)
    meta = {
        "original_affine": affine.copy(),
        "spatial_shape": np.asarray(array.shape),
        "original_channel_dim": float("nan"),  # no channel axis: EnsureChannelFirstd adds one
        "space": SpaceKeys.RAS,
    }
    # Fortran order, as nibabel loads NIfTI: MONAI's spacing transform runs about 3x faster on it
    values = np.asfortranarray(array, dtype=np.float32)
    return MetaTensor(torch.from_numpy(values), affine=torch.as_tensor(affine), meta=meta)


def volume_transforms(settings: dict[str, Any]) -> Compose:
    """The deterministic transforms and the stacking of training, minus the NIfTI loading (done here)."""
    return in_memory_transforms(
        settings["spacing"],
        settings["spatial_size"],
        suv_scaling=settings["suv_scaling"],
        suv_max=settings["suv_max"],
        hu_range=settings["hu_range"],
    )


def crop_transforms(settings: dict[str, Any]) -> tuple[Compose, tuple[int, ...]]:
    """:func:`volume_transforms` without its last step (:class:`PadStackd`), and the model grid size.

    The volumes come out on the model grid, centre-cropped but not padded: at 128³ the padded model input
    of a pair is 33 MB, mostly zeros, and it was written, handed to the main process through shared memory
    and copied to the GPU. :func:`collate_pairs` pads and stacks them where the batch is made (on the
    device), with the same slices as ``PadStackd``: the same values.

    Raises:
        OncoNetError: the transform chain no longer ends with ``PadStackd``.
    """
    *steps, last = volume_transforms(settings).transforms
    if not isinstance(last, PadStackd):
        raise OncoNetError(
            f"onconet.data.transforms.in_memory_transforms ends with {type(last).__name__}, not PadStackd; "
            "onconet infer pads and stacks the volumes itself and needs the chain without it"
        )
    return Compose(steps), last.spatial_size


class DicomPairDataset(Dataset):
    """Items: per exam the (SUV, CT) volumes on the model grid, unpadded (:func:`crop_transforms`), the
    grid size and a ``meta`` dict; or an ``error`` row list."""

    def __init__(
        self,
        jobs: Sequence[PairJob],
        cache_dir: str | os.PathLike | None,
        data_settings: dict[str, Any],
        suv_kind: str = "bw",
        figures: bool = False,
    ) -> None:
        self.jobs = list(jobs)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.suv_kind = suv_kind
        self.figures = figures
        self.transform, self.grid = crop_transforms(data_settings)

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
            outcome = process_study(study, self.cache_dir, self.suv_kind, keep_volumes=True)
            rows[exam] = outcome
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
        meta = {
            **ids,
            "site": job.site,
            "baseline_date": job.baseline.study_date,
            "followup_date": job.followup.study_date,
            "baseline_manufacturer": rows["baseline"].row.get("manufacturer", ""),
            "followup_manufacturer": rows["followup"].row.get("manufacturer", ""),
        }
        try:
            sample = {}
            for exam in ("baseline", "followup"):
                suv, ct, affine = self._volumes(rows[exam])
                sample[f"{exam}_suv"] = nifti_equivalent(suv, affine)
                sample[f"{exam}_ct"] = nifti_equivalent(ct, affine)
                if self.figures:  # a small 2D image: the main process draws it
                    meta[f"{exam}_view"] = mip_view(suv, affine)
            tensors = self.transform(sample)
        except Exception as err:  # an unreadable cache file must not stop the batch either
            detail = f"{type(err).__name__}: {err}"
            where = str(job.baseline.source_dir)
            return {"error": [error_row("pair", "transform failed", detail, where, **ids)]}
        volumes = {exam: tuple(plain_tensor(tensors[f"{exam}_{c}"]) for c in CHANNELS) for exam in EXAMS}
        return {**volumes, "grid": self.grid, "meta": meta}

    def _volumes(self, outcome: StudyOutcome) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(SUV, CT, affine) of a converted study: from memory, or read from the cache."""
        if outcome.volumes is not None:
            return outcome.volumes.suv, outcome.volumes.ct, outcome.volumes.affine
        assert self.cache_dir is not None  # a study comes from the cache only when there is one
        suv, affine = read_nifti(self.cache_dir / outcome.row["pet_path"])
        ct, _ = read_nifti(self.cache_dir / outcome.row["ct_path"])
        return suv, ct, affine


def pad_stack(items: Sequence[dict[str, Any]], exam: str, device: torch.device | None = None) -> torch.Tensor:
    """One exam of ``items`` as a (B, C, X, Y, Z) batch: each volume centre-padded (or cropped) into a
    zero tensor made on ``device``, as :class:`~onconet.data.transforms.PadStackd` + stacking do."""
    grid = tuple(items[0]["grid"])
    channels = sum(volume.shape[0] for volume in items[0][exam])
    batch = torch.zeros((len(items), channels, *grid), dtype=torch.float32, device=device)
    for index, item in enumerate(items):
        # from page-locked memory (infer on CUDA) the copy is queued, ordered before the model
        pad_into(batch[index], item[exam], non_blocking=True)
    return batch


def collate_pairs(items: list[dict[str, Any]], device: torch.device | None = None) -> dict[str, Any]:
    """Pad and stack the good items into a batch on ``device`` (``baseline``, ``followup``, identifiers,
    ``meta``); keep ``errors``.

    Example:
        >>> good = {"baseline": (torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)),
        ...         "followup": (torch.ones(1, 4, 4, 4), torch.ones(1, 4, 4, 4)), "grid": (4, 4, 4),
        ...         "meta": {"patient_id": "P1", "site": "s", "baseline_study_uid": "1",
        ...                  "followup_study_uid": "2"}}
        >>> batch = collate_pairs([good, {"error": [{"stage": "pair", "reason": "x"}]}])
        >>> batch["baseline"].shape, batch["baseline"].sum().item(), batch["patient_id"], len(batch["errors"])
        (torch.Size([1, 2, 4, 4, 4]), 8.0, ['P1'], 1)
    """
    good = [item for item in items if "error" not in item]
    batch: dict[str, Any] = {
        "errors": [row for item in items if "error" in item for row in item["error"]],
        "meta": [item["meta"] for item in good],
        "size": len(items),
    }
    if good:
        for exam in EXAMS:
            batch[exam] = pad_stack(good, exam, device)
        for key in ID_KEYS:
            batch[key] = [item["meta"][key] for item in good]
    return batch
