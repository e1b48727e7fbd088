"""Auxiliary networks of cfs. Each loads its public checkpoint unchanged (parity-tested).

* :mod:`cfs_core.clip` — CLIP over open_clip (resource ``"clip"``);
* :mod:`cfs_core.nets.irse`, :mod:`cfs_core.nets.identity` — ArcFace IR-SE (``"identity"``);
* :mod:`cfs_core.nets.e4e` — the e4e encoder (``"encoder"``);
* :mod:`cfs_core.nets.unet`, :mod:`cfs_core.nets.bisenet`, :mod:`cfs_core.nets.parsing` — face
  parsers (``"parser"``);
* :mod:`cfs_core.nets.mapper` — StyleCLIP's latent mapper;
* :mod:`cfs_core.nets.protocols` — what each resource provides.

Importing this package is cheap; each network module imports torch.
"""
