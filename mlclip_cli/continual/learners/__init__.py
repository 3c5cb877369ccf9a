"""The learners of the cll-clip method (one module each): what a step trains and what holds
earlier languages.

Every learner trains CLIP's token table (CLL-CLIP) and may add a trainable part (MLA's
acquirers, a copy of the whole tower), a penalty (online EWC), distillation (LwF) or replayed
captions (ER); TEIR combines with any of them. `joint` is the upper bound: every language at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mlclip_cli.registry import Registry


@dataclass
class Batch:
    captions: list[str]
    languages: np.ndarray
    teacher: torch.Tensor  # [n, dim] frozen English embedding of each caption's parallel English caption
    image: torch.Tensor  # [n, dim] frozen image feature
    image_ids: np.ndarray  # positives: captions of one image

    def __len__(self) -> int:
        return len(self.captions)

    def take(self, rows: np.ndarray) -> "Batch":
        """These rows of the batch (a rank's share under torchrun)."""
        index = torch.as_tensor(rows, dtype=torch.long)
        return Batch([self.captions[i] for i in rows], self.languages[rows], self.teacher[index.to(self.teacher.device)],
                     None if self.image is None else self.image[index.to(self.image.device)], self.image_ids[rows])

    def cat(self, other: "Batch") -> "Batch":
        return Batch(self.captions + other.captions, np.concatenate([self.languages, other.languages]),
                     torch.cat([self.teacher, other.teacher]), torch.cat([self.image, other.image]),
                     np.concatenate([self.image_ids, other.image_ids]))


@dataclass
class Settings:
    """The learner knobs of a run (recorded in its extension.json)."""

    ewc_lambda: float = 1000.0  # CLFM's online-EWC weight
    ewc_gamma: float = 1.0  # decay of earlier tasks' Fisher information
    fisher_batches: int = 8
    memory: int = 8000  # ER: captions kept from earlier tasks (CLFM's budget)
    replay_fraction: float = 0.25  # ER: memory captions added to a batch, relative to its size
    lwf_weight: float = 1.0
    tower_lr: float = 5e-4  # full fine-tuning: the copied tower's lr (the table keeps its own)


class Learner:
    name = ""
    summary = ""
    acquirers = False  # MLA: per-language acquirers, routed by the caption's language
    train_tower = False  # full fine-tuning
    joint = False  # all languages in one task

    def __init__(self, settings: Settings):
        self.settings = settings

    def start_task(self, encoder, languages: list[str], task: int) -> None:
        """Before a task's first step (after the vocabulary grew)."""

    def replay(self, step: int, size: int, seed: int) -> Batch | None:
        return None

    def penalty(self, encoder, batch: Batch, student: torch.Tensor, encode) -> torch.Tensor | None:
        """An extra loss term; `encode(batch)` runs the current encoder (LwF re-runs an old one)."""
        return None

    def end_task(self, encoder, data, languages: list[str], task: int, gradient_of) -> None:
        """After a task's last step; `gradient_of(batch_index)` gives the table's loss gradient."""

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {}, {}

    def load_state(self, tensors: dict[str, torch.Tensor], info: dict) -> None:
        """Restore what `state` saved (a resumed run)."""


LEARNERS: Registry[type[Learner]] = Registry("learner", __name__)


def register(learner: type[Learner]) -> type[Learner]:
    return LEARNERS.register(learner.name, learner)


def learner_names() -> list[str]:
    return LEARNERS.names()


def get_learner(name: str, settings: Settings | None = None) -> Learner:
    return LEARNERS.get(name)(settings or Settings())
