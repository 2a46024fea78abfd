"""Imaging sites of the synthetic cohort: scanner vendor conventions, grids, resolution and noise.

A site is one scanner with one protocol. Sites differ the way real hospitals do: the header convention
for PET values (Siemens-like BQML, Philips-like CNTS with private SUV factors, GE-like BQML with a
series time after the acquisition), the voxel size, the resolution (PSF) and the noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from onconet.errors import ConfigError

Convention = Literal["siemens", "philips", "ge"]


@dataclass(frozen=True)
class GridSpec:
    """An axial image grid: in-plane pixels (square), pixel size and slice spacing in mm."""

    matrix: int
    pixel_mm: float
    slice_mm: float


@dataclass(frozen=True)
class SiteProfile:
    """One scanner site.

    Attributes:
        name: the InstitutionName written in the headers ("internal", "external", ...).
        convention: how the PET values are stored (see module docstring).
        manufacturer, model: Manufacturer / ManufacturerModelName.
        pet, ct: grids per cohort size ("small" / "full").
        psf_fwhm_mm: scanner resolution (Gaussian PSF full width at half maximum).
        noise_level: PET noise standard deviation in SUV at SUV 1 (grows with the square root of uptake).
        ct_noise_hu: CT noise standard deviation in HU.
        bed_seconds: duration of one bed position (ActualFrameDuration).
        bed_length_mm: axial length of one bed position.
        reconstruction: ReconstructionMethod text.
    """

    name: str
    convention: Convention
    manufacturer: str
    model: str
    pet: dict[str, GridSpec]
    ct: dict[str, GridSpec]
    psf_fwhm_mm: float
    noise_level: float
    ct_noise_hu: float
    bed_seconds: int
    bed_length_mm: float
    reconstruction: str


#: Axial field of view (mm) covered by every exam: vertex to upper thighs of the tallest phantom.
FIELD_OF_VIEW_Z_MM = 960.0

SITES: dict[str, SiteProfile] = {
    "internal": SiteProfile(
        name="internal",
        convention="siemens",
        manufacturer="SIEMENS",
        model="Biograph Vision 600",
        pet={"small": GridSpec(64, 6.0, 7.0), "full": GridSpec(128, 4.0, 4.0)},
        ct={"small": GridSpec(128, 3.0, 7.0), "full": GridSpec(256, 2.0, 3.0)},
        psf_fwhm_mm=6.5,
        noise_level=0.08,
        ct_noise_hu=12.0,
        bed_seconds=150,
        bed_length_mm=220.0,
        reconstruction="PSF+TOF 4i5s",
    ),
    "external": SiteProfile(
        name="external",
        convention="philips",
        manufacturer="Philips Medical Systems",
        model="Ingenuity TF PET/CT",
        pet={"small": GridSpec(56, 7.0, 8.0), "full": GridSpec(144, 4.0, 4.0)},
        ct={"small": GridSpec(112, 3.5, 8.0), "full": GridSpec(256, 2.25, 4.0)},
        psf_fwhm_mm=9.0,
        noise_level=0.12,
        ct_noise_hu=18.0,
        bed_seconds=90,
        bed_length_mm=180.0,
        reconstruction="BLOB-OS-TF 3i33s",
    ),
    "community": SiteProfile(
        name="community",
        convention="ge",
        manufacturer="GE MEDICAL SYSTEMS",
        model="Discovery 690",
        pet={"small": GridSpec(64, 6.25, 6.5), "full": GridSpec(128, 5.47, 3.27)},
        ct={"small": GridSpec(128, 3.125, 6.5), "full": GridSpec(256, 2.73, 3.27)},
        psf_fwhm_mm=8.0,
        noise_level=0.10,
        ct_noise_hu=15.0,
        bed_seconds=120,
        bed_length_mm=157.0,
        reconstruction="VPFX 2i24s",
    ),
}

SIZES = ("small", "full")


def get_site(name: str) -> SiteProfile:
    """The site profile called ``name``; raises ConfigError naming the known sites otherwise."""
    try:
        return SITES[name]
    except KeyError:
        raise ConfigError(
            f"synthetic cohort: unknown site {name!r} (--sites); choose from {', '.join(SITES)}"
        ) from None


def check_size(size: str) -> str:
    """``size`` if it is a known cohort size; raises ConfigError otherwise."""
    if size not in SIZES:
        raise ConfigError(f"synthetic cohort: unknown size {size!r} (--size); choose small or full")
    return size
