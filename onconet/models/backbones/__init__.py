"""3D backbones: BASED-3D, Monarch-3D and the baselines (DenseNet121-3D, ViT-SDPA), by name.

Example:
    >>> from onconet.models.backbones import create_backbone
    >>> create_backbone("based3d", image_size=16, dim=32, depth=1, heads=2).out_dim
    32
"""

from onconet.models.backbones.based3d import Based3d
from onconet.models.backbones.baselines import DenseNet3d, VitSdpa
from onconet.models.backbones.layers import TokenGrid
from onconet.models.backbones.monarch3d import Monarch3d
from onconet.models.backbones.registry import create_backbone, list_backbones, register_backbone

__all__ = [
    "Based3d",
    "DenseNet3d",
    "Monarch3d",
    "TokenGrid",
    "VitSdpa",
    "create_backbone",
    "list_backbones",
    "register_backbone",
]
