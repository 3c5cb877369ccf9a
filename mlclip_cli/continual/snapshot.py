"""A continual run's extension folder: the state after the last finished language.

    extension.json        method "cll-clip", learner, base identity + tower hash, file hashes, shape
    tokenizer.json        CLIP's BPE + every language's appended merges (ClipVocabulary)
    weights.safetensors   the token table (+ acquirers, + the tower copy of full fine-tuning)
    usage.safetensors     TEIR's token-usage counts f_i
    learner.safetensors   what the learner keeps between tasks (EWC's Fisher, ER's memory), + .json
    continual.json        the run record: settings fingerprint, languages done, scores per step
    packs/<lang>.json     one card per language learnt (what `mlclip packs list` shows)

It is loadable wherever --model is accepted. A new state is written whole into a sibling folder
and swapped in, so a kill at any moment leaves either the old state or the new one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from mlclip_cli.atomic import write_json
from mlclip_cli.errors import ArtifactError
from mlclip_cli.mla.packs import EXTENSION_FILE, read_json_object, sha256_file, write_extension_index

METHOD = "cll-clip"
HASHED = {"tokenizer_sha256": "tokenizer.json", "shared_sha256": "weights.safetensors", "usage_sha256": "usage.safetensors"}


@dataclass
class Snapshot:
    folder: Path
    info: dict  # extension.json
    record: dict  # continual.json
    vocabulary_json: str
    weights: dict[str, torch.Tensor]
    usage: torch.Tensor
    learner_tensors: dict[str, torch.Tensor]
    learner_info: dict


def _next(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.next"


def _old(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.old"


def recover(folder: Path) -> None:
    """Finish or undo a swap a kill interrupted."""
    folder, nxt, old = Path(folder), _next(Path(folder)), _old(Path(folder))
    if not folder.exists() and old.exists() and (nxt / EXTENSION_FILE).is_file():
        nxt.rename(folder)  # killed between the two renames: the new state is complete
    if nxt.exists():
        shutil.rmtree(nxt)  # killed while writing it: the old state stands
    if old.exists():
        shutil.rmtree(old)


def write(folder: Path, info: dict, vocabulary_json: str, weights: dict[str, torch.Tensor], usage: torch.Tensor,
          learner_state: tuple[dict, dict], record: dict, cards: dict[str, dict]) -> None:
    folder = Path(folder)
    nxt = _next(folder)
    if nxt.exists():
        shutil.rmtree(nxt)
    (nxt / "packs").mkdir(parents=True)
    (nxt / "tokenizer.json").write_text(vocabulary_json, encoding="utf-8")
    save_file({k: v.detach().float().contiguous().cpu() for k, v in weights.items()}, str(nxt / "weights.safetensors"))
    save_file({"usage": usage.float().contiguous().cpu()}, str(nxt / "usage.safetensors"))
    tensors, learner_info = learner_state
    save_file({k: v.float().contiguous().cpu() for k, v in tensors.items()}, str(nxt / "learner.safetensors"))
    write_json(nxt / "learner.json", learner_info)
    write_json(nxt / "continual.json", record)
    hashes = {key: sha256_file(nxt / name) for key, name in HASHED.items()}
    for language, card in cards.items():
        write_json(nxt / "packs" / f"{language}.json", {
            "artifact": "mlclip-language-pack", "language": language, "method": METHOD,
            **{k: info[k] for k in ("base_model", "base_identity", "tower_sha256")}, **card})
    write_extension_index(nxt, {**info, **hashes, "method": METHOD})
    if folder.exists():
        folder.rename(_old(folder))
    nxt.rename(folder)
    if _old(folder).exists():
        shutil.rmtree(_old(folder))


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as exc:
        raise ArtifactError(f"{path}: unreadable weights ({str(exc).splitlines()[0]})") from None


def exists(folder: Path) -> bool:
    return (Path(folder) / EXTENSION_FILE).is_file() and (Path(folder) / "continual.json").is_file()


def read(folder: Path) -> Snapshot:
    """Read and check every hash; one-line errors for a foreign or corrupt folder."""
    folder = Path(folder)
    info = read_json_object(folder / EXTENSION_FILE, "extension index")
    if info.get("method") != METHOD:
        raise ArtifactError(f"{folder}: an extension of method '{info.get('method')}', not {METHOD}")
    for key, name in HASHED.items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != info.get(key):
            raise ArtifactError(f"{path}: missing or corrupt (its hash is not the one in {EXTENSION_FILE})")
    learner_path = folder / "learner.safetensors"
    return Snapshot(folder, info, read_json_object(folder / "continual.json", "run record"),
                    (folder / "tokenizer.json").read_text(encoding="utf-8"), _tensors(folder / "weights.safetensors"),
                    _tensors(folder / "usage.safetensors")["usage"],
                    _tensors(learner_path) if learner_path.is_file() else {},
                    read_json_object(folder / "learner.json", "learner state") if (folder / "learner.json").is_file() else {})


def keep_copy(folder: Path, target: Path) -> None:
    """--keep-steps: a copy of this step's state (itself a loadable extension)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
