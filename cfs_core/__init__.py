"""cfs_core: the public library of cfs.

Plugin authors import from here. Importing this package is cheap (it does not import torch).

* :mod:`cfs_core.hookspecs`: the hooks a plugin implements (with :data:`hookimpl`);
* :mod:`cfs_core.methods`, :mod:`cfs_core.guidance`, :mod:`cfs_core.losses`,
  :mod:`cfs_core.metrics`, :mod:`cfs_core.sources`: the base classes plugins register;
* :mod:`cfs_core.testing`: the conformance kit a plugin's own tests inherit;
* :mod:`cfs_core.stylegan2`: the shared StyleGAN2 backend; :mod:`cfs_core.world`: the synthetic
  face world.
"""

from __future__ import annotations

from cfs_core.errors import CfsError, InputError, ModelLoadError, UnsafeCheckpointError
from cfs_core.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["CfsError", "InputError", "ModelLoadError", "UnsafeCheckpointError", "__version__", "hookimpl"]
