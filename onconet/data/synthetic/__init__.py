"""Synthetic FDG PET/CT cohort written as real DICOM."""
