"""Content hashes and the metadata dragedit keeps in safetensors headers."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def pack_metadata(meta: dict[str, Any]) -> dict[str, str]:
    """safetensors header metadata as one sorted JSON value (its own key order is not deterministic)."""
    return {"dragedit": json.dumps(meta, sort_keys=True)}


def unpack_metadata(meta: dict[str, str] | None) -> dict[str, Any]:
    try:
        return json.loads((meta or {}).get("dragedit", "{}"))
    except ValueError:
        return {}
