"""Checks a data-set root against its description in data_manifests/<name>.json."""

from __future__ import annotations

import json
from pathlib import Path

from mlclip_cli.datasets.base import LayoutCheck, read_lines
from mlclip_cli.errors import DatasetError


def manifests_dir() -> Path:
    # Installed: packaged copy; from a checkout: the top-level folder.
    packaged = Path(__file__).resolve().parents[1] / "data_manifests"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "data_manifests"


def load_description(name: str) -> dict:
    path = manifests_dir() / f"{name}.json"
    if not path.is_file():
        raise DatasetError(f"no data manifest for '{name}' at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def check_root(name: str, root: Path) -> LayoutCheck:
    """Fail if a required file is absent; warn when a line count differs from upstream's."""
    if not root.exists():
        raise DatasetError(f"data root {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"data root {root} is not a folder")
    description = load_description(name)
    warnings: list[str] = []
    files: dict[str, int | None] = {}
    missing = []
    for entry in description.get("files", []):
        rel = entry["path"]
        path = root / rel
        if not (path.is_file() or path.with_name(path.name + ".gz").is_file()):
            if not entry.get("optional", False):
                missing.append(rel)
            continue
        expected = entry.get("lines")
        if expected is None:
            files[rel] = None
            continue
        count = len(read_lines(path))
        files[rel] = count
        if count != expected:
            warnings.append(f"{rel}: {count} lines, upstream has {expected}")
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise DatasetError(
            f"{root} does not look like {name}: missing {shown} (expected layout: data_manifests/{name}.json)"
        )
    return LayoutCheck(warnings=warnings, files=files)
