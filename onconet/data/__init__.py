"""Data path: DICOM discovery and assembly, SUV, resampling, NIfTI cache, pairs, transforms."""
