"""Package attributes that load on first use (PEP 562), so importing a light module of a package that
also holds torch code starts no torch (`dragedit --help`, a config dataclass)."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_attributes(package: str, modules: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """(`__getattr__`, `__all__`) for `package`: `modules` maps a submodule (relative) to the names it defines,
    space-separated."""
    where = {name: module for module, names in modules.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(where)
