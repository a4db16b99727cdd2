"""A session: one photo and one face for life, in a folder holding every stage's artifacts and a manifest.

`Session` is the store: the folder, its lock, the manifest cache (`cached`), what the session is of
(its `identity`: the photo's content hash and the face) and the thread count its torch stages were
computed with. The stages that fill it are in `stages/`; the recipe that runs them in order is
`edit.py`. The folder's layout is `layout.py`'s. Entering the context manager takes the lock.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from dragedit.common import atomic
from dragedit.common.environment import log
from dragedit.common.hashing import file_sha256
from dragedit.pipeline.imaging.photo import Photo, load_photo

from . import layout as L
from .errors import NotASession, RequestError, SessionMismatch
from .manifest import MANIFEST_NAME, Manifest, SessionLock, stable_hash
from .records import HistoryEntry

STAGE_FORMAT = 2  # bump when a stage's outputs change meaning; keys include it
SESSION_MARKERS = {".lock", *L.FOLDERS}


def is_session_folder(folder: Path) -> bool:
    """A folder dragedit made: its manifest says so, or it has a session's layout (a broken manifest is
    recomputed, but a folder some other program owns is never written into)."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return False
    if names & SESSION_MARKERS:
        return True
    return has_session_manifest(Path(folder))


def has_session_manifest(folder: Path) -> bool:
    """The folder holds a manifest that says it is a dragedit session (the strict test, for folders that
    merely contain an `edits` folder or a lock file)."""
    try:
        return json.loads((folder / MANIFEST_NAME).read_text()).get("format") == "dragedit-session"
    except (OSError, ValueError, AttributeError):
        return False


