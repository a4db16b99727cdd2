"""The import graph: the model packages never depend on the application, the ground floor on nothing of ours,
the rooms of `pipeline/` only downwards, no circle anywhere, and the light entry points load no torch."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "src" / "dragedit"
OURS = ("common", "pipeline", "inversion", "draggan", "stylegan2")
ALLOWED = {  # package -> which of our packages it may import
    "common": set(),
    "stylegan2": {"common"},
    "draggan": {"common"},
    "inversion": {"common", "stylegan2"},
}
ROOMS = {  # room of pipeline/ -> the rooms it may import (common and the model packages are below them all)
    "imaging": set(),
    "core": {"imaging"},
    "batch": {"core", "imaging"},
    "server": {"core", "imaging"},
    "cli": {"core", "imaging", "batch", "server"},
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every dragedit module `path` imports (at the top or inside functions), as absolute names."""
    me = _module(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import module`
    return {m for m in found if m.startswith("dragedit.")}


def _files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _ours(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in OURS else None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_lower_packages_do_not_import_upwards(package):
    files = sorted((PACKAGE / package).rglob("*.py"))
    assert files
    for f in files:
        bad = {_ours(m) for m in _imports(f)} - ALLOWED[package] - {package, None}
        assert not bad, f"{f.relative_to(REPO)} imports {sorted(bad)}"


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "pipeline" and parts[2] in ROOMS else None


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_rooms_import_only_downwards(room):
    files = sorted((PACKAGE / "pipeline" / room).rglob("*.py"))
    assert files
    for f in files:
        imported = _imports(f)
        rooms = {_room(m) for m in imported} - {None, room}
        assert rooms <= ROOMS[room], f"{f.relative_to(REPO)} imports rooms {sorted(rooms - ROOMS[room])}"
        assert not any(m.startswith("dragedit.pipeline.api") for m in imported), f"{f} imports the facade"
        assert "dragedit" not in imported, f"{f} imports the top-level facade"


def test_imaging_is_pure():
    """Image code: no torch, no sessions."""
    for f in sorted((PACKAGE / "pipeline" / "imaging").rglob("*.py")):
        tree = ast.parse(f.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "torch" not in names, f


def test_no_import_circle_anywhere():
    graph: dict[str, set[str]] = {}
    modules = {_module(f) for f in _files()}
    for f in _files():
        graph[_module(f)] = {m for m in _imports(f) if m in modules and m != _module(f)}
    # a package's __init__ importing its own submodules is how packages work, not a circle
    for mod, deps in graph.items():
        graph[mod] = {d for d in deps if not mod.startswith(d + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("code", [
    "from dragedit.pipeline.cli.main import build_parser; build_parser().format_help()",
    "import dragedit.pipeline.batch.run",
    "import dragedit.pipeline.core.settings",
    "import dragedit",
])
def test_light_entry_points_load_no_torch(code):
    proc = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nprint('torch' in sys.modules)"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_dragedit_help_loads_no_torch():
    code = ("import sys, runpy\nsys.argv = ['dragedit', '--help']\ntry:\n    runpy.run_module('dragedit', "
            "run_name='__main__')\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "usage: dragedit" in proc.stdout
    assert proc.stderr.strip().endswith("False"), proc.stderr


def test_folders_are_the_import_names():
    """The src layout: every package folder is found by `packages.find` and nothing of ours sits at the root, so
    no module can be imported under a second name from a checkout."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert cfg["packages"]["find"]["where"] == ["src"] and "package-dir" not in cfg
    assert {p.name for p in (REPO / "src").iterdir() if not p.name.endswith(".egg-info")} == {"dragedit"}
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(OURS)
    assert not any((REPO / name).exists() for name in (*OURS, "dragedit"))


def test_a_checkout_imports_without_install():
    """`PYTHONPATH=src` is enough (`-S`: no site-packages, so no installed copy), and one class has one name: no
    `draggan.config` beside `dragedit.draggan.config`."""
    code = ("import dragedit.draggan.config as c, dragedit.common.errors, importlib.util as u\n"
            "print(c.__file__)\nprint(u.find_spec('draggan') is None and u.find_spec('common') is None)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    path, alone = proc.stdout.split()
    assert Path(path) == PACKAGE / "draggan" / "config.py" and alone == "True"


def test_layout_names_the_files_inversion_writes():
    from dragedit.inversion import artifacts
    from dragedit.pipeline.core import layout as L

    assert L.INVERT_FILES == {"pivot": artifacts.PIVOT, "delta": artifacts.DELTA, "recon": artifacts.RECON,
                              "metrics": artifacts.METRICS}


def test_scripts_and_tests_do_not_import_each_other():
    """Scripts are command lines over the package; tests test the package (and run scripts, never import them)."""
    scripts = {p.stem for p in (REPO / "scripts").glob("*.py")}

    def top_imports(path):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
        return found

    for f in sorted((REPO / "scripts").glob("*.py")):
        assert "tests" not in top_imports(f), f"{f.relative_to(REPO)} imports the tests"
    for f in sorted((REPO / "tests").rglob("*.py")):
        bad = top_imports(f) & (scripts | {"scripts"})
        hack = "sys.path" + ".insert"  # spelled apart, so that this file does not find itself
        assert not bad and hack not in f.read_text(), f"{f.relative_to(REPO)} imports scripts {bad}"
