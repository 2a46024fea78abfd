"""A timm-style registry of 3D backbones: ``@register_backbone(name)``, ``create_backbone(name, **kwargs)``.

A backbone maps a batch of 2-channel volumes (SUV, CT) to tokens on a 3D grid (see
:class:`onconet.models.backbones.layers.TokenGrid`).

Example:
    >>> from onconet.models.backbones import create_backbone, list_backbones
    >>> list_backbones()
    ['based3d', 'densenet121', 'monarch3d', 'vit_sdpa']
    >>> net = create_backbone("vit_sdpa", image_size=(16, 16, 16), dim=32, depth=1, heads=2)
    >>> net.out_dim
    32
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from onconet.errors import ConfigError

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_backbone(name: str) -> Callable[[Factory], Factory]:
    """Register a backbone class or factory function under ``name`` (a decorator)."""

    def decorator(factory: Factory) -> Factory:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ConfigError(f"backbone {name!r} is registered twice; pick another name for {factory!r}")
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_backbones() -> list[str]:
    """The registered backbone names, sorted."""
    return sorted(_REGISTRY)


def create_backbone(name: str, **kwargs: Any) -> nn.Module:
    """Build the backbone registered as ``name`` with ``kwargs``.

    Raises:
        ConfigError: unknown name, or a keyword the backbone does not take.
    """
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown backbone {name!r} (model.backbone); choose one of {', '.join(list_backbones())}"
        )
    factory = _REGISTRY[name]
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        raise ConfigError(
            f"backbone {name!r} does not take {', '.join(unknown)} (model.backbone_kwargs); "
            f"it takes {', '.join(p for p in accepted if p != 'self')}"
        )
    return factory(**kwargs)
