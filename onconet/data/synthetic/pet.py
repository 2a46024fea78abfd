"""The PET image of one exam in SUVbw: physiological uptake, lesions, scanner blur and noise.

Truth is defined on the image that is written. The noise-free image is ``blur(background) + Σ aᵢ·uᵢ``
where ``uᵢ`` is lesion i's blurred partial-volume sphere; each amplitude aᵢ is solved in closed form so
the lesion's SUVmax (the maximum of the noise-free image over its measurement region) equals the planned
value exactly. Noise is then added everywhere, except that inside a lesion's region it is capped at the
lesion's SUVmax and is zero at the voxel holding it: the lesion SUVmax of the noisy image written to
DICOM is exactly the true SUVmax, up to int16 quantisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from onconet.data.synthetic.geometry import Grid

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: sub-voxel samples per axis for the lesions' partial-volume spheres
SUPERSAMPLE = 4


def blur(volume: np.ndarray, grid: Grid, fwhm_mm: float) -> np.ndarray:
    """Gaussian PSF of ``fwhm_mm`` applied to ``volume`` (float64)."""
    sigma = [fwhm_mm * FWHM_TO_SIGMA / d for d in grid.spacing]
    return gaussian_filter(volume.astype(np.float64), sigma=sigma, mode="nearest", truncate=4.0)


@dataclass
class LesionPatch:
    """A lesion's blurred unit-uptake sphere on a box of the grid, and its measurement region."""

    box: tuple[slice, slice, slice]
    unit: np.ndarray  # blurred partial-volume sphere of uptake 1 (same shape as the box)
    region: np.ndarray  # bool: voxels whose maximum is the lesion's SUVmax
    centre_index: tuple[int, int, int]  # in the grid
    local_centre: tuple[int, int, int]  # in the box


def region_radius_mm(diameter_mm: float, grid: Grid, fwhm_mm: float) -> float:
    """Radius of a lesion's measurement region: the sphere plus one PSF width or one voxel."""
    return diameter_mm / 2.0 + max(fwhm_mm, max(grid.spacing))


#: uptake at a lesion's rim relative to its centre (tumours are hottest in their viable core)
RIM_UPTAKE = 0.5


def lesion_patch(
    grid: Grid, centre_index: tuple[int, int, int], diameter_mm: float, fwhm_mm: float
) -> LesionPatch:
    """The blurred unit-uptake lesion of ``diameter_mm`` centred on the voxel ``centre_index``.

    Uptake falls from 1 at the centre to ``RIM_UPTAKE`` at the rim (parabolic), so after blurring the
    lesion has one strict maximum at its centre voxel.
    """
    radius = diameter_mm / 2.0
    sigma_mm = fwhm_mm * FWHM_TO_SIGMA
    reach_mm = max(region_radius_mm(diameter_mm, grid, fwhm_mm), radius + 4.0 * sigma_mm) + max(grid.spacing)
    box = []
    for axis, c in enumerate(centre_index):
        h = int(np.ceil(reach_mm / grid.spacing[axis]))
        box.append(slice(max(0, c - h), min(grid.shape[axis], c + h + 1)))
    offsets = [
        (np.arange(s.start, s.stop) - c) * d for s, c, d in zip(box, centre_index, grid.spacing, strict=True)
    ]
    # Partial volume by supersampling each voxel.
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    uptake = np.zeros(tuple(len(o) for o in offsets))
    for dz in sub * grid.spacing[0]:
        zz = (offsets[0] + dz)[:, None, None] ** 2
        for dy in sub * grid.spacing[1]:
            yy = (offsets[1] + dy)[None, :, None] ** 2
            for dx in sub * grid.spacing[2]:
                r2 = (zz + yy + (offsets[2] + dx)[None, None, :] ** 2) / radius**2
                uptake += np.where(r2 <= 1.0, 1.0 - (1.0 - RIM_UPTAKE) * r2, 0.0)
    uptake /= SUPERSAMPLE**3
    sigma = [sigma_mm / d for d in grid.spacing]
    unit = gaussian_filter(uptake, sigma=sigma, mode="constant", truncate=4.0)
    distance2 = (
        offsets[0][:, None, None] ** 2 + offsets[1][None, :, None] ** 2 + offsets[2][None, None, :] ** 2
    )
    region = distance2 <= region_radius_mm(diameter_mm, grid, fwhm_mm) ** 2
    local = tuple(c - s.start for c, s in zip(centre_index, box, strict=True))
    return LesionPatch(tuple(box), unit, region, centre_index, local)  # type: ignore[arg-type]


