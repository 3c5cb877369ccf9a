"""Checkpoints as safetensors + JSON: never pickle.

A checkpoint folder holds model.safetensors + config.json (what `load_clip` reads) and, while
training, trainer_state.safetensors (fp32 weights and AdamW moments) + trainer_state.json
(step, history) so that a killed run resumes where it stopped. The record is also stored in the
safetensors file's own metadata, which is what resuming reads: the weights and their step are
replaced in one rename, so a kill between the two files never pairs one step's weights with
another step's record (trainer_state.json is for people, and for state written before).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mlclip_cli.atomic import atomic_path, write_json
from mlclip_cli.errors import MlclipError


def save_weights(model: torch.nn.Module, folder: Path, config: dict, dtype: torch.dtype = torch.float32) -> None:
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json(folder / "config.json", config)


def save_trainer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, folder: Path, state: dict) -> None:
    tensors = {f"model.{k}": v.detach().float().contiguous() for k, v in model.state_dict().items()}
    for index, param_state in optimizer.state_dict()["state"].items():
        for name, value in param_state.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).float().reshape(-1) if name == "step" else value.contiguous()
    with atomic_path(folder / "trainer_state.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={_RECORD: json.dumps(state)})
    write_json(folder / "trainer_state.json", state)


_RECORD = "mlclip.trainer_state"


def read_trainer_state(folder: Path) -> dict | None:
    """The record of the resumable state in `folder` (step, history, ...), or None when there is none."""
    meta_path, tensor_path = folder / "trainer_state.json", folder / "trainer_state.safetensors"
    if not tensor_path.is_file():
        return None
    try:
        with safe_open(str(tensor_path), "pt") as opened:
            record = (opened.metadata() or {}).get(_RECORD)
        if record is None:  # written before the record moved into the file
            return json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else None
        return json.loads(record)
    except Exception as exc:
        raise MlclipError(f"{folder}: cannot resume, trainer state unreadable ({str(exc).splitlines()[0]})") from None


def load_trainer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, folder: Path) -> dict | None:
    tensor_path = folder / "trainer_state.safetensors"
    state = read_trainer_state(folder)
    if state is None:
        return None
    try:
        tensors = load_file(tensor_path)
    except Exception as exc:
        raise MlclipError(f"{folder}: cannot resume, trainer state unreadable ({exc})") from None
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    optim_state = optimizer.state_dict()
    restored: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            restored.setdefault(int(index), {})[name] = value.reshape(()) if name == "step" else value
    optim_state["state"] = restored
    optimizer.load_state_dict(optim_state)
    return state
