"""Batch inference over DICOM folders."""
