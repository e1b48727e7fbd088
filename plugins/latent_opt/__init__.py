"""StyleCLIP latent optimisation (methods ``latent-opt`` on W+ and ``latent-opt-s`` on StyleSpace).

Spec ``styleclip_stylegan2.md`` §5; see :mod:`cfs_plugins.latent_opt.method`. The top level
imports only ``cfs_core`` (no torch): the classes are imported inside the hook.
"""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_methods(register: Register) -> None:
    from cfs_plugins.latent_opt.method import METHODS

    for method in METHODS:
        register(method)
