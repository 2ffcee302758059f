"""Released migrations as modules, for a later one that reuses their statements: a migration
never changes once released, so a later one that changes a function states what it replaces
by reading it from the file that created it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VERSIONS = Path(__file__).with_name("versions")


def released(filename: str) -> ModuleType:
    """The migration in `versions/<filename>`, loaded from its file (its number makes it no
    importable module name)."""
    path = VERSIONS / filename
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
