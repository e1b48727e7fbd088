"""StyleCLIP global directions in StyleSpace (method ``global``).

Spec ``styleclip_stylegan2.md`` §7. The method module imports torch, so it is imported inside the
hook (``docs/plugins.md`` §2): this module's top level stays cheap.
"""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_methods(register: Register) -> None:
    from cfs_plugins.global_directions.method import GlobalDirections

    register(GlobalDirections)
