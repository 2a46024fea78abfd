"""One error hierarchy for OncoNet.

Every message names the file or series, the tag or field at fault, and what to do about it, so a
batch summary tells a user exactly which input to fix.
"""

from __future__ import annotations


class OncoNetError(Exception):
    """Base class of every error OncoNet raises on purpose."""


class DicomError(OncoNetError):
    """A DICOM file or series cannot be used (unreadable, inconsistent, unsupported)."""


class SeriesGeometryError(DicomError):
    """A series' slices do not form one regular volume (spacing, orientation, missing slices, tilt)."""


class SuvError(DicomError):
    """PET values cannot be converted to SUV (units, decay correction, weight, dose, times)."""


class ReportError(OncoNetError):
    """A radiology report file cannot be read."""


class ConfigError(OncoNetError):
    """A configuration, checkpoint or command-line argument cannot be used."""
