"""cfs_plugins: first-party plugins, written exactly as a third party would (public API only).

Each subpackage is registered through the ``cfs`` entry-point group in ``pyproject.toml``.
"""
