"""Write files atomically: to a temporary sibling, then rename, so a failure never
leaves a half-written artifact behind.

A temporary sibling is named `.<name>.<random>.tmp`. A process killed with kill -9 cannot remove
its own; the next writer of the folder removes them when it takes over the dead writer's lock
(`remove_temporaries`, called by locks.writer_lock).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mlclip_cli import faults


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the usual permissions
        faults.point(f"write {target.name}")  # written in full, not yet in place
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def remove_temporaries(target: str | os.PathLike) -> list[Path]:
    """The temporaries a killed writer of `target` left: its own (`.<name>.*.tmp` beside it) and,
    for a folder, every `.*.tmp` file inside it. Call it holding the target's write lock."""
    target = Path(target)
    found = list(target.parent.glob(f".{glob.escape(target.name)}.*.tmp")) if target.name else []
    if target.is_dir():
        found += [path for path in target.rglob(".*.tmp") if path.is_file()]
    for path in found:
        path.unlink(missing_ok=True)
    return found
