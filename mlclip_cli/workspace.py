"""The workspace: one folder where artifacts land under conventional names, so steps chain
without long paths (`prepare` writes manifests/<dataset>.parquet, later steps read it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "MLCLIP_WORKSPACE"
DEFAULT = "mlclip-workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, given: str | os.PathLike | None = None) -> "Workspace":
        """An explicit folder, else $MLCLIP_WORKSPACE, else ./mlclip-workspace."""
        return cls(Path(given or os.environ.get(ENV_VAR) or DEFAULT).expanduser())

    def manifest(self, dataset: str) -> Path:
        return self.root / "manifests" / f"{dataset}.parquet"

    def data(self, name: str) -> Path:
        return self.root / "data" / name

    @property
    def features_root(self) -> Path:
        return self.root / "features"

    @property
    def results(self) -> Path:
        return self.root / "results"

    def find_manifest(self, given: str) -> Path:
        """A manifest path as given, or the workspace manifest of that data-set name."""
        path = Path(given)
        if path.suffix == ".parquet" or path.exists():
            return path
        return self.manifest(given)
