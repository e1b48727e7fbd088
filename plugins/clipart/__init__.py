"""ClipFaceShop's selective feature adaptor (method ``clipart``).

Spec: ``clipfaceshop.md``. The method lives in :mod:`cfs_plugins.clipart.method`; this module is
what the ``clipart`` entry point names, so its top level imports only ``cfs_core`` (no torch).
Helpers for model sets and demo packs: :func:`cfs_plugins.clipart.base.base_embedding_from_images`
(the base-clipart embedding of a clipart set) and :mod:`cfs_plugins.clipart.ranking` (the layer
ranking of a generator + CLIP pair).
"""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_methods(register: Register) -> None:
    from cfs_plugins.clipart.method import ClipFaceShop  # imports torch: only when the table is built

    register(ClipFaceShop)
