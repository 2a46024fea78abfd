"""Safe checkpoint loading for inference: ``weights_only=True``, a sha256 of the file, the data settings.

A checkpoint of ``onconet fit`` holds the model's hyper-parameters (``hyper_parameters``), its weights
(``state_dict``) and, because :class:`~onconet.data.datamodule.PairDataModule` saves its own, the data
settings the model was trained with (``datamodule_hyper_parameters``). Inference must transform its
volumes with exactly those settings, so they are read from the checkpoint, not from the command line.

Example:
    >>> sha256_of_file(__file__) == sha256_of_file(__file__)
    True
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from onconet.errors import ConfigError

log = logging.getLogger(__name__)

#: The data settings the deterministic transforms take (PairDataModule argument names).
DATA_SETTINGS: tuple[str, ...] = ("spacing", "spatial_size", "suv_scaling", "suv_max", "hu_range")


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A model ready for inference, what it was trained on, and the file's identity."""

    path: Path
    sha256: str
    module: Any  # onconet.models.module.ResponseModule (imported lazily: torch-heavy)
    data_settings: dict[str, Any]
    settings_from_checkpoint: bool


def sha256_of_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _defaults(callable_: Any) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(callable_).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def load_checkpoint(path: str | os.PathLike) -> LoadedCheckpoint:
    """Load an OncoNet checkpoint for inference (CPU tensors, eval mode).

    Raises:
        ConfigError: the file is missing, is not a checkpoint loadable with ``weights_only=True``, or holds
            another model (missing hyper-parameters, weights that do not fit ResponseModule).
    """
    from onconet.data.datamodule import PairDataModule
    from onconet.models.module import ResponseModule

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint (--ckpt); pass a .ckpt written by `onconet fit`")
    sha256 = sha256_of_file(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, zip errors, unsafe globals: all mean "not our checkpoint"
        raise ConfigError(
            f"{path}: cannot be loaded as a checkpoint with weights_only=True ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); pass a checkpoint written by `onconet fit`"
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"{path}: no 'state_dict'; this is not a Lightning checkpoint of OncoNet")
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    accepted = set(inspect.signature(ResponseModule.__init__).parameters) - {"self"}
    if "backbone" not in hparams:
        raise ConfigError(
            f"{path}: no model hyper-parameters (hyper_parameters.backbone); the checkpoint is from another "
            "model than OncoNet's ResponseModule"
        )
    unknown = sorted(set(hparams) - accepted - {"_instantiator", "_class_path"})
    if unknown:
        raise ConfigError(
            f"{path}: hyper-parameters {unknown} are not arguments of ResponseModule; the checkpoint is from "
            "another model or another OncoNet version"
        )
    try:
        module = ResponseModule(**{k: v for k, v in hparams.items() if k in accepted})
    except Exception as err:
        raise ConfigError(f"{path}: its hyper-parameters do not build a ResponseModule ({err})") from err
    try:
        module.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[:3]
        raise ConfigError(
            f"{path}: its weights do not fit the model its hyper-parameters describe ({' '.join(first)}); "
            "the checkpoint is from another model or OncoNet version"
        ) from err
    module.eval()

    data_hparams = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    defaults = _defaults(PairDataModule.__init__)
    from_checkpoint = all(name in data_hparams for name in DATA_SETTINGS)
    settings = {name: data_hparams.get(name, defaults[name]) for name in DATA_SETTINGS}
    if "spatial_size" not in data_hparams:
        settings["spatial_size"] = tuple(module.hparams.image_size)
    if not from_checkpoint:
        log.warning(
            "%s holds no data settings (datamodule_hyper_parameters); using PairDataModule defaults with "
            "spatial_size = the model's image_size: %s",
            path,
            settings,
        )
    if tuple(int(s) for s in settings["spatial_size"]) != tuple(int(s) for s in module.hparams.image_size):
        raise ConfigError(
            f"{path}: data spatial_size {tuple(settings['spatial_size'])} differs from the model's "
            f"image_size {tuple(module.hparams.image_size)}; the checkpoint is inconsistent"
        )
    return LoadedCheckpoint(path, sha256, module, settings, from_checkpoint)
