"""`--json` on every subcommand: one JSON document on stdout, for success and for error (argparse's errors
too), parsed here."""
from __future__ import annotations

import json

import pytest

from dragedit.pipeline.cli.commands import COMMANDS
from tests.conftest import QUICK, run_main

DRAG = "201,139:199,133"


@pytest.fixture(scope="module")
def made(one_edit):
    root, photo, s = one_edit
    (root / "e.json").write_text(json.dumps({"edits": [{"drags": ["@mouth_left:-2%,-4%"]}]}))
    return root, photo, s


def _success(name: str, root, photo, s) -> list:
    return {
        "edit": ["edit", photo, "--drag", DRAG, "-o", root / "out.png", "--session", s, *QUICK],
        "drag": ["drag", s, "--drag", "246,141:249,135", "--steps", "2"],
        "composite": ["composite", s, "--edit", "1", "-o", root / "c.png"],
        "history": ["history", s],
        "preview": ["preview", photo, "-o", root / "preview.png"],
        "presets": ["presets"],
        "batch": ["batch", photo, "--edits", root / "e.json", "-o", root / "batch", *QUICK],
        "align": ["align", photo, "-o", root / "aligned", "--size", "128"],
        "invert": ["invert", "--session", s, *QUICK[:4], "--offline"],
        "generate": ["generate", "-o", root / "g.png"],
        "models": ["models", "list"],
    }.get(name)


def _error(name: str, root) -> list:
    return {"edit": ["edit", root / "missing.png", "--drag", DRAG, "-o", root / "x.png"],
            "drag": ["drag", root / "nowhere", "--drag", DRAG],
            "composite": ["composite", root / "nowhere", "-o", root / "x.png"],
            "history": ["history", root / "nowhere"],
            "preview": ["preview", root / "missing.png", "-o", root / "x.png"],
            "presets": ["presets", "--photo", root / "missing.png"],
            "batch": ["batch", root / "missing.png", "--edits", root / "e.json", "-o", root / "b2"],
            "serve": ["serve", "--port", "99999"],
            "align": ["align", root / "missing.png", "-o", root / "a2"],
            "invert": ["invert", "--session", root / "nowhere"],
            "generate": ["generate", "-o", root / "g.png", "--psi", "nan"],
            "models": ["models", "path", "no-such-model"]}[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMANDS)
def test_json_on_every_subcommand(made, name):
    root, photo, s = made
    argv = _success(name, root, photo, s)
    if argv is not None:  # serve runs until stopped: its success is the server tests'
        proc = run_main(*argv, "--json")
        assert proc.returncode in (0, 1), proc.stderr  # batch: 1 when a photo failed, still one document
        json.loads(proc.stdout)
    proc = run_main(*_error(name, root), "--json")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    doc = json.loads(proc.stdout)
    assert set(doc) == {"error"} and doc["error"]["message"], doc
    assert "Traceback" not in proc.stderr


def test_an_argparse_error_with_json_is_one_document(tmp_path):
    proc = run_main("edit", "--json", "--no-such-option")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["kind"] == "UsageError"
