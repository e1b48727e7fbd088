"""Packaging rules: distinctive import names, every package folder listed, a cheap ``cfs --help``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent
FOLDER_TO_PACKAGE = {"cfs_core": "cfs_core", "registry": "cfs_registry", "plugins": "cfs_plugins", "cli": "cfs_cli"}


def test_every_package_folder_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert config["package-dir"] == {v: k for k, v in FOLDER_TO_PACKAGE.items()}
    found = set()
    for folder, package in FOLDER_TO_PACKAGE.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]))
    # Data-only folders (architecture configs) are listed as packages so their files ship.
    found |= {f"cfs_registry.configs.{d.name}" for d in (ROOT / "registry" / "configs").iterdir() if d.is_dir()}
    assert found == listed
    assert not listed & {"cli", "plugins", "registry"}


def test_help_does_not_import_torch() -> None:
    code = "import sys; from cfs_cli.main import make_app; make_app(); print('torch' in sys.modules or 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
