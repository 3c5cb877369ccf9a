"""The extension folder: what every language-extension method writes and every reader checks.

    extension.json      the index, written last: a folder without it is not an extension.
                        artifact "mlclip-extension", schema_version, method, base_model,
                        base_identity, tower_sha256, tokenizer_sha256, shared_sha256, encoder (its
                        shape), mlclip_version, created, and the method's own keys
    packs/<lang>.json   one card per language: artifact "mlclip-language-pack", language,
                        method, the base it was made for, and the method's own keys

The rest of the folder is the method's (MLA: shared/ and packs/<lang>.safetensors; CLL-CLIP: one
token table). Two ways to change a folder atomically: file by file (`atomic_path`, index last:
MLA adds a pack without touching any other byte) or whole (`swap_in`).

A folder changed whole is a symbolic link to its current version, a hidden sibling:

    extension -> .extension.v000003     the link, replaced in one rename (os.replace)
    .extension.v000003/                 the current state
    .extension.v000002/                 the one before, kept for a reader that started on it

`swap_in` writes the new state into `.extension.next`, renames it to the next version, then
points the link at it. So at every instant the folder's name leads to one whole state, the old or
the new, and a kill leaves one of them (`recover`, run by the next writer, tidies what the kill
left). A reader resolves the folder once (`resolve`) and reads every file from that version
(`read_whole` reads again from the new one in the rare case the writer retired it meanwhile).
A folder written before versions (a plain folder) is read as it is, and becomes versioned the
first time it is swapped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch
from safetensors.torch import load_file

from mlclip_cli import __version__, faults
from mlclip_cli.atomic import write_json
from mlclip_cli.errors import ArtifactError, MlclipError

EXTENSION_FILE = "extension.json"
EXTENSION_SCHEMA_VERSION = 1
EXTENSION_ARTIFACT = "mlclip-extension"
CARD_ARTIFACT = "mlclip-language-pack"
# What every index holds, whatever its method (read_extension refuses a folder without one of them).
INDEX_KEYS = ("method", "base_model", "base_identity", "tower_sha256", "tokenizer_sha256", "shared_sha256", "encoder")
BASE_KEYS = ("base_model", "base_identity", "tower_sha256")  # what a card repeats of its base
T = TypeVar("T")


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
    return (resolve(path) / EXTENSION_FILE).is_file()


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
    path = Path(folder) / EXTENSION_FILE
    info = read_json_object(path, "extension index")
    # folders written before these keys existed have neither: read them as version 1
    if info.get("artifact", EXTENSION_ARTIFACT) != EXTENSION_ARTIFACT:
        raise ArtifactError(f"{path}: a '{info['artifact']}', not an extension index")
    version = info.get("schema_version", 1)
    if not isinstance(version, int) or version > EXTENSION_SCHEMA_VERSION:
        raise ArtifactError(f"{path}: extension format version {version}, newer than this mlclip "
                            f"{__version__} reads (up to {EXTENSION_SCHEMA_VERSION}); upgrade mlclip")
    for key in INDEX_KEYS:
        if key not in info:
            raise ArtifactError(f"{Path(folder) / EXTENSION_FILE}: key '{key}' is missing")
    return info


def method_name(folder: Path) -> str:
    """The method an extension folder was made by (what `--model FOLDER` dispatches on)."""
    path = resolve(folder) / EXTENSION_FILE
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
    listed in `broken` instead, so the other languages stay usable and the broken one removable.
    A swapped folder is read from one version, whole (`Extension.folder` is that version)."""
    return read_whole(folder, _read_extension)


def _read_extension(folder: Path) -> Extension:
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


def _retired(folder: Path) -> Path:  # only mlclip before versioned folders made it
    return folder.parent / f".{folder.name}.old"


def _version(folder: Path, number: int) -> Path:
    return folder.parent / f".{folder.name}.v{number:06d}"


def _versions(folder: Path) -> list[tuple[int, Path]]:
    """The versions beside `folder`, oldest first; each is whole (a version is made by a rename)."""
    prefix = f".{folder.name}.v"
    found = []
    for path in folder.parent.glob(f"{glob.escape(prefix)}*"):
        digits = path.name[len(prefix):]
        if digits.isdigit() and path.is_dir() and not path.is_symlink():
            found.append((int(digits), path))
    return sorted(found)


