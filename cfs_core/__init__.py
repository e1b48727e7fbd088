"""cfs_core: the public library of cfs.

Plugin authors import from here. Importing this package is cheap (it does not import torch);
the heavy parts live in submodules: :mod:`cfs_core.stylegan2` (the shared StyleGAN2 backend),
:mod:`cfs_core.world` (the synthetic face world).
"""

from __future__ import annotations

from cfs_core.errors import CfsError, InputError, ModelLoadError, UnsafeCheckpointError

__version__ = "0.1.0"

__all__ = ["CfsError", "InputError", "ModelLoadError", "UnsafeCheckpointError", "__version__"]