def solve_amplitude(background: np.ndarray, patch: LesionPatch, suvmax: float) -> float:
    """The uptake a at which the lesion's centre voxel (background + a·unit) equals ``suvmax``."""
    return (suvmax - float(background[patch.centre_index])) / float(patch.unit[patch.local_centre])


def feasible_floor(background: np.ndarray, patch: LesionPatch, margin: float = 0.3) -> float:
    """The lowest SUVmax a lesion can have here: above its background and hottest at its centre.

    The centre voxel c is the region's maximum when a·(u_c − u_v) ≥ b_v − b_c for every voxel v, i.e. for
    a ≥ max_v (b_v − b_c)/(u_c − u_v).
    """
    b = background[patch.box]
    u = patch.unit
    b_c, u_c = float(b[patch.local_centre]), float(u[patch.local_centre])
    others = patch.region.copy()
    others[patch.local_centre] = False
    gap = u_c - u[others]
    needed = np.max((b[others] - b_c) / np.maximum(gap, 1e-12), initial=0.0)
    centre_floor = b_c + 1.1 * max(needed, 0.0) * u_c + 0.05
    return float(max(b[patch.region].max() + margin, centre_floor))


def add_noise(
    noise_free: np.ndarray,
    rng: np.random.Generator,
    level: float,
    patches: list[LesionPatch],
    lesion_suvmax: list[float],
) -> np.ndarray:
    """Scanner noise: correlated Gaussian noise of SD ``level``·√SUV, kept off the lesions' maxima.

    Inside each lesion's region the noisy value is capped at the lesion's SUVmax, and its centre voxel,
    which holds that maximum, keeps its noise-free value: the lesion's SUVmax survives the noise.
    """
    white = rng.standard_normal(noise_free.shape)
    field = gaussian_filter(white, sigma=0.6, mode="wrap")
    field /= field.std()
    noisy = noise_free + level * np.sqrt(np.clip(noise_free, 0.0, None) + 0.05) * field
    np.clip(noisy, 0.0, None, out=noisy)
    for patch, suvmax in zip(patches, lesion_suvmax, strict=True):
        block = noisy[patch.box]
        block[patch.region] = np.minimum(block[patch.region], suvmax)
        block[patch.local_centre] = noise_free[patch.centre_index]
    return noisy


def region_mean(image: np.ndarray, grid: Grid, centre: tuple[float, float, float], radius_mm: float) -> float:
    """Mean of ``image`` over the voxels within ``radius_mm`` of LPS ``centre`` (at least the nearest one)."""
    values = region_values(image, grid, centre, radius_mm)
    return float(values.mean())


def region_values(
    image: np.ndarray, grid: Grid, centre: tuple[float, float, float], radius_mm: float
) -> np.ndarray:
    """Values of ``image`` within ``radius_mm`` of LPS ``centre`` (at least the nearest voxel)."""
    x, y, z = centre
    sz = grid.index_range("z", z - radius_mm, z + radius_mm)
    sy = grid.index_range("y", y - radius_mm, y + radius_mm)
    sx = grid.index_range("x", x - radius_mm, x + radius_mm)
    dz = (grid.axis("z")[sz] - z)[:, None, None]
    dy = (grid.axis("y")[sy] - y)[None, :, None]
    dx = (grid.axis("x")[sx] - x)[None, None, :]
    mask = dz**2 + dy**2 + dx**2 <= radius_mm**2
    values = image[sz, sy, sx][mask]
    if values.size == 0:
        values = image[grid.nearest_index(centre)][None]
    return values