class Session:
    """A session folder. `read_only=True` only reads (no lock, nothing created): history, planning, the server's
    views of a busy session."""

    def __init__(self, folder: str | os.PathLike, *, read_only: bool = False,
                 warn: Callable[[str], None] | None = None):
        self.folder = Path(folder)
        self.read_only = read_only
        self.warn = warn or log.warning
        self.manifest: Manifest | None = None
        self.models: dict[Any, Any] = {}  # what the stages loaded once for this session object
        self._lock = SessionLock(self.folder)
        self._photo: Photo | None = None
        self._created = False

    def __enter__(self) -> "Session":
        if self.folder.exists() and not self.folder.is_dir():
            raise NotASession(f"session folder {self.folder} is a file; give a folder path for the session")
        if self.folder.is_dir() and os.listdir(self.folder) and not is_session_folder(self.folder):
            raise NotASession(f"{self.folder} is not empty and is not a dragedit session; give a new or empty "
                              "folder for the session")
        if self.read_only:
            self.manifest = Manifest(self.folder, self.warn)  # empty for a session not made yet
            return self
        self._created = not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._created = False
            raise atomic.write_error(self.folder, exc) from None
        try:
            self._lock.__enter__()
        except Exception:
            if self._created:
                shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self.manifest = Manifest(self.folder, self.warn)
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if self.read_only:
            return
        self._lock.__exit__(exc_type, *rest)
        if exc_type is not None and self._created and not self.manifest.stages:
            shutil.rmtree(self.folder, ignore_errors=True)  # a first run that failed leaves no empty session

    # ---- what the session is of ------------------------------------------------------------------
    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.manifest.stages

    @property
    def report(self) -> dict[str, str]:
        return self.manifest.report

    def path(self, *parts: str) -> Path:
        return self.folder.joinpath(*parts)

    @property
    def identity(self) -> dict[str, Any] | None:
        """{"photo": sha256, "photo_path": ..., "face": index, "face_spec": {...}}; sessions made before it was
        recorded derive it from their alignment."""
        ident = self.manifest.data.get("identity")
        if ident:
            return ident
        al = self.stages.get(L.ALIGN)
        if not al:
            return None
        face = self._alignment().get("face_index")
        return {"photo": al["inputs"]["photo"], "photo_path": al.get("photo_path"),
                "face": face if isinstance(face, int) else None,
                "face_spec": {k: al["params"][k] for k in ("face", "face_at") if k in al["params"]}}

    # ---- what its alignment found (read-only views, for the server and previews) ----------------------
    def _alignment(self) -> dict[str, Any]:
        """The align stage's record, or {} before alignment (or where it cannot be read)."""
        try:
            data = json.loads(self.path(L.ALIGNMENT).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def face(self) -> int | None:
        """The face this session edits (its index in the alignment's faces), once known."""
        ident = self.identity
        return ident.get("face") if ident else None

    @property
    def photo_size(self) -> tuple[int, int] | None:
        size = self._alignment().get("photo_size")
        return (int(size[0]), int(size[1])) if isinstance(size, list) and len(size) == 2 else None

    def faces(self) -> list[dict[str, Any]]:
        """Every face the alignment found, largest first: its box (and score, and landmarks since 0.1)."""
        faces = self._alignment().get("faces")
        return [f for f in faces if isinstance(f, dict)] if isinstance(faces, list) else []

    def landmarks(self, face: int) -> list[list[float]] | None:
        """Face `face`'s 68 landmarks in photo pixels, or None where the alignment kept none (an older session)."""
        faces = self.faces()
        lm = faces[face].get("landmarks") if 0 <= face < len(faces) else None
        if lm is None and face == self.face:
            lm = self._alignment().get("landmarks")  # the edited face's are always kept
        return lm if isinstance(lm, list) else None

    def aligned_photo_path(self) -> str | None:
        """Where the photo was when it was aligned (unchecked: `photo_path` checks its content)."""
        path = self.stages.get(L.ALIGN, {}).get("photo_path")
        return path if isinstance(path, str) else None

    def has_edit(self, number: int) -> bool:
        return 0 < number < 1000 and L.edit_stage(number) in self.stages

    def composite_photo(self, name: str) -> Path | None:
        """Edit `name` composited into the photo (a PNG in the session), once the composite stage made it."""
        return self.path(L.composite_file(name, "edit")) if L.composite_stage(name) in self.stages else None

    def edit_crop(self, name: str) -> Path:
        """Edit `name`'s render at the generator's crop."""
        return self.path(name, L.EDIT_CROP)

    def check_photo(self, photo_sha: str, photo_name: str) -> None:
        """The session is of this photo (by content), or a one-line refusal that changes nothing."""
        ident = self.identity
        if ident and ident["photo"] != photo_sha:
            recorded = Path(ident.get("photo_path") or "?").name
            raise SessionMismatch(f"session {self.folder.name} was made for another photo ({recorded}, by content); "
                                  f"{photo_name} differs, so nothing in the session was changed: use a new session "
                                  "folder for this photo")

    def check_face(self, face: int) -> None:
        ident = self.identity
        if ident and ident.get("face") is not None and ident["face"] != face:
            raise SessionMismatch(f"session {self.folder.name} edits face {ident['face']}, not face {face}; nothing "
                                  "in the session was changed: use a new session folder for another face")

    def record_identity(self, photo_sha: str, photo_path: Path, face: int, face_spec: dict[str, Any]) -> None:
        self.manifest.data["identity"] = {"photo": photo_sha, "photo_path": str(photo_path.resolve()), "face": face,
                                          "face_spec": face_spec}
        self.manifest.save()

    def photo_path(self) -> Path:
        """The session's original photo, checked against the content it was made of."""
        ident = self.identity
        if ident is None:
            if not self.folder.exists():
                raise NotASession(f"session {self.folder} does not exist; give the folder of an existing session")
            raise NotASession(f"session {self.folder.name} has no photo yet")
        path = Path(ident.get("photo_path") or "")
        if not path.is_file():
            raise RequestError("photo", path.name or None, "the session's photo is missing (moved or deleted); "
                               "edit the photo where it is now, with this session")
        if file_sha256(path) != ident["photo"]:
            raise SessionMismatch(f"{path.name} is not the photo session {self.folder.name} was made for (its "
                                  "content differs); give the original photo")
        return path

    def photo(self) -> Photo:
        path = self.photo_path()
        if self._photo is None or self._photo.path != path:
            self._photo = load_photo(path)
        return self._photo

    # ---- the threads its torch stages run with ---------------------------------------------------
    def thread_count(self, asked: int | None, fair_share: int) -> int:
        """The thread count for this session's torch stages: `asked`, else the one recorded when it first
        computed, else `fair_share`. Results depend on it, so a session keeps it whatever the machine's load is
        later; on a GPU it is only how many CPU threads help. Reads only: `record_threads` keeps it."""
        recorded = self.manifest.data.get("threads")
        if isinstance(recorded, bool) or not isinstance(recorded, int) or recorded < 1:
            recorded = None  # a hand-edited manifest's count is not trusted
        return asked or recorded or fair_share

    def record_threads(self, threads: int) -> None:
        if self.manifest.data.get("threads") != threads:
            self.manifest.data["threads"] = threads
            self.manifest.save()

    # ---- the cache -------------------------------------------------------------------------------
    def cached(self, stage: str, inputs: dict[str, Any], params: dict[str, Any],
               compute: Callable[[], tuple[list[Path], dict[str, Any]]]) -> dict[str, Any]:
        """The stage's committed entry when its key (inputs + parameters) matches and its outputs are intact;
        else `compute()` -> (output paths, extra fields) and commit them, the manifest entry last."""
        entry = self.lookup(stage, inputs, params)
        if entry:
            return entry
        outputs, extra = compute()
        return self.commit(stage, inputs, params, outputs, extra)

    def lookup(self, stage: str, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        """The stage's committed entry when its key matches and its outputs are intact (marked reused), else None.
        Read-only sessions look up too: a worker process checks what its parent already committed."""
        entry = self.manifest.lookup(stage, stage_key(inputs, params))
        if entry and self.manifest.report.get(stage) != "computed":  # made earlier in this run: it says so
            self.manifest.mark(stage, "reused")
        return entry

    def mark_reused(self, stage: str) -> None:
        """A stage another process of this run found committed (a clip's frames fitted in worker processes)."""
        self.manifest.mark(stage, "reused")

    def commit(self, stage: str, inputs: dict[str, Any], params: dict[str, Any], outputs: list[Path],
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """A computed stage's entry, written last (its outputs are complete): also for outputs another process of
        this run wrote (a clip's frames fitted in worker processes)."""
        self.manifest.mark(stage, "computed")
        return self.manifest.commit(stage, stage_key(inputs, params), inputs, {**params, "stage_format": STAGE_FORMAT},
                                    outputs, extra)

    # ---- edits -------------------------------------------------------------------------------------
    def edit_names(self) -> list[str]:
        """Every committed edit, oldest first."""
        return sorted(k for k in self.stages if L.is_edit(k))

    def is_current(self, name: str) -> bool:
        """Edit `name` was made on the session's present alignment and inversion (settings that re-ran PTI
        leave older edits in the history, but they are never built on or composited)."""
        e, inv, al = self.stages.get(name), self.stages.get(L.INVERT), self.stages.get(L.ALIGN)
        if not (e and inv and al):
            return False
        return (e["inputs"].get("delta") == inv["outputs"].get(L.INVERT_DELTA)
                and e["inputs"].get("alignment") == al["outputs"].get(L.ALIGNMENT))

    def current_edits(self) -> list[str]:
        return [n for n in self.edit_names() if self.is_current(n)]

    def resolve_edit(self, spec: str | int | None, field: str = "from") -> str:
        """'pivot', an edit number, or None/'latest' (the newest current edit, else the pivot)."""
        if spec in (None, "latest"):
            names = self.current_edits()
            return names[-1] if names else L.PIVOT
        if str(spec) == L.PIVOT:
            return L.PIVOT
        text = str(spec).removeprefix(L.EDITS + "/")
        digits = text.isascii() and text.isdigit()  # '²' passes isdigit() and '١' int(): neither is an edit
        name = L.edit_stage(int(text)) if digits and 0 < int(text) < 1000 else None
        if not name or name not in self.stages:
            raise RequestError(field, spec, "no such edit; the session's history lists them"
                               + (", or use 'pivot'" if field == "from" else ""))
        if not self.is_current(name):
            raise RequestError(field, spec, "that edit was made on an earlier inversion of this session "
                                            "(other PTI settings); edit again from 'pivot'")
        return name

    def next_edit_names(self, count: int) -> list[str]:
        """Numbers after every committed edit: a folder a killed run left behind is untrusted and overwritten."""
        first = max([L.edit_number(n) for n in self.edit_names()] + [0]) + 1
        return [L.edit_stage(first + i) for i in range(count)]

    def edit_info(self, name: str) -> dict[str, Any]:
        try:
            return json.loads(self.path(name, L.EDIT_INFO).read_text())
        except (OSError, ValueError):
            return {}

    def history(self, names: list[str] | None = None) -> list[HistoryEntry]:
        """Every edit (or those in `names`), oldest first."""
        return [HistoryEntry.from_stage(L.edit_number(n), self.stages[n], self.edit_info(n))
                for n in self.edit_names() if names is None or n in names]


def stage_key(inputs: dict[str, Any], params: dict[str, Any]) -> str:
    return stable_hash([inputs, {**params, "stage_format": STAGE_FORMAT}])
