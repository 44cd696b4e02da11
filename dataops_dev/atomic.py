"""Writing files so that a reader never sees half of one: write a sibling, then rename over.

Every state file dataops_dev writes (environment metadata, sample records, reports, caches,
profiles, the approvals and lock files) goes through here.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a sibling named by this process and thread, then rename it over `path`. The
    sibling is created exclusively (never a planted file or link); the directory is made only
    when missing (this runs once per cached model, thousands of times in one lineage run)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    handle = _create(tmp)
    try:
        with handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create(tmp: Path) -> BinaryIO:
    try:
        return tmp.open("xb")
    except FileNotFoundError:
        tmp.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # left behind by a killed process that had this pid
        tmp.unlink()
    return tmp.open("xb")


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """JSON with sorted keys (stable diffs); non-JSON values are written as text."""
    text = json.dumps(data, indent=indent, sort_keys=True, default=str)
    write_text_atomic(path, text + "\n")
