"""This tool's code as it is on disk, for caches and the resident worker: an edited or upgraded
dataops_dev is another tool. Stats only (path, size, modification time of every source file):
reading the installed version through importlib.metadata costs more than these stats."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def source_stamp(package: Path = PACKAGE) -> str:
    """One line per Python source file under `package`: `path:size:mtime_ns`, in a stable order."""
    lines: list[str] = []
    for directory, _dirs, names in sorted(os.walk(package)):
        for name in sorted(names):
            if name.endswith(".py"):
                stat = os.stat(os.path.join(directory, name))
                lines.append(f"{directory}/{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "\n".join(lines)
