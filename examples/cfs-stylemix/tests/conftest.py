"""Make ``cfs_stylemix`` importable when the example is not installed.

Installed (``pip install -e examples/cfs-stylemix``), the package is found normally. Not
installed — the main cfs test run collects ``examples/`` too — this puts the example's folder
on ``sys.path`` so the tests below import the package from the source tree.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

EXAMPLE_ROOT = Path(__file__).resolve().parent.parent

if importlib.util.find_spec("cfs_stylemix") is None:
    sys.path.insert(0, str(EXAMPLE_ROOT))
