"""MLA training: stages NLT (MSE to the frozen English teacher) and LE (image-text InfoNCE).

Each stage's objective can be swapped for the paper's Table 9 ablation (`LoopConfig.nlt_loss`,
`LoopConfig.le_loss`: "mse" or "nce"); the defaults are the paper's.

`run_stages` is the one loop both `train` (the shared block and every language's pack) and
`extend` (one new pack, shared block frozen) use. Batches mix languages; each language's
captions go through its own pack. Trainer state (trainable weights + AdamW moments, safetensors)
is saved every `checkpoint_every` steps, and batches are a function of (seed, stage, step), so a
resumed run ends with the same weights as an uninterrupted one.

Under torchrun each step's global batch is split across the ranks, each rank embeds its share,
the shares are gathered (with gradients) and every rank computes the loss of the whole batch, so
N processes train the same weights as one process with the same --batch-size. `grad_accum` splits
each rank's share into micro-batches without changing the loss: the other micro-batches'
embeddings are computed once without gradients and stand in for them (InfoNCE keeps every
negative of the global batch).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlclip_cli import faults
from mlclip_cli.errors import MlclipError
from mlclip_cli.metrics import retrieval_metrics
from mlclip_cli.core.encoding import encode_grouped
from mlclip_cli.core.pairs import PairData, Validation
from mlclip_cli.mla.model import MlaTextEncoder
from mlclip_cli.mla.tokenizer import TextTokenizer
from mlclip_cli.training import distributed
from mlclip_cli.training.checkpoint import load_trainer_state, read_trainer_state, save_trainer_state
from mlclip_cli.training.interrupts import Interrupted, deferred_interrupts
from mlclip_cli.training.pretrain import attention_kernel

_log = logging.getLogger(__name__)  # the CLI prints these as "note:" lines
STAGE_CHOICES = ("nlt", "le", "nlt+le", "nlt,le", "nlt,nlt+le")
LOSS_CHOICES = ("mse", "nce")
# Loop settings added after the first release: left out of the resume fingerprint at their
# defaults, so an unfinished run of an older version still resumes.
_LATER_DEFAULTS = {"nlt_loss": "mse", "le_loss": "nce", "grad_accum": 1}
# How often state is saved by time changes nothing the run computes: never part of the fingerprint.
_NOT_FINGERPRINTED = ("checkpoint_seconds",)


@dataclass(frozen=True)
class StageConfig:
    steps: int
    lr: float
    warmup: float = 0.1  # fraction of the stage's steps with a linear warm-up (then cosine decay)


# World-sized defaults: the tiny CLIP learns the world's languages in about a thousand steps. (The
# paper's, for ViT-B/32 on CC300K at batch 128: NLT 117,150 steps at lr 1e-4, LE 11,715 at 3e-6;
# pass them with --nlt-steps/--nlt-lr/--le-steps/--le-lr.)
WORLD_NLT = StageConfig(steps=1800, lr=2e-3, warmup=0.05)  # 1800 (was 900): es, it, fr +1-2.5 val R@1; docs/benchmarks.md
WORLD_LE = StageConfig(steps=100, lr=1e-4, warmup=0.1)
# A real text-only teacher (MiniLM, 6 layers) on real parallel text: 0.64 s a step of 64 on 2 cores,
# so a three-language run takes 8 minutes end to end (measured; the budget is 30).
TEXT_NLT = StageConfig(steps=1300, lr=1e-3, warmup=0.05)  # 1300: above multilingual-e5-small on Multi30K de/fr/cs in 14.7 min (docs/benchmarks.md)
TEXT_BATCH = 64


@dataclass(frozen=True)
class LoopConfig:
    stages: str = "nlt,le"
    nlt: StageConfig = WORLD_NLT
    le: StageConfig = WORLD_LE
    batch_size: int = 128
    tau: float = 0.01
    weight_decay: float = 0.01
    seed: int = 0
    eval_every: int = 1000  # and always at the end of each stage
    checkpoint_every: int = 200  # steps per loss window of the history (and a checkpoint, unless by time)
    checkpoint_seconds: float | None = 60.0  # checkpoint when this long has passed since the last (None: by steps)
    nlt_loss: str = "mse"  # NLT's objective: mse (the paper's) or nce (InfoNCE to the batch's teacher embeddings)
    le_loss: str = "nce"  # LE's objective: nce (the paper's) or mse (squared distance to its own image's feature)
    grad_accum: int = 1  # micro-batches per rank and step (the same loss: see the module's docstring)


@dataclass
class LoopResult:
    steps: int = 0
    seconds: float = 0.0
    history: list = field(default_factory=list)  # [stage, step, mean loss over the window]
    val: dict[str, dict[str, float]] = field(default_factory=dict)  # language -> last val metrics
    resumed_from: str | None = None  # "stage 2 of 2 (le) at step 40"
    nothing_to_resume: bool = False  # --resume was given, and there was no unfinished run: it started afresh


def parse_stages(stages: str) -> list[tuple[str, ...]]:
    """'nlt,le' -> [('nlt',), ('le',)]; 'nlt+le' is one stage with both losses."""
    if stages not in STAGE_CHOICES:
        raise MlclipError(f"unknown --stages '{stages}' (choose {', '.join(STAGE_CHOICES)})")
    return [tuple(part.split("+")) for part in stages.split(",")]


def check_losses(config: LoopConfig) -> None:
    for name, value in (("nlt-loss", config.nlt_loss), ("le-loss", config.le_loss)):
        if value not in LOSS_CHOICES:
            raise MlclipError(f"unknown --{name} '{value}' (choose {', '.join(LOSS_CHOICES)})")


def stage_schedule(config: LoopConfig, index: int, losses: tuple[str, ...]) -> StageConfig:
    """The first stage runs on the NLT schedule unless it is LE alone; later stages on LE's."""
    return config.nlt if index == 0 and "nlt" in losses else config.le


