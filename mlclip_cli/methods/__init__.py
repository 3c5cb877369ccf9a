"""The method registry: what `train`, `extend` and `--model FOLDER` dispatch on.

A language-extension method is one module here that registers a `Method`: how it teaches
languages, how it adds one to an existing extension folder, and the encoder that reads its
folders. The continual strategies (CLL-CLIP's table alone, EWC, ER, LwF, ...) are not methods:
they are learners of the cll-clip method (continual/learners/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlclip_cli.core.extension import method_name
from mlclip_cli.registry import Registry


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    # Teach several languages at once: (config, progress, on_step, on_eval) -> result. None for a
    # method that learns languages one after another; `sequence_hint` then says which command runs it.
    train: Callable | None
    extend: Callable  # (config, progress, on_step, on_eval|on_task) -> result: one more language
    encoder: Callable  # (folder, device, fallback) -> an encoder (a FrozenClip subclass)
    train_config: Callable | None  # () -> the typed config dataclass `train` takes
    extend_config: Callable  # () -> the typed config dataclass `extend` takes
    sequence_hint: str = ""


METHODS: Registry[Method] = Registry("method", __name__)


def register(method: Method) -> Method:
    return METHODS.register(method.name, method)


def get_method(name: str) -> Method:
    return METHODS.get(name)


def method_of(folder: Path) -> Method:
    """The method that made an extension folder (its extension.json says)."""
    return get_method(method_name(folder))


def encoder_for(folder: Path, device: str | None = None, fallback: str = "none"):
    return method_of(folder).encoder(folder, device, fallback)
