"""Helpers of the plugin tests: fake installed distributions and plugin module sources.

``FakeSite.install`` writes ``<dist>-0.1.dist-info/{METADATA,entry_points.txt}`` and the plugin
module files into one folder put first on ``sys.path``, so ``importlib.metadata`` finds the
``cfs`` entry points exactly as if ``pip install`` had run. Module names get a per-test suffix
(and are dropped from ``sys.modules`` afterwards) so tests never see each other's modules.
"""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
from pathlib import Path

import pytest

_counter = itertools.count()

METHOD_TEMPLATE = '''
from cfs_core import hookimpl
from cfs_core.methods import EditingMethod, MethodOptions


class Options(MethodOptions):
    steps: int = 3


class Method(EditingMethod):
    method_id = {method_id!r}
    description = "a test method"
    accepts = frozenset({{"text"}})
    latent_space = "w+"
    Options = Options

    def edit(self, ctx, request):
        raise NotImplementedError


@hookimpl
def register_methods(register):
    register(Method{replace})
'''


def method_module(method_id: str, replace: bool = False) -> str:
    """Source of a plugin module registering one valid method ``method_id``."""
    return METHOD_TEMPLATE.format(method_id=method_id, replace=", replace=True" if replace else "")


class FakeSite:
    """A folder on ``sys.path`` holding fake installed distributions with ``cfs`` entry points."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.modules: list[str] = []
        self.suffix = f"_t{next(_counter)}"
        monkeypatch.syspath_prepend(str(root))

    def module_name(self, base: str) -> str:
        """A module name unique to this test (``base`` plus a suffix)."""
        return f"{base}{self.suffix}"

    def install(self, dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None) -> None:
        """Fake ``pip install`` of ``dist``: entry points ``name → module`` and module sources.

        Module names in ``entry_points`` and ``modules`` are given without the per-test suffix;
        an entry-point value naming no module in ``modules`` is written as is (a missing module).
        """
        modules = modules or {}
        info = self.root / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = ["[cfs]"] + [
            f"{name} = {self.module_name(value) if value in modules else value}" for name, value in entry_points.items()
        ]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for base, source in modules.items():
            name = self.module_name(base)
            (self.root / f"{name}.py").write_text(textwrap.dedent(source))
            self.modules.append(name)
        importlib.invalidate_caches()

    def cleanup(self) -> None:
        for name in self.modules:
            sys.modules.pop(name, None)
        importlib.invalidate_caches()
