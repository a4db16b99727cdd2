"""Package attributes that load on first use (PEP 562), so importing a light module of a package that
also holds torch code starts no torch (`dragedit --help`, a config dataclass)."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_attributes(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `where` maps a name to the submodule (relative) that defines it."""

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
