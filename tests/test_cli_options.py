"""Every option a command offers acts: its module reads it, or it belongs to a shared group (options.py) whose
reader the command calls. `serve --overwrite` or `batch --json`-style leftovers fail here."""
from __future__ import annotations

import ast
import importlib
import inspect
import re

import pytest

from dragedit.pipeline.cli import options
from dragedit.pipeline.cli.commands import COMMANDS
from dragedit.pipeline.cli.main import build_parser

READERS = {"settings_from": ("settings_from", "_pti"), "requests_from": ("requests_from",), "report": ("report",),
           "face": ("face",)}


def _reads(source: str) -> set[str]:
    return set(re.findall(r"args\.(\w+)", source)) | set(re.findall(r"getattr\(args, \"(\w+)\"", source))


def _shared_reads(module_source: str) -> set[str]:
    tree = ast.parse(inspect.getsource(options))
    bodies = {n.name: ast.get_source_segment(inspect.getsource(options), n) for n in tree.body
              if isinstance(n, ast.FunctionDef)}
    found: set[str] = set()
    for call, functions in READERS.items():
        if f"O.{call}(" in module_source:
            for f in functions:
                found |= _reads(bodies[f])
            if call == "settings_from":
                found |= set(options.PTI_FLAGS)
    return found


def _dests(name: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[name]
    return {a.dest for a in sub._actions if a.dest not in ("help",) and a.option_strings}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_acts(name):
    source = inspect.getsource(importlib.import_module(f"dragedit.pipeline.cli.commands.{name}"))
    acting = _reads(source) | _shared_reads(source)
    idle = _dests(name) - acting
    assert not idle, f"dragedit {name} offers options nothing reads: {sorted(idle)}"


def test_serve_and_batch_offer_no_output_file_options():
    assert not {"overwrite", "json"} & _dests("serve")
    assert "overwrite" not in _dests("batch")


def test_seed_means_one_thing_per_command():
    assert "seed" in _dests("generate") and "pti_seed" not in _dests("generate")
    for name in ("edit", "drag", "batch", "serve", "invert"):
        assert "pti_seed" in _dests(name) and "seed" not in _dests(name), name
