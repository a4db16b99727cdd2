"""Every option a command offers acts. The settings options (compute, PTI, drag, paste) are checked by what they
do: each one, given, changes the `EditSettings` the command builds. The others by reading: the command's module
reads it, or calls the shared reader (options.py) that does. `serve --overwrite`-style leftovers fail here."""
from __future__ import annotations

import ast
import importlib
import inspect
import re

import pytest

from dragedit.pipeline.cli import options
from dragedit.pipeline.cli.commands import COMMANDS
from dragedit.pipeline.cli.main import build_parser

READERS = {"requests_from": ("requests_from",), "report": ("report",), "face": ("face",)}


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
    return found


def _sub(name: str):
    return next(a for a in build_parser()._actions if a.dest == "command").choices[name]


def _sample(action) -> list[str]:
    """A valid value for the option that is not its default."""
    if action.nargs == 0:
        return [action.option_strings[0]]
    if action.choices:
        return [action.option_strings[0], list(action.choices)[-1]]
    value = {"generator": "other.pt", "invert_resolution": "64", "precision": "bf16"}.get(action.dest, "5")
    return [action.option_strings[0], value]


def _settings_dests(name: str) -> set[str]:
    """The options of `name` that `settings_from` turns into settings (those of the shared groups)."""
    groups = {"compute", "inversion (PTI)", "drag", "paste"}
    return {a.dest for g in _sub(name)._action_groups if g.title in groups for a in g._group_actions}


def _dests(name: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[name]
    return {a.dest for a in sub._actions if a.dest not in ("help",) and a.option_strings}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_acts(name):
    source = inspect.getsource(importlib.import_module(f"dragedit.pipeline.cli.commands.{name}"))
    settings = _settings_dests(name) if "O.settings_from(" in source else set()
    acting = _reads(source) | _shared_reads(source) | settings  # settings: by what they do, below
    idle = _dests(name) - acting
    assert not idle, f"dragedit {name} offers options nothing reads: {sorted(idle)}"


@pytest.mark.parametrize("name", [n for n in COMMANDS if _settings_dests(n)])
def test_every_settings_option_changes_the_settings(name, monkeypatch):
    monkeypatch.delenv("DRAGEDIT_OFFLINE", raising=False)  # else --offline would change nothing in a test
    sub = _sub(name)
    dests = _settings_dests(name)
    needed = [a for a in sub._actions if a.required or (not a.option_strings and a.dest != "help")]
    base = [v for a in needed for v in (["x"] if not a.option_strings else [a.option_strings[0], "x"])]
    plain = options.settings_from(sub.parse_args(base))
    for action in (a for a in sub._actions if a.dest in dests):
        changed = options.settings_from(sub.parse_args(base + _sample(action)))
        assert changed != plain, f"dragedit {name} {action.option_strings[0]} changes no setting"


def test_serve_and_batch_offer_no_output_file_options():
    assert not {"overwrite", "json"} & _dests("serve")
    assert "overwrite" not in _dests("batch")


def test_seed_means_one_thing_per_command():
    assert "seed" in _dests("generate") and "pti_seed" not in _dests("generate")
    for name in ("edit", "drag", "batch", "serve", "invert"):
        assert "pti_seed" in _dests(name) and "seed" not in _dests(name), name
