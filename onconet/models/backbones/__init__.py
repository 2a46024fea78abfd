"""3D backbones: BASED-3D, Monarch-3D and the baselines."""
