"""OncoNet: treatment response from paired FDG PET/CT exams, weakly supervised by radiology reports."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("onconet")
except PackageNotFoundError:  # running from a checkout without installation (e.g. the GPU machine)
    __version__ = "0.1.0"

__all__ = ["__version__"]
