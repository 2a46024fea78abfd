"""Axis-aligned image grids in DICOM patient coordinates (LPS, mm) and simple solid shapes on them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """An axial grid: array index (k, j, i) sits at LPS (x0 + i·dx, y0 + j·dy, z0 + k·dz).

    Example:
        >>> g = Grid.centred(shape=(3, 4, 4), spacing=(2.0, 1.0, 1.0), centre=(0.0, 0.0, 10.0))
        >>> g.origin
        (-1.5, -1.5, 8.0)
    """

    shape: tuple[int, int, int]  # (nz, ny, nx)
    spacing: tuple[float, float, float]  # (dz, dy, dx)
    origin: tuple[float, float, float]  # (x0, y0, z0) of voxel (0, 0, 0)

    @classmethod
    def centred(
        cls,
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        centre: tuple[float, float, float],
    ) -> Grid:
        """The grid of ``shape`` and ``spacing`` whose centre lies at LPS ``centre``."""
        nz, ny, nx = shape
        dz, dy, dx = spacing
        cx, cy, cz = centre
        origin = (cx - (nx - 1) * dx / 2, cy - (ny - 1) * dy / 2, cz - (nz - 1) * dz / 2)
        return cls(shape, spacing, tuple(round(v, 4) for v in origin))

    def axis(self, name: str) -> np.ndarray:
        """Voxel-centre coordinates (mm) along ``x``, ``y`` or ``z``."""
        index = {"x": (2, 0), "y": (1, 1), "z": (0, 2)}[name]
        n, d, o = self.shape[index[0]], self.spacing[index[0]], self.origin[index[1]]
        return o + d * np.arange(n)

    def index_range(self, name: str, low: float, high: float) -> slice:
        """The slice of voxel indices along an axis whose centres lie in [low, high] mm."""
        a = {"x": 2, "y": 1, "z": 0}[name]
        o = self.origin[{"x": 0, "y": 1, "z": 2}[name]]
        d, n = self.spacing[a], self.shape[a]
        start = max(0, math.ceil((low - o) / d))
        stop = min(n, math.floor((high - o) / d) + 1)
        return slice(start, max(start, stop))

    def nearest_index(self, point: tuple[float, float, float]) -> tuple[int, int, int]:
        """Index (k, j, i) of the voxel whose centre is nearest to LPS ``point``, clipped to the grid."""
        x, y, z = point
        i = round((x - self.origin[0]) / self.spacing[2])
        j = round((y - self.origin[1]) / self.spacing[1])
        k = round((z - self.origin[2]) / self.spacing[0])
        return (
            int(np.clip(k, 0, self.shape[0] - 1)),
            int(np.clip(j, 0, self.shape[1] - 1)),
            int(np.clip(i, 0, self.shape[2] - 1)),
        )

    def centre_of(self, index: tuple[int, int, int]) -> tuple[float, float, float]:
        """LPS coordinates (mm) of the centre of voxel ``index`` = (k, j, i)."""
        k, j, i = index
        return (
            self.origin[0] + i * self.spacing[2],
            self.origin[1] + j * self.spacing[1],
            self.origin[2] + k * self.spacing[0],
        )


@dataclass(frozen=True)
class Ellipsoid:
    """Solid ellipsoid with centre (x, y, z) and semi-axes (a, b, c) in mm."""

    centre: tuple[float, float, float]
    semi: tuple[float, float, float]

    def bounds(self) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        return tuple((c - s, c + s) for c, s in zip(self.centre, self.semi, strict=True))  # type: ignore[return-value]

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz), (a, b, c) = self.centre, self.semi
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0


@dataclass(frozen=True)
class Cylinder:
    """Solid elliptic cylinder along z: centre (x, y), semi-axes (a, b), from z_low to z_high (mm)."""

    centre: tuple[float, float]
    semi: tuple[float, float]
    z_range: tuple[float, float]

    def bounds(self) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        (cx, cy), (a, b) = self.centre, self.semi
        return ((cx - a, cx + a), (cy - b, cy + b), self.z_range)

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy), (a, b) = self.centre, self.semi
        inside_xy = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
        return inside_xy & (z >= self.z_range[0]) & (z <= self.z_range[1])


Shape = Ellipsoid | Cylinder


def paint(volume: np.ndarray, grid: Grid, shape: Shape, value: float, offset=(0.0, 0.0, 0.0)) -> None:
    """Set ``value`` in every voxel of ``volume`` whose centre lies in ``shape`` shifted by ``offset`` (mm).

    Only the shape's bounding box is evaluated, so painting many small shapes stays cheap.
    """
    (xl, xh), (yl, yh), (zl, zh) = shape.bounds()
    ox, oy, oz = offset
    sx = grid.index_range("x", xl + ox, xh + ox)
    sy = grid.index_range("y", yl + oy, yh + oy)
    sz = grid.index_range("z", zl + oz, zh + oz)
    if sx.start == sx.stop or sy.start == sy.stop or sz.start == sz.stop:
        return
    x = grid.axis("x")[sx][None, None, :] - ox
    y = grid.axis("y")[sy][None, :, None] - oy
    z = grid.axis("z")[sz][:, None, None] - oz
    block = volume[sz, sy, sx]
    block[shape.inside(x, y, z)] = value
