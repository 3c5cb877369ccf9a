"""A continual run's extension folder: the state after the last finished language.

    extension.json        method "cll-clip", learner, base identity + tower hash, file hashes, shape
    tokenizer.json        CLIP's BPE + every language's appended merges (ClipVocabulary)
    weights.safetensors   the token table (+ acquirers, + the tower copy of full fine-tuning)
    usage.safetensors     TEIR's token-usage counts f_i
    learner.safetensors   what the learner keeps between tasks (EWC's Fisher, ER's memory), + .json
    continual.json        the run record: settings fingerprint, languages done, scores per step
    packs/<lang>.json     one card per language learnt (what `mlclip packs list` shows)

It is loadable wherever --model is accepted. A new state is written whole into a sibling folder
and swapped in (core/extension.py: the folder is a link to its current version), so a kill at any
moment leaves either the old state or the new one, and a reader always reads one of them, whole.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from mlclip_cli.atomic import write_json
from mlclip_cli.core.extension import (EXTENSION_FILE, check_hashes, load_tensors, read_json_object, read_whole,
                                       recover, resolve, sha256_file, swap_in, write_card, write_index)
from mlclip_cli.errors import ArtifactError

METHOD = "cll-clip"
HASHED = {"tokenizer_sha256": "tokenizer.json", "shared_sha256": "weights.safetensors", "usage_sha256": "usage.safetensors"}
__all__ = ["METHOD", "Snapshot", "exists", "keep_copy", "read", "recover", "write"]


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


def write(folder: Path, info: dict, vocabulary_json: str, weights: dict[str, torch.Tensor], usage: torch.Tensor,
          learner_state: tuple[dict, dict], record: dict, cards: dict[str, dict]) -> None:
    with swap_in(Path(folder)) as staged:
        (staged / "packs").mkdir()
        (staged / "tokenizer.json").write_text(vocabulary_json, encoding="utf-8")
        save_file({k: v.detach().float().contiguous().cpu() for k, v in weights.items()}, str(staged / "weights.safetensors"))
        save_file({"usage": usage.float().contiguous().cpu()}, str(staged / "usage.safetensors"))
        tensors, learner_info = learner_state
        save_file({k: v.float().contiguous().cpu() for k, v in tensors.items()}, str(staged / "learner.safetensors"))
        write_json(staged / "learner.json", learner_info)
        write_json(staged / "continual.json", record)
        hashes = {key: sha256_file(staged / name) for key, name in HASHED.items()}
        for language, card in cards.items():
            write_card(staged, language, METHOD, info, card)
        write_index(staged, {**info, **hashes, "method": METHOD})


def exists(folder: Path) -> bool:
    folder = resolve(folder)
    return (folder / EXTENSION_FILE).is_file() and (folder / "continual.json").is_file()


def read(folder: Path) -> Snapshot:
    """Read and check every hash; one-line errors for a foreign or corrupt folder. Every file comes
    from one version of the folder (`Snapshot.folder`)."""
    return read_whole(folder, _read)


def _read(folder: Path) -> Snapshot:
    info = read_json_object(folder / EXTENSION_FILE, "extension index")
    if info.get("method") != METHOD:
        raise ArtifactError(f"{folder}: an extension of method '{info.get('method')}', not {METHOD}")
    check_hashes(folder, info, HASHED)
    learner_path = folder / "learner.safetensors"
    return Snapshot(folder, info, read_json_object(folder / "continual.json", "run record"),
                    (folder / "tokenizer.json").read_text(encoding="utf-8"), load_tensors(folder / "weights.safetensors"),
                    load_tensors(folder / "usage.safetensors")["usage"],
                    load_tensors(learner_path) if learner_path.is_file() else {},
                    read_json_object(folder / "learner.json", "learner state") if (folder / "learner.json").is_file() else {})


def keep_copy(folder: Path, target: Path) -> None:
    """--keep-steps: a copy of this step's state (itself a loadable extension)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(resolve(folder), target)
