"""Auxiliary networks of cfs (CLIP adapter, ArcFace IR-SE, e4e encoder, face parsers, mapper).

Each network loads its public checkpoint unchanged and implements one of the resource
protocols in :mod:`cfs_core.nets.protocols`, which losses, methods and metrics use by name.
Importing this package is cheap; each network module imports torch.
"""