def _lr_at(step: int, stage: StageConfig) -> float:
    warm = max(1, int(stage.warmup * stage.steps))
    if step < warm:
        return stage.lr * (step + 1) / warm
    return stage.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, stage.steps - warm)))


def _info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE between matching rows of a and b, the other rows as negatives."""
    logits = a @ b.T / tau
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def losses_for(student: torch.Tensor, rows: np.ndarray, data: PairData, losses: tuple[str, ...],
               tau: float, device: torch.device, nlt_loss: str = "mse", le_loss: str = "nce") -> torch.Tensor:
    student = F.normalize(student, dim=-1)
    total = student.new_zeros(())
    if "nlt" in losses:
        teacher = torch.from_numpy(data.teacher_of(rows)).to(device)
        if nlt_loss == "mse":  # squared distance to the frozen teacher's (normalised) English embedding
            total = total + (student - teacher).pow(2).sum(-1).mean()
        elif nlt_loss == "nce":  # symmetric InfoNCE against the batch's teacher embeddings
            total = total + _info_nce(student, F.normalize(teacher, dim=-1), tau)
        else:
            raise MlclipError(f"unknown --nlt-loss '{nlt_loss}' (choose {', '.join(LOSS_CHOICES)})")
    if "le" in losses:
        image = torch.from_numpy(data.image_of(rows)).to(device)
        if le_loss == "nce":  # symmetric InfoNCE against frozen image features, negatives = the batch
            total = total + _info_nce(student, image, tau)
        elif le_loss == "mse":  # squared distance to its own image's (normalised) feature
            total = total + (student - F.normalize(image, dim=-1)).pow(2).sum(-1).mean()
        else:
            raise MlclipError(f"unknown --le-loss '{le_loss}' (choose {', '.join(LOSS_CHOICES)})")
    return total


@torch.no_grad()
def validate(encoder: MlaTextEncoder, tokenizers: dict[str, TextTokenizer], validation: Validation,
             device: torch.device, batch: int = 500) -> dict[str, dict[str, float]]:
    was_training = encoder.training
    encoder.eval()
    results = {}
    for language, captions in validation.captions.items():
        blocks = []
        for start in range(0, len(captions), batch):
            chunk = captions[start:start + batch]
            emb = encode_grouped(encoder, tokenizers, chunk, np.array([language] * len(chunk)), device)
            blocks.append(F.normalize(emb, dim=-1).float().cpu().numpy())
        results[language] = retrieval_metrics(np.concatenate(blocks), validation.image, validation.caption_image[language])
    encoder.train(was_training)
    return results


def _optimizer(trainable: torch.nn.Module, schedule: StageConfig, config: LoopConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW([p for p in trainable.parameters() if p.requires_grad], lr=schedule.lr,
                             betas=(0.9, 0.999), eps=1e-8, weight_decay=config.weight_decay)


def _fingerprint(config: LoopConfig, extra: dict) -> str:
    loop = {k: v for k, v in asdict(config).items() if (k not in _LATER_DEFAULTS or v != _LATER_DEFAULTS[k])
            and k not in _NOT_FINGERPRINTED}
    return json.dumps({"loop": loop, **extra}, sort_keys=True, default=str)


def run_stages(encoder: MlaTextEncoder, trainable: torch.nn.Module, tokenizers: dict[str, TextTokenizer],
               data: PairData, config: LoopConfig, state_dir: Path, fingerprint: dict,
               validation: Validation | None = None, device: torch.device | None = None,
               resume: bool = False,
               on_step: Callable[[str, int, int, float], None] | None = None,
               on_eval: Callable[[str, int, dict], None] | None = None) -> LoopResult:
    """Train `trainable` (a part of `encoder`) through the configured stages."""
    device = device or torch.device("cpu")
    stages = parse_stages(config.stages)
    check_losses(config)
    print_key = _fingerprint(config, fingerprint)
    result = LoopResult()
    stage_index, start_step = 0, 0
    check_resumable(state_dir, resume, state_dir.parent)
    saved = read_trainer_state(state_dir)
    if saved is not None:
        if saved.get("fingerprint") != print_key:
            raise MlclipError(f"{state_dir.parent}: the unfinished run there used other settings or data; "
                              "resume it with the same options, or choose another --out")
        stage_index, start_step = int(saved["stage"]), int(saved["step"])
        result.history = saved.get("history", [])
        result.resumed_from = f"stage {stages_label(stages, stage_index)} at step {start_step}"
        _log.info(f"{state_dir.parent}: resuming {result.resumed_from}")
    elif resume:
        result.nothing_to_resume = True  # the CLI says so (the demo resumes whenever it can, quietly)
    runtime = distributed.current(str(device))
    if config.batch_size < runtime.world_size * max(1, config.grad_accum):
        raise MlclipError(f"--batch-size {config.batch_size} is smaller than processes x --grad-accum "
                          f"({runtime.world_size} x {config.grad_accum})")
    student = _Student(encoder, tokenizers, device)
    ddp_student = distributed.wrap(student, runtime, find_unused_parameters=True)  # a rank may lack a language
    distributed.seed(config.seed, runtime)
    began = time.perf_counter()
    trainable.train()
    with deferred_interrupts() as stop:
        _loop_stages(encoder, trainable, tokenizers, data, config, state_dir, validation, device, stages, stage_index,
                     start_step, print_key, result, runtime, student, ddp_student, stop, on_step, on_eval)
    result.seconds = time.perf_counter() - began
    if validation is not None and not result.val and runtime.is_main:
        result.val = validate(encoder, tokenizers, validation, device)
    distributed.barrier()  # every rank has finished before rank 0 writes the packs
    return result


def stages_label(stages: list[tuple[str, ...]], index: int) -> str:
    return f"{index + 1} of {len(stages)} ({'+'.join(stages[index])})"


def _loop_stages(encoder, trainable, tokenizers, data, config: LoopConfig, state_dir: Path, validation, device,
                 stages, stage_index: int, start_step: int, print_key: str, result: LoopResult, runtime, student,
                 ddp_student, stop, on_step, on_eval) -> None:
    def save(optimizer, stage: int, step: int) -> None:
        if runtime.is_main:
            save_trainer_state(trainable, optimizer, state_dir, {
                "stage": stage, "step": step, "history": result.history, "fingerprint": print_key})

    last_save = time.monotonic()
    for index in range(stage_index, len(stages)):
        losses = stages[index]
        name = "+".join(losses)
        if "nlt" in losses and data.teacher is None or "le" in losses and data.image is None:
            raise MlclipError(f"stage {name} needs {'teacher' if 'nlt' in losses else 'image'} features")
        schedule = stage_schedule(config, index, losses)
        optimizer = _optimizer(trainable, schedule, config)
        first = start_step if index == stage_index else 0
        if index == stage_index and result.resumed_from:
            load_trainer_state(trainable, optimizer, state_dir)
        window: list[float] = []
        for step in range(first, schedule.steps):
            if distributed.any_rank(stop.requested, runtime):  # between steps: the state is whole
                save(optimizer, index, step)
                distributed.barrier()
                raise Interrupted(f"interrupted ({stop.name or 'by another rank'}) at step {step} of stage "
                                  f"{stages_label(stages, index)}; its state is saved: rerun with --resume")
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, schedule)
            rows = data.batch(step, config.batch_size, config.seed * 1000 + index)
            optimizer.zero_grad(set_to_none=True)
            with attention_kernel(device):
                loss = _step_loss(student, ddp_student, data, rows, losses, config, device, runtime)
            optimizer.step()
            window.append(loss)
            result.steps += 1
            faults.point(f"{name} step {step + 1}")
            if on_step:
                on_step(name, step + 1, schedule.steps, window[-1])
            last = step + 1 == schedule.steps
            if validation is not None and runtime.is_main and ((step + 1) % config.eval_every == 0 or last):
                result.val = validate(encoder, tokenizers, validation, device)
                if on_eval:
                    on_eval(name, step + 1, result.val)
            window_ends = (step + 1) % config.checkpoint_every == 0
            if window_ends and not last:
                result.history.append([name, step + 1, float(np.mean(window))])
                window = []
            due = (time.monotonic() - last_save >= config.checkpoint_seconds if config.checkpoint_seconds is not None
                   else window_ends)
            if due and not last:
                save(optimizer, index, step + 1)
                last_save = time.monotonic()
        if window:
            result.history.append([name, schedule.steps, float(np.mean(window))])
        if index + 1 < len(stages):  # the next stage starts from these weights, a fresh optimiser
            save(_optimizer(trainable, schedule, config), index + 1, 0)


class _Student(torch.nn.Module):
    """A (micro-)batch's captions -> embeddings in one forward, so DDP sees one forward per backward."""

    def __init__(self, encoder: MlaTextEncoder, tokenizers: dict[str, TextTokenizer], device: torch.device):
        super().__init__()
        self.encoder, self.tokenizers, self.device = encoder, tokenizers, device

    def forward(self, captions: list[str], languages: np.ndarray) -> torch.Tensor:
        with distributed.autocast(self.device):
            return encode_grouped(self.encoder, self.tokenizers, captions, languages, self.device).float()


