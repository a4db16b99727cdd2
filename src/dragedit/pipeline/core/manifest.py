"""A session's manifest: per stage, its inputs, parameters, software version and output hashes.

A stage is reused only when its key (a hash of inputs + parameters) matches and every output still
has the hash recorded when it was written; an entry is written only after all its outputs are
complete, so an interrupted stage is never trusted.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

from dragedit.common.environment import log
from dragedit.common.hashing import file_sha256

from dragedit.common import atomic

from dragedit import __version__
from .errors import SessionBusy

MANIFEST_NAME = "session.json"


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


_ENTRY_FIELDS = {"key": str, "inputs": dict, "params": dict, "outputs": dict}
_INT, _STR, _LIST, _OPT_STR = "int", "str", "list", "str|None"
# what the code reads from each kind of stage, and its type (a field may be missing; if present, it has this type)
_STAGE_FIELDS: dict[str, dict[str, str]] = {
    "align": {"inputs.photo": _STR, "params.size": _INT, "params.face": _INT, "params.face_at": _LIST,
              "photo_path": _STR},
    "invert": {"generator_path": _STR},
    "edits": {"inputs.parent": _STR, "params.drags_photo": _LIST, "request": _STR, "request_index": _INT},
    "composite": {"changed_pixels": _INT, "bbox": "list|None"},
}
_TOP_FIELDS = {"threads": _INT, "identity": "dict|None"}
_IDENTITY_FIELDS = {"photo": _STR, "photo_path": _OPT_STR, "face": "int|None", "face_spec": "dict"}
_REQUIRED = {"align": ("inputs.photo", "params.size"), "edits": ("inputs.parent", "params.drags_photo")}


def _is(value: Any, kinds: str) -> bool:
    types = {"int": int, "str": str, "list": list, "dict": dict, "None": type(None)}
    return any(isinstance(value, types[k]) and not (k == "int" and isinstance(value, bool)) for k in kinds.split("|"))


def _get(entry: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = entry
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def schema_problem(data: Any) -> str | None:
    """What is wrong with a manifest's shape, or None: a manifest that parses but is not one (a hand-edited
    field of the wrong type included) is not trusted, so every stage is recomputed rather than misread."""
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        return "not a dragedit session manifest"
    for field, kinds in _TOP_FIELDS.items():
        if field in data and not _is(data[field], kinds):
            return f"malformed ({field!r} is not {kinds.replace('|None', '')})"
    if isinstance(data.get("identity"), dict):
        for field, kinds in _IDENTITY_FIELDS.items():
            if not _is(data["identity"].get(field), kinds):
                return f"malformed (identity has no valid {field!r})"
    if isinstance(data.get("threads"), int) and data["threads"] < 1:
        return "malformed ('threads' is below 1)"
    for name, entry in data["stages"].items():
        if not isinstance(entry, dict):
            return f"malformed (stage {name!r} is not an object)"
        for field, kind in _ENTRY_FIELDS.items():
            if not isinstance(entry.get(field), kind):
                return f"malformed (stage {name!r} has no valid {field!r})"
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in entry["outputs"].items()):
            return f"malformed (stage {name!r} has invalid output hashes)"
        kind = str(name).split("/")[0]
        for field, kinds in _STAGE_FIELDS.get(kind, {}).items():
            present, value = _get(entry, field)
            if (present and not _is(value, kinds)) or (not present and field in _REQUIRED.get(kind, ())):
                return f"malformed (stage {name!r} has no valid {field!r})"
    return None


_WARNED: set[tuple[str, int, int]] = set()  # manifests (path and version) already warned about, per command


def new_command() -> None:
    """A new command starts (the CLI's `main`, run again in one process by tests or tools): its warnings
    are said again."""
    _WARNED.clear()


class Manifest:
    def __init__(self, folder: Path, warn: Callable[[str], None] | None = None):
        self.folder = folder
        self.path = folder / MANIFEST_NAME
        self.warn = warn or log.warning
        self.data: dict[str, Any] = {"format": "dragedit-session", "version": 1, "stages": {}}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                problem = schema_problem(data)
            except (OSError, ValueError) as exc:
                problem = f"unreadable ({exc.__class__.__name__})"
            if problem:
                self._warn_once(f"warning: {self.path} is {problem}; every stage will be recomputed")
            else:
                self.data = data
        self.report: dict[str, str] = {}

    def _warn_once(self, message: str) -> None:
        """A command reads a manifest more than once (its checks, then its work): one warning per version of
        the file and process."""
        try:
            st = self.path.stat()
            version = (str(self.path.resolve()), st.st_mtime_ns, st.st_size)
        except OSError:
            version = (str(self.path), 0, 0)
        if version not in _WARNED:
            _WARNED.add(version)
            self.warn(message)

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.data["stages"]

    def lookup(self, name: str, key: str) -> dict[str, Any] | None:
        """The stage's entry if its key matches and its outputs are intact; warns on tampering."""
        entry = self.stages.get(name)
        if not entry or entry.get("key") != key:
            return None
        for rel, digest in entry.get("outputs", {}).items():
            p = self.folder / rel
            if not p.is_file():
                self.warn(f"warning: {p} is missing; recomputing stage {name}")
                return None
            if file_sha256(p) != digest:
                self.warn(f"warning: {p} does not match the hash recorded when it was written "
                          f"(corrupt or edited); recomputing stage {name}")
                return None
        return entry

    def commit(self, name: str, key: str, inputs: dict[str, Any], params: dict[str, Any], outputs: list[Path],
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
        entry = {"key": key, "inputs": inputs, "params": params, "software": f"dragedit {__version__}",
                 "outputs": {str(p.relative_to(self.folder)): file_sha256(p) for p in outputs},
                 "completed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra or {})}
        self.stages[name] = entry
        self.save()
        return entry

    def save(self) -> None:
        atomic.write_json(self.path, self.data)

    def mark(self, name: str, how: str) -> None:
        self.report[name] = how


class SessionLock:
    """An exclusive flock on SESSION/.lock; the kernel drops it when the holder dies, even by SIGKILL."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self.fh = None

    def __enter__(self) -> "SessionLock":
        import fcntl
        import os

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "?"
            self.fh.close()
            raise SessionBusy(f"session {self.path.parent.name} is busy: another dragedit run (pid {holder}) is using it; "
                            "wait for it to finish") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc: Any) -> None:
        import fcntl

        if self.fh:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()
