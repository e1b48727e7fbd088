"""StyleCLIP latent mapper (method ``mapper``).

Spec ``styleclip_stylegan2.md`` §6. Cheap at import time (no torch): the method class is imported
inside the hook.
"""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_methods(register: Register) -> None:
    from cfs_plugins.mapper.method import StyleClipMapper

    register(StyleClipMapper)
