"""The extension folder: what every language-extension method writes and every reader checks.

    extension.json      the index, written last: a folder without it is not an extension.
                        artifact "mlclip-extension", schema_version, method, base_model,
                        base_identity, tower_sha256, tokenizer_sha256, shared_sha256, encoder (its
                        shape), mlclip_version, created, and the method's own keys
    packs/<lang>.json   one card per language: artifact "mlclip-language-pack", language,
                        method, the base it was made for, and the method's own keys

The rest of the folder is the method's (MLA: shared/ and packs/<lang>.safetensors; CLL-CLIP: one
token table). Two ways to change a folder atomically: file by file (`atomic_path`, index last:
MLA adds a pack without touching any other byte) or whole (`swap_in`: the new state is written
into a sibling and swapped in, so a kill leaves either the old folder or the new one; `recover`
finishes or undoes an interrupted swap).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from mlclip_cli import __version__
from mlclip_cli.atomic import write_json
from mlclip_cli.errors import ArtifactError, MlclipError

EXTENSION_FILE = "extension.json"
EXTENSION_SCHEMA_VERSION = 1
EXTENSION_ARTIFACT = "mlclip-extension"
CARD_ARTIFACT = "mlclip-language-pack"
# What every index holds, whatever its method (read_extension refuses a folder without one of them).
INDEX_KEYS = ("method", "base_model", "base_identity", "tower_sha256", "tokenizer_sha256", "shared_sha256", "encoder")
BASE_KEYS = ("base_model", "base_identity", "tower_sha256")  # what a card repeats of its base


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_revision() -> str | None:
    try:
        found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                               text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def is_extension(path: str | Path) -> bool:
    return (Path(path) / EXTENSION_FILE).is_file()


def read_json_object(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: {what} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: {what} is not a JSON object")
    return data


def read_index(folder: Path) -> dict:
    """extension.json of `folder`, checked to hold every key an index has."""
    info = read_json_object(Path(folder) / EXTENSION_FILE, "extension index")
    for key in INDEX_KEYS:
        if key not in info:
            raise ArtifactError(f"{Path(folder) / EXTENSION_FILE}: key '{key}' is missing")
    return info


def method_name(folder: Path) -> str:
    """The method an extension folder was made by (what `--model FOLDER` dispatches on)."""
    path = Path(folder) / EXTENSION_FILE
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("method")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise MlclipError(f"{path}: not a readable extension index") from None
    return str(name)


def write_index(folder: Path, info: dict) -> None:
    write_json(Path(folder) / EXTENSION_FILE, {"artifact": EXTENSION_ARTIFACT, "schema_version": EXTENSION_SCHEMA_VERSION,
                                               **info, "created": now(), "mlclip_version": __version__})


def card_path(folder: Path, language: str) -> Path:
    return Path(folder) / "packs" / f"{language}.json"


def write_card(folder: Path, language: str, method: str, info: dict, fields: dict) -> dict:
    """A language's card: what it is, the base it was made for (from the index `info`), then the
    method's `fields`."""
    card = {"artifact": CARD_ARTIFACT, "language": language, "method": method,
            **{key: info[key] for key in BASE_KEYS}, **fields}
    write_json(card_path(folder, language), card)
    return card


@dataclass
class Extension:
    folder: Path
    info: dict  # extension.json
    cards: dict[str, dict] = field(default_factory=dict)  # language -> pack card
    broken: dict[str, str] = field(default_factory=dict)  # language -> why its card cannot be read

    @property
    def languages(self) -> list[str]:
        return sorted(self.cards)

    def pack_path(self, language: str, suffix: str = ".safetensors") -> Path:
        return self.folder / "packs" / f"{language}{suffix}"


def read_extension(folder: str | Path) -> Extension:
    """The index (a broken one is a one-line error) and every card: a card that cannot be read is
    listed in `broken` instead, so the other languages stay usable and the broken one removable."""
    folder = Path(folder)
    info = read_index(folder)
    cards, broken = {}, {}
    for path in sorted((folder / "packs").glob("*.json")):
        if path.name.endswith(".tokenizer.json"):
            continue
        try:
            card = read_json_object(path, "pack card")
            if card.get("artifact") != CARD_ARTIFACT or "language" not in card:
                raise ArtifactError(f"{path}: not a language pack card")
        except ArtifactError as exc:
            broken[path.stem] = str(exc)
            continue
        cards[card["language"]] = card
    return Extension(folder, info, cards, broken)


def unavailable(extension: Extension, language: str) -> str:
    """Why `language` cannot be used from `extension`, in words for an error line."""
    if language in extension.broken:
        return (f"{extension.folder}: the '{language}' pack is broken ({extension.broken[language]}); "
                f"see `mlclip packs check`, remove it with `mlclip packs remove {language}`")
    return f"{extension.folder} has no pack for '{language}' (it has {', '.join(extension.languages) or 'none'})"


def check_base(folder: Path, info: dict, identity: str, tower_sha: str) -> None:
    """Refuse a folder whose base model no longer loads the weights it was built on."""
    if identity != info["base_identity"] or tower_sha != info["tower_sha256"]:
        raise MlclipError(f"{folder}: built on base model {info['base_identity']}, but "
                          f"'{info['base_model']}' now loads {identity}")


def check_hashes(folder: Path, info: dict, hashed: dict[str, str]) -> None:
    """Each file of `hashed` (index key -> file name) exists with the sha256 the index records."""
    for key, name in hashed.items():
        path = Path(folder) / name
        if not path.is_file() or sha256_file(path) != info.get(key):
            raise ArtifactError(f"{path}: missing or corrupt (its hash is not the one in {EXTENSION_FILE})")


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as exc:
        raise ArtifactError(f"{path}: unreadable weights ({str(exc).splitlines()[0]})") from None


def _staging(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.next"


def _retired(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.old"


def recover(folder: Path) -> None:
    """Finish or undo a swap a kill interrupted."""
    folder = Path(folder)
    staged, old = _staging(folder), _retired(folder)
    if not folder.exists() and old.exists() and (staged / EXTENSION_FILE).is_file():
        staged.rename(folder)  # killed between the two renames: the new state is complete
    if staged.exists():
        shutil.rmtree(staged)  # killed while writing it: the old state stands
    if old.exists():
        shutil.rmtree(old)


@contextlib.contextmanager
def swap_in(folder: Path) -> Iterator[Path]:
    """Yield an empty sibling folder to write the whole new state into (its index last); on
    success it replaces `folder`, on an error it is removed and `folder` is as it was."""
    folder = Path(folder)
    staged = _staging(folder)
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if folder.exists():
        folder.rename(_retired(folder))
    staged.rename(folder)
    if _retired(folder).exists():
        shutil.rmtree(_retired(folder))
