"""User-facing errors of cfs.

Every error a user can cause (a missing file, a corrupt checkpoint, a bad option) is raised as a
:class:`CfsError` subclass with a message that reads well on one line. The CLI prints such errors
as ``error: <message>`` and exits non-zero; any other exception is a bug and shows a traceback
only with ``--verbose``.
"""

from __future__ import annotations


class CfsError(Exception):
    """Base class of the errors a user can cause and fix; the message is one line."""


class InputError(CfsError):
    """A file, value or option given by the user is missing, unreadable or out of range."""


class ModelLoadError(CfsError):
    """A model file cannot be read, is not of a known layout, or does not match its architecture."""


class UnsafeCheckpointError(ModelLoadError):
    """A checkpoint holds pickled objects that cfs refuses to execute."""
