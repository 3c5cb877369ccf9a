"""Arguments that name a local file or folder, told apart from names (a hub name, a model name)
and checked before any work: a missing path is "PATH: no such file", never the hub's complaint
about a repo id, and a folder where a file is needed (or the reverse) says so."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mlclip_cli.errors import MlclipError

FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".parquet", ".pt", ".pth", ".onnx", ".txt", ".tsv")
# A Hugging Face hub id: NAME or ORG/NAME, letters, digits, '-', '_' and '.' (the hub's own rule).
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def looks_like_path(value: str, hub_names: bool = False) -> bool:
    """Whether `value` means a local path: it exists, starts with '.', '~' or '/', ends in a file
    suffix, or holds a path separator. With `hub_names`, a bare ORG/NAME that does not exist here
    stays a hub name (sentence-transformers/all-MiniLM-L6-v2), as the hub spells its ids."""
    value = str(value)
    if not value:
        return False
    if Path(value).expanduser().exists() or value.startswith((".", "~", "/")) \
            or value.lower().endswith(FILE_SUFFIXES):
        return True
    separated = os.sep in value or (os.altsep is not None and os.altsep in value)
    return separated and not (hub_names and _HUB_ID.fullmatch(value))


def _named(value, option: str | None) -> str:
    return f"{option} {value}" if option else str(value)


def local_file(value: str | os.PathLike, option: str | None = None, what: str = "file") -> Path:
    """`value` as an existing file, or one line naming `option` (when given), the path and what is
    wrong with it."""
    path = Path(value).expanduser()
    if not path.exists():
        raise MlclipError(f"{_named(value, option)}: no such file")
    if path.is_dir():
        raise MlclipError(f"{_named(value, option)}: a folder, not a {what}")
    return path


def local_folder(value: str | os.PathLike, option: str | None = None, what: str = "folder") -> Path:
    """`value` as an existing folder, or one line naming `option` (when given), the path and what
    is wrong with it."""
    path = Path(value).expanduser()
    if not path.exists():
        raise MlclipError(f"{_named(value, option)}: no such folder")
    if not path.is_dir():
        raise MlclipError(f"{_named(value, option)}: a file, not a {what}")
    return path
