"""Synthetic FDG PET/CT cohort written as real DICOM, with radiology reports and truth tables.

Example:
    >>> from onconet.data.synthetic import generate_cohort  # doctest: +SKIP
    >>> paths = generate_cohort("cohort", patients=4, seed=0)  # doctest: +SKIP
    >>> paths.truth.name  # doctest: +SKIP
    'truth.csv'
"""

from onconet.data.synthetic.cohort import CohortPaths, generate_cohort

__all__ = ["CohortPaths", "generate_cohort"]