def _step_loss(student: _Student, ddp_student: torch.nn.Module, data: PairData, rows: np.ndarray,
               losses: tuple[str, ...], config: LoopConfig, device: torch.device, runtime) -> float:
    """Back-propagate the loss of the global batch `rows` (this rank embeds its share); its value."""
    mine, sizes = distributed.local_part(rows, runtime)
    micro = np.array_split(mine, max(1, min(config.grad_accum, min(sizes))))  # the same count on every rank

    def loss_of(pieces: list[torch.Tensor]) -> torch.Tensor:
        full = distributed.gather_rows(torch.cat(pieces), sizes, runtime)
        return losses_for(full, rows, data, losses, config.tau, device, config.nlt_loss, config.le_loss)

    def embed(module, part: np.ndarray) -> torch.Tensor:
        return module(data.captions_of(part), data.languages[part])

    if len(micro) == 1:
        loss = loss_of([embed(ddp_student, mine)])
        loss.backward()
        return loss.item()
    with torch.no_grad():
        cached = [embed(student, part) for part in micro]
    for i, part in enumerate(micro):
        with distributed.no_sync(ddp_student) if i + 1 < len(micro) else contextlib.nullcontext():
            loss = loss_of(cached[:i] + [embed(ddp_student, part)] + cached[i + 1:])
            loss.backward()  # d(loss)/d(this micro-batch): summed over micro-batches, the full gradient
    return loss.item()


def check_resumable(state_dir: Path, resume: bool, where: Path) -> None:
    """Refuse, before any work, to start over a killed run unless told to resume it."""
    saved = read_trainer_state(state_dir) if not resume else None
    if saved is not None:
        raise MlclipError(f"{where} holds an unfinished run (stopped at stage {saved.get('stage', 0) + 1}, "
                          f"step {saved.get('step')}); pass --resume to continue it, or choose another --out")


def clear_state(state_dir: Path) -> None:
    """Remove a finished run's resumable state: the weights first (they mark it resumable)."""
    for name in ("trainer_state.safetensors", "trainer_state.json", "tokenizer.json"):
        (state_dir / name).unlink(missing_ok=True)
    empty = [state_dir] + ([state_dir.parent] if state_dir.parent.name == "state" else [])  # extend: state/<lang>
    for folder in empty:
        with contextlib.suppress(OSError):  # not empty: another language's unfinished run lives there
            folder.rmdir()
