"""Writing files so that a reader never sees half of one: write a sibling, then rename over.

Every state file dataops_dev writes (environment metadata, sample records, reports, caches,
profiles, the approvals and lock files) goes through here.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """JSON with sorted keys (stable diffs); non-JSON values are written as text."""
    text = json.dumps(data, indent=indent, sort_keys=True, default=str)
    write_text_atomic(path, text + "\n")


def write_cache_text(path: Path, text: str) -> None:
    """A cache file, renamed into place like `write_bytes_atomic` but cheaper: the sibling is
    named by the process and thread (no random name to retry) and the directory is made only
    when missing. For files that are rebuilt when lost: a reader sees the old file or the new."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        handle = tmp.open("w", encoding="utf-8")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tmp.open("w", encoding="utf-8")
    try:
        with handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
