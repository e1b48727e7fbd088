"""cfs_registry: what exists and where it comes from (architecture configs, model sources).

Importing it does not import torch; building a model does.
"""
