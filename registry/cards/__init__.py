"""Data package: model cards (``<family>.<tag>.json``), read by :mod:`cfs_registry.zoo`. No code."""