def resolve(folder: str | Path) -> Path:
    """Where to read `folder` from: the version its link points to now, or the folder itself when it
    is a plain one. Read every file of one state from what this returns, not through the link."""
    folder = Path(folder)
    if folder.is_symlink():
        target = folder.parent / os.readlink(folder)
        if not target.exists() and not _versions(folder):
            # `cp -r` and `rsync -a` copy the link, not the version it points to
            raise MlclipError(f"{folder}: a link to {target.name}, which is not beside it (a folder written whole is "
                              "a link to its current version): copy such folders following links, `cp -rL` or `rsync -aL`")
        return target
    if not folder.exists():  # a first swap between its version's rename and its link: the newest is whole
        versions = _versions(folder)
        if versions:
            return versions[-1][1]
    return folder


def read_whole(folder: str | Path, read: Callable[[Path], T], attempts: int = 10) -> T:
    """`read(version)` of the state `folder` leads to now. When it fails because the writer retired
    that version meanwhile (two swaps during one read), it reads the new state instead."""
    for attempt in range(attempts):
        version = resolve(folder)
        try:
            return read(version)
        except Exception:
            if attempt + 1 == attempts or resolve(folder) == version and version.exists():
                raise
    raise AssertionError("unreachable")


def _point_at(folder: Path, version: Path) -> None:
    """Make `folder` a link to `version` in one step: a new link renamed over the old one."""
    link = folder.parent / f".{folder.name}.link-{os.getpid()}"
    link.unlink(missing_ok=True)
    os.symlink(version.name, link)
    os.replace(link, folder)


def _tidy(folder: Path) -> None:
    """Remove every version but the current one and the one just before it."""
    current = resolve(folder)
    versions = _versions(folder)
    numbers = [number for number, path in versions if path == current]
    before = [path for number, path in versions if numbers and number < numbers[0]][-1:]
    for _, path in versions:
        if path != current and path not in before:
            shutil.rmtree(path, ignore_errors=True)


def recover(folder: Path, index_file: str = EXTENSION_FILE) -> None:
    """Finish or undo a swap a kill interrupted (`index_file`: what the folder writes last). Call it
    holding the folder's write lock."""
    folder = Path(folder)
    staged, old = _staging(folder), _retired(folder)
    if not folder.exists() and old.exists() and (staged / index_file).is_file():
        staged.rename(folder)  # mlclip before versions, killed between its two renames: the new state is complete
    if staged.exists():
        shutil.rmtree(staged)  # killed while writing it: the old state stands
    if old.exists():
        shutil.rmtree(old)
    for link in folder.parent.glob(f"{glob.escape(f'.{folder.name}.link-')}*"):
        link.unlink()  # a new link that was never renamed into place
    versions = _versions(folder)
    if not versions:
        return
    if folder.is_dir() and not folder.is_symlink():  # killed as a plain folder was becoming versioned
        slot = _version(folder, versions[-1][0] - 1)  # the number swap_in kept for it
        if slot.exists():  # not a swap of ours: the plain folder stands
            for _, path in versions:
                shutil.rmtree(path)
            return
        folder.rename(slot)
    if not folder.is_symlink() or resolve(folder) != versions[-1][1]:  # killed before the link: the newest is whole
        _point_at(folder, versions[-1][1])
    _tidy(folder)


@contextlib.contextmanager
def swap_in(folder: Path) -> Iterator[Path]:
    """Yield an empty sibling folder to write the whole new state into (its index last); on
    success `folder` leads to it in one step, on an error it is removed and `folder` is as it was.
    Call it holding the folder's write lock."""
    folder = Path(folder)
    recover(folder)
    staged = _staging(folder)
    staged.mkdir(parents=True)
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    faults.point("swap: staged")
    versions = _versions(folder)
    plain = folder.is_dir() and not folder.is_symlink()  # written before versions: it becomes the one before
    number = (versions[-1][0] if versions else 0) + 1 + plain
    new = _version(folder, number)
    staged.rename(new)
    faults.point("swap: new version")
    if plain:
        folder.rename(_version(folder, number - 1))  # meanwhile a reader finds the newest version
        faults.point("swap: plain folder retired")
    _point_at(folder, new)
    faults.point("swap: switched")
    _tidy(folder)
