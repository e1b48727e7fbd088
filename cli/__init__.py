"""cfs_cli: the ``cfs`` command line (typer + rich). No editing logic lives here."""
