"""The workspace: one folder where artifacts land under conventional names, so steps chain
without long paths (`prepare` writes manifests/<dataset>.parquet, later steps read it).

This module is the one place that builds those paths:

    manifests/<dataset>.parquet                  prepare
    data/<name>/                                 generated data (the world)
    features/<manifest>/<split>/<encoder>/       the frozen feature cache (feature_folder)
    results/                                     bench results
    extensions/<method>/                         train's extension folders
    continual/<learner>-teir-<mode>/             continual runs (their extension/ inside)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "MLCLIP_WORKSPACE"
DEFAULT = "mlclip-workspace"


def slug(text: str) -> str:
    """A file-name-safe form of a name or model identity (at most 80 characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80]


def feature_folder(features_root: str | os.PathLike, manifest: str | os.PathLike, split: str | None,
                   identity: str) -> Path:
    """Where the frozen features of `manifest`'s `split` (None: every split) by the encoder
    `identity` live in a feature cache."""
    return Path(features_root) / slug(Path(manifest).stem) / (split or "all") / slug(identity)


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, given: str | os.PathLike | None = None) -> "Workspace":
        """An explicit folder, else $MLCLIP_WORKSPACE, else ./mlclip-workspace."""
        return cls(Path(given or os.environ.get(ENV_VAR) or DEFAULT).expanduser())

    def check(self, given_by: str | None) -> None:
        """Before any command: a workspace named by `given_by` (-w/--workspace, $MLCLIP_WORKSPACE) is a
        writable folder or can be made one; the default one must at least not be a file. One line
        naming the option and what is wrong otherwise."""
        from mlclip_cli.errors import MlclipError
        from mlclip_cli.locks import check_writable

        if given_by is None:  # ./mlclip-workspace: readers may run where it cannot be written
            if self.root.is_file():
                raise MlclipError(f"{self.root} (the default workspace): a file, not a folder; pass -w FOLDER")
            return
        try:
            check_writable(self.root, "workspace")
        except MlclipError as exc:
            raise MlclipError(f"{given_by} {exc}") from None

    def manifest(self, dataset: str) -> Path:
        return self.root / "manifests" / f"{dataset}.parquet"

    def data(self, name: str) -> Path:
        return self.root / "data" / name

    @property
    def features_root(self) -> Path:
        return self.root / "features"

    def feature_folder(self, manifest: str | os.PathLike, split: str | None, identity: str) -> Path:
        return feature_folder(self.features_root, manifest, split, identity)

    @property
    def results(self) -> Path:
        return self.root / "results"

    def extension(self, method: str) -> Path:
        """Where `train --method METHOD` writes by default."""
        return self.root / "extensions" / method

    def continual_run(self, learner: str, teir: str, prefix: str = "") -> Path:
        """A continual run's folder (its extension is `extension/` inside); the demo's runs have a prefix."""
        return self.root / "continual" / f"{prefix}{learner}-teir-{teir}"

    def reproduction(self, table: str) -> Path:
        """`mlclip reproduce TABLE`'s folder."""
        return self.root / "reproduce" / table

    def find_manifest(self, given: str) -> Path:
        """A manifest path as given, or the workspace manifest of that data-set name."""
        path = Path(given)
        if path.suffix == ".parquet" or path.is_file():
            return path
        named = self.manifest(given)
        # a name beside a folder of the same name (`prepare pairs --from my-photos` names it
        # my-photos) means the workspace manifest, not the folder
        return path if path.exists() and not named.is_file() else named
