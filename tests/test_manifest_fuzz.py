"""A hand-edited session.json: random types in every field, 300 cases. Each one gives a warning and a recompute,
or a one-line error: never a traceback on the command line, never anything but an answer from the server."""
from __future__ import annotations

import copy
import json
import random
import shutil

import pytest

from tests.conftest import QUICK, run_main

DRAG = "201,139:199,133"


def _paths(node, prefix=()):
    """Every field of the manifest, as a path of keys (lists by index), the containers included."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _random_value(rng: random.Random):
    return rng.choice([
        lambda: rng.randint(-10 ** 6, 10 ** 6), lambda: 10 ** 30, lambda: -1, lambda: 0, lambda: rng.random() * 1e3,
        lambda: float("1e308") * 10, lambda: "abc", lambda: "", lambda: "²", lambda: None, lambda: True,
        lambda: [1, 2], lambda: [], lambda: {"a": 1}, lambda: {}, lambda: [[1, 2], [3]], lambda: "../../etc/passwd",
    ])()


def _set(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _answered(proc, case) -> None:
    assert "Traceback" not in proc.stderr, (case, proc.stderr[-2000:])
    if proc.returncode == 0:
        return
    assert proc.returncode == 2, (case, proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(("warning:", "note:"))]
    assert len(lines) == 1 and lines[0].startswith("dragedit: error:"), (case, proc.stderr)


@pytest.mark.slow
def test_session_json_fuzz(one_edit, tmp_path):
    from dragedit.common.errors import UserError
    from dragedit.pipeline.core.edit import EditJob, check_edit
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.core.settings import EditSettings
    from dragedit.pipeline.server.store import ApiError, SessionStore

    root, photo, original = one_edit
    work = tmp_path / "root"
    s = work / "s"
    shutil.copytree(original, s)
    pristine = json.loads((original / "session.json").read_text())
    paths = list(_paths(pristine))
    rng = random.Random(31)
    store = SessionStore(work)
    settings = EditSettings(device="cpu", offline=True)
    for case in range(300):
        doc = copy.deepcopy(pristine)
        path = rng.choice(paths)
        _set(doc, path, _random_value(rng))
        (s / "session.json").write_text(json.dumps(doc))
        what = (case, path)
        _answered(run_main("history", s, "--json"), what)
        try:  # the recipe's checks, as every door runs them
            check_edit(EditJob(s, requests=[edit_request(DRAG)], photo=photo), settings)
        except UserError:
            pass
        for view in (store.describe, store.history):  # the server's views: an answer or an ApiError
            try:
                view("s")
            except ApiError:
                pass
        if case % 15 == 0:  # the work itself, now and then: it recomputes what it cannot trust
            _answered(run_main("composite", s, "-o", tmp_path / "c.png"), what)
            _answered(run_main("edit", photo, "--drag", DRAG, "-o", tmp_path / "e.png", "--session", s, *QUICK),
                      what)
            shutil.rmtree(s)
            shutil.copytree(original, s)
