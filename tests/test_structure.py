"""The import graph: the model packages never depend on the application; the ground floor on nothing of ours."""
from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

OURS = ("fileio", "pipeline", "inversion", "draggan", "stylegan2")
ALLOWED = {  # package -> which of our packages it may import
    "fileio": set(),
    "stylegan2": {"fileio"},
    "draggan": {"fileio"},
    "inversion": {"fileio", "stylegan2"},
}


def _imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(OURS)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_lower_packages_do_not_import_upwards(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    for f in files:
        bad = _imports(f) - ALLOWED[package] - {package}
        assert not bad, f"{f.relative_to(REPO)} imports {sorted(bad)}"
