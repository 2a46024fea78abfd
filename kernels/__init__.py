"""Sequence-mixing ops for the 3D backbones: PyTorch references, Triton kernels, dispatchers.

This package imports nothing from onconet or labeling.
"""
