"""`run_continual`: teach a frozen CLIP's text tower a sequence of languages, one task each.

Per task: grow the vocabulary (CLIP's BPE continued on the new language, English and earlier
languages protected), append rows (TEIR: from the table's own distribution), train with MSE to
the frozen English teacher + 0.01 x InfoNCE against frozen image features (learnable
temperature), update TEIR's token usage, bench every language seen so far on the test split,
and write the state (a loadable extension) before the next language starts. A killed run
resumes from the last finished language.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlclip_cli import faults
from mlclip_cli.artifacts import read_manifest
from mlclip_cli.atomic import write_json
from mlclip_cli.continual import snapshot
from mlclip_cli.training import distributed
from mlclip_cli.continual.learners import Batch, Learner, Settings, get_learner
from mlclip_cli.continual.model import ContinualTextEncoder
from mlclip_cli.continual.scores import METRICS, plot_aa_f, plot_heatmap, sequence_summary
from mlclip_cli.continual.teir import RowScaledStep, TeirConfig, grow_usage, initial_usage, new_rows, row_scales
from mlclip_cli.continual.hf_vocab import vocabulary_for
from mlclip_cli.continual.vocab import ClipVocabulary
from mlclip_cli.core.encoding import encode_grouped
from mlclip_cli.core.extension import git_revision, now
from mlclip_cli.core import stream
from mlclip_cli.core.pairs import (PAIR_COLUMNS, PairData, Validation, choose_split, evaluation_set, load_pairs,
                                   select_rows)
from mlclip_cli.core.towers import tower_of, tower_sha256
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.errors import MlclipError
from mlclip_cli.locks import writer_lock
from mlclip_cli.metrics import retrieval_metrics
from mlclip_cli.training.interrupts import Interrupted, deferred_interrupts
from mlclip_cli.training.pretrain import attention_kernel

_log = logging.getLogger(__name__)  # the CLI prints these as "note:" lines
VOCAB_BUDGET = 10_000  # CLFM's BPE size per language
# Distinct captions per language that its BPE is learnt from, that TEIR counts as its corpus, and
# that are protected afterwards: CLIP's cleaning (ftfy) costs ~0.2 ms a caption in Python, and the
# world's words are all in far fewer captions than this.
VOCAB_SAMPLE = 20_000


@dataclass(frozen=True)
class TaskLoop:
    steps: int = 100  # per language (joint: times the number of languages)
    lr: float = 5e-3
    warmup: float = 0.1  # then constant, as CLFM
    batch_size: int = 128
    weight_decay: float = 0.05
    eps: float = 1e-6
    mse_weight: float = 1.0
    nce_weight: float = 0.01
    seed: int = 0


# CLFM's lr, 5e-5 (3 epochs a language on XM3600 / CC3M-translated captions), learns far too slowly
# for the world's budget of steps (see docs/benchmarks.md): pass it with --lr for real runs.
# A real text-only teacher (MiniLM): 0.65 s a step of 64 on 2 cores, three languages in 7.4 min (measured).
TEXT_LOOP = TaskLoop(steps=200, lr=1e-3, batch_size=64)


@dataclass(frozen=True)
class ContinualConfig:
    manifest: Path
    out: Path  # run folder: extension/ (the state), results.json, PNGs
    order: tuple[str, ...]
    features_root: Path
    learner: str = "cll-clip"  # continual/learners: the plain table, or a baseline (ewc, er, lwf, mla, full-ft, joint)
    teir: TeirConfig = field(default_factory=TeirConfig)
    model: str = "mlclip-tiny"
    test_manifest: Path | None = None  # None: no per-step bench
    test_split: str = "test"
    loop: TaskLoop = field(default_factory=TaskLoop)
    settings: Settings = field(default_factory=Settings)
    vocab_budget: int = VOCAB_BUDGET
    dynamic_vocab: bool = True
    split_han: bool = True  # each Han/kana character its own word before BPE (see vocab.py; measured in benchmarks.md)
    cjk: str = "words"  # words: Chinese and Japanese split into words first (text_segment.py; before split_han)
    split: str | None = None  # training split (None: train when there is one)
    resume: bool = False  # continue an unfinished run (or reuse a finished one)
    keep_steps: bool = False  # also keep each step's state under steps/
    device: str | None = None


@dataclass
class TaskRecord:
    languages: list[str]
    steps: int
    seconds: float
    new_tokens: dict[str, int]
    vocabulary: dict[str, str]
    scores: dict[str, dict[str, float]]  # language -> test metrics after this task
    loss: float


@dataclass
class ContinualResult:
    out: Path
    extension: Path
    order: list[str]
    learner: str
    teir: str
    tasks: list[TaskRecord]
    summary: dict  # scores.sequence_summary
    trainable_parameters: int
    seconds: float
    resumed_from: int = 0  # tasks already done when this call started
    json_path: Path | None = None
    plots: list[Path] = field(default_factory=list)
    text_only: bool = False  # a text-only teacher: scores are text to text (caption -> its English sentence)


def check_order(order: tuple[str, ...]) -> list[str]:
    if not order:
        raise MlclipError("name the languages to learn, in order (--order en,de,fr)")
    repeated = sorted({lang for lang in order if order.count(lang) > 1})
    if repeated:
        raise MlclipError(f"--order names {', '.join(repeated)} more than once")
    return list(order)


def _fingerprint(config: ContinualConfig) -> str:
    # "method" is the learner's old key: kept so that an unfinished run of an earlier version resumes
    keys = {"order": list(config.order), "method": config.learner, "teir": asdict(config.teir), "model": config.model,
            "loop": asdict(config.loop), "settings": asdict(config.settings), "vocab_budget": config.vocab_budget,
            "dynamic_vocab": config.dynamic_vocab, "split_han": config.split_han, "cjk": config.cjk, "split": config.split,
            "manifest": str(Path(config.manifest).resolve())}
    return json.dumps(keys, sort_keys=True)


def _canonical(fingerprint: str | None) -> dict:
    """A fingerprint's settings, with TEIR's regulariser options left out when the regulariser is
    off (they change nothing then, and their defaults may change between versions)."""
    try:
        keys = json.loads(fingerprint or "{}")
    except json.JSONDecodeError:
        return {}
    keys.setdefault("cjk", "chars")  # a run saved before the choice split characters
    teir = keys.get("teir")
    if isinstance(teir, dict) and not teir.get("reg"):
        keys["teir"] = {k: v for k, v in teir.items() if k not in ("reg_on", "freq")}
    return keys


def _differences(saved: str | None, config: ContinualConfig) -> list[str]:
    """The settings in which a saved run differs from `config` (empty: the same run)."""
    old, new = _canonical(saved), _canonical(_fingerprint(config))
    if not old:
        return ["all settings"]
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def settings_match(config: ContinualConfig) -> bool:
    """Whether `config.out` holds no run, or a run of these settings (which --resume reuses)."""
    state_dir = Path(config.out) / "extension"
    if not snapshot.exists(state_dir):
        return True
    return not _differences(snapshot.read(state_dir).record.get("fingerprint"), config)


def _batch(data: PairData, rows: np.ndarray, device: torch.device) -> Batch:
    image = None if data.image is None else torch.from_numpy(data.image[rows]).to(device)  # None: a text-only teacher
    return Batch([data.captions[r] for r in rows], data.languages[rows], torch.from_numpy(data.teacher[rows]).to(device),
                 image, data.image_ids[rows])


def task_loss(student: torch.Tensor, batch: Batch, temperature: torch.Tensor, loop: TaskLoop) -> torch.Tensor:
    """CLFM's loss: squared distance of normalised embeddings to the English teacher, + InfoNCE
    both ways against the frozen image features, every caption of an image a positive."""
    text = F.normalize(student, dim=-1)
    mse = (text - batch.teacher.to(text.device)).pow(2).sum(-1).mean()
    if batch.image is None:  # a text-only teacher: the NLT loss alone
        return loop.mse_weight * mse
    image = batch.image.to(text.device)
    logits = text @ image.T / temperature
    same = torch.from_numpy(batch.image_ids[:, None] == batch.image_ids[None, :]).to(text.device)

    def one_way(scores: torch.Tensor) -> torch.Tensor:
        return (torch.logsumexp(scores, 1) - torch.logsumexp(scores.masked_fill(~same, float("-inf")), 1)).mean()

    return loop.mse_weight * mse + loop.nce_weight * (one_way(logits) + one_way(logits.T)) / 2


class _Run:
    """One sequence's live state: the encoder, vocabulary, usage counts and learner."""

    def __init__(self, config: ContinualConfig, learner: Learner, base, vocabulary: ClipVocabulary):
        self.config, self.learner, self.base, self.vocabulary = config, learner, base, vocabulary
        self.device = base.device
        self.encoder = ContinualTextEncoder(base.clip.model, vocabulary.vocab_size, train_tower=learner.train_tower)
        self.encoder.to(self.device)
        self.usage = initial_usage(self.encoder.clip_rows)
        self.special = [vocabulary.sot, vocabulary.eot]
        # The base tower's hash (full fine-tuning trains a copy, whose hash would differ).
        self.base_tower_sha256 = tower_sha256(tower_of(base.clip.model))

    def tokenizers(self, languages) -> dict:
        return {language: self.vocabulary for language in dict.fromkeys(languages)}

    def encode(self, batch: Batch, table: torch.Tensor | None = None) -> torch.Tensor:
        encoder = self.encoder if table is None else _WithTable(self.encoder, table)
        return encode_grouped(encoder, self.tokenizers(batch.languages.tolist()), batch.captions, batch.languages,
                              self.device)

    def grow(self, language: str, texts: list[str], task: int) -> tuple[int, str]:
        if language == "en" or not self.config.dynamic_vocab:
            return 0, "CLIP's own vocabulary" if language == "en" else "CLIP's vocabulary (dynamic vocabulary off)"
        learnt = self.vocabulary.learn(language, texts, self.config.vocab_budget)
        generator = torch.Generator().manual_seed(self.config.loop.seed * 1000 + task)
        rows = new_rows(self.encoder.table, len(learnt.new_tokens), self.config.teir, generator)
        self.encoder.grow(rows)
        self.usage = grow_usage(self.usage, len(learnt.new_tokens))
        return len(learnt.new_tokens), learnt.note

    def used_rows(self, texts: list[str]) -> torch.Tensor:
        used = torch.zeros(self.vocabulary.vocab_size, dtype=torch.bool)
        used[sorted(self.vocabulary.token_set(texts))] = True
        return used

    def optimizer(self, languages: list[str]) -> torch.optim.AdamW:
        loop, encoder = self.config.loop, self.encoder
        groups = [{"params": [encoder.table], "weight_decay": 0.0, "lr": loop.lr},  # decay applied per row by RowScaledStep
                  {"params": [encoder.logit_scale], "weight_decay": 0.0, "lr": loop.lr}]
        acquirers = [p for lang in languages if lang in encoder.acquirers for p in encoder.acquirers[lang].parameters()]
        if acquirers:
            groups.append({"params": acquirers, "weight_decay": loop.weight_decay, "lr": loop.lr})
        if encoder.tower_copy is not None:
            groups.append({"params": list(encoder.tower_copy.parameters()), "weight_decay": loop.weight_decay,
                           "lr": self.config.settings.tower_lr})
        for group in groups:
            group["base_lr"] = group["lr"]
        return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=loop.eps, fused=True)  # one kernel: 9x faster on CPU

    def train_task(self, data: PairData, languages: list[str], task: int, steps: int, scale: torch.Tensor,
                   on_step: Callable | None, label: str, stop=None) -> float:
        loop = self.config.loop
        self.encoder.train()
        optimizer = self.optimizer(languages)
        step_table = RowScaledStep(self.encoder.table, loop.weight_decay, self.config.teir if self.config.teir.reg else None,
                                   scale, self.usage)
        warm = max(1, int(loop.warmup * steps))
        seed = loop.seed * 1000 + task
        runtime = distributed.current(str(self.device))
        ddp_student = distributed.wrap(_Student(self), runtime, find_unused_parameters=True)
        losses = []
        for step in range(steps):
            if stop is not None and distributed.any_rank(stop.requested, runtime):
                kept = f"the state after {task} finished task(s) is kept" if task else "no task had finished"
                raise Interrupted(f"interrupted ({stop.name or 'by another rank'}) at step {step} of {steps} of task "
                                  f"{label}; {kept}: rerun with --resume")
            factor = min(1.0, (step + 1) / warm)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            batch = _batch(data, data.batch(step, loop.batch_size, seed), self.device)
            extra = self.learner.replay(step, loop.batch_size, seed)
            if extra is not None:
                batch = batch.cat(extra)
            mine, sizes = distributed.local_part(np.arange(len(batch)), runtime)
            local = batch.take(mine) if runtime.distributed else batch
            with attention_kernel(self.device):
                student, temperature = ddp_student(local)
                # every rank: the loss of the whole global batch (shares gathered with gradients)
                loss = task_loss(distributed.gather_rows(student, sizes, runtime), batch, temperature, loop)
                penalty = self.learner.penalty(self.encoder, local, student, self.encode)  # a per-rank mean
                if penalty is not None:
                    loss = loss + penalty
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            step_table(optimizer, loop.lr * factor)
            losses.append(loss.item())
            faults.point(f"task {label} step {step + 1}")
            if on_step:
                on_step(label, step + 1, steps, losses[-1])
        return float(np.mean(losses[-20:])) if losses else float("nan")

    def gradient_of(self, data: PairData, task: int):
        def gradient(index: int) -> torch.Tensor:
            batch = _batch(data, data.batch(10_000 + index, self.config.loop.batch_size, self.config.loop.seed * 1000 + task),
                           self.device)
            self.encoder.zero_grad(set_to_none=True)
            with attention_kernel(self.device):
                task_loss(self.encode(batch), batch, self.encoder.temperature(), self.config.loop).backward()
            grad = self.encoder.table.grad.detach().clone()
            self.encoder.zero_grad(set_to_none=True)
            return grad
        return gradient

    @torch.no_grad()
    def evaluate(self, test: Validation | None, languages: list[str]) -> dict[str, dict[str, float]]:
        if test is None:
            return {}
        self.encoder.eval()
        scores = {}
        for language in languages:
            captions = test.captions[language]
            blocks = []
            for start in range(0, len(captions), 500):
                chunk = captions[start:start + 500]
                batch = Batch(chunk, np.array([language] * len(chunk)), torch.empty(0), torch.empty(0), np.array([]))
                with attention_kernel(self.device):
                    blocks.append(F.normalize(self.encode(batch), dim=-1).float().cpu().numpy())
            scores[language] = retrieval_metrics(np.concatenate(blocks), test.image, test.caption_image[language])
        return scores

    def weights(self) -> dict[str, torch.Tensor]:
        return self.encoder.state_dict()

    def load(self, state: snapshot.Snapshot) -> None:
        for language in state.info["encoder"].get("acquirers", []):
            self.encoder.add_acquirers(language)
        vocab_rows = state.weights["table"].shape[0]
        self.encoder.grow(torch.zeros(vocab_rows - len(self.encoder.table), self.encoder.table.shape[1]))
        self.encoder.load_state_dict(state.weights)
        self.usage = state.usage.clone()
        self.learner.load_state(state.learner_tensors, state.learner_info)


class _Student(torch.nn.Module):
    """A batch -> (embeddings, temperature) in one forward, so DDP sees every trained parameter used."""

    def __init__(self, run: _Run):
        super().__init__()
        self.encoder = run.encoder
        self._run = [run]  # not a submodule

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        with distributed.autocast(self._run[0].device):
            return self._run[0].encode(batch).float(), self.encoder.temperature()


class _WithTable(torch.nn.Module):
    """The encoder run with another token table (LwF's model before this task)."""

    def __init__(self, encoder: ContinualTextEncoder, table: torch.Tensor):
        super().__init__()
        self.inner, self.table = encoder, table

    @property
    def tower(self):
        return self.inner.tower

    def forward(self, ids, lengths, segments=None):
        return self.inner(ids, lengths, segments, table=self.table)


def _texts(rows, language: str) -> list[str]:
    """Distinct training captions of `language` (at most VOCAB_SAMPLE): what its BPE learns from."""
    captions = rows[rows.language == language].caption.drop_duplicates()
    return captions.sample(min(VOCAB_SAMPLE, len(captions)), random_state=0).tolist()


def _info(config: ContinualConfig, run: _Run, learner: Learner, languages: list[str]) -> dict:
    encoder = run.encoder
    return {
        "learner": learner.name, "teir": asdict(config.teir), "teir_label": config.teir.label,
        "base_model": config.model, "base_identity": run.base.clip.identity, "tower_sha256": run.base_tower_sha256,
        "languages": languages, "trained_tower": learner.train_tower,
        "encoder": {"vocab_size": int(encoder.table.shape[0]), "width": int(encoder.table.shape[1]),
                    "clip_rows": encoder.clip_rows, "hidden": encoder.hidden, "acquirers": list(encoder.acquirers),
                    "context_length": encoder.tower.context_length},
        "settings": asdict(config.settings), "loop": asdict(config.loop), "vocab_budget": config.vocab_budget,
        "dynamic_vocab": config.dynamic_vocab, "split_han": config.split_han, "cjk": config.cjk,
    }


def run_continual(config: ContinualConfig, progress: Callable | None = None, on_step: Callable | None = None,
                  on_task: Callable[[int, TaskRecord], None] | None = None) -> ContinualResult:
    """Run (or resume) the sequence `config.order`; returns its scores and writes results.json,
    heatmaps and the AA/F plot next to the extension folder (OUT/extension)."""
    order = check_order(config.order)
    learner = get_learner(config.learner, config.settings)
    with writer_lock(config.out, "continual run"):  # before recover: a live writer's swap is its own
        return _run(config, order, learner, progress, on_step, on_task)


def _run(config: ContinualConfig, order: list[str], learner: Learner, progress, on_step, on_task) -> ContinualResult:
    state_dir = Path(config.out) / "extension"
    snapshot.recover(state_dir)
    saved = snapshot.read(state_dir) if snapshot.exists(state_dir) else None
    if saved is not None:
        differ = _differences(saved.record.get("fingerprint"), config)
        if differ:
            raise MlclipError(f"{config.out} holds a continual run with other settings or data ({', '.join(differ)} "
                              "differ); choose another --out")
        done, total = len(saved.record["tasks"]), 1 if learner.joint else len(order)
        if not config.resume:
            state = "a finished" if done == total else f"an unfinished ({done} of {total} languages)"
            raise MlclipError(f"{config.out} holds {state} run of these settings; pass --resume to "
                              f"{'reuse' if done == total else 'continue'} it, or choose another --out")
    with distributed.session(config.device), deferred_interrupts() as stop:  # one process, or every torchrun rank
        return _sequence(config, learner, order, state_dir, saved, progress, on_step, on_task, stop)


@dataclass(frozen=True)
class ExtendConfig:
    extension: Path  # a continual extension folder (a run's OUT/extension)
    language: str
    manifest: Path
    features_root: Path
    test_manifest: Path | None = None
    test_split: str = "test"
    steps: int | None = None  # None: the run's steps per language
    split: str | None = None
    device: str | None = None


def extend_continual(config: ExtendConfig, progress: Callable | None = None, on_step: Callable | None = None,
                     on_task: Callable[[int, TaskRecord], None] | None = None) -> ContinualResult:
    """One more language for a continual extension, with the settings it was trained with; the
    folder is updated in place (swapped whole, so a kill leaves it as it was)."""
    with writer_lock(Path(config.extension).parent, "continual run"):  # the run folder, as `continual` locks it
        return _extend(config, progress, on_step, on_task)


def _extend(config: ExtendConfig, progress, on_step, on_task) -> ContinualResult:
    folder = Path(config.extension)
    snapshot.recover(folder)
    if not snapshot.exists(folder):
        raise MlclipError(f"{folder}: no continual extension here (make one with `mlclip continual`)")
    saved = snapshot.read(folder)
    info = saved.info
    learnt = tuple(info["languages"])
    again = config.language in learnt
    already = (f"{folder} already learnt '{config.language}' (its rows are shared with the other languages, so it "
               "cannot be replaced; start a new sequence instead)")
    if again and learnt[-1] != config.language:
        raise MlclipError(already)
    learner = get_learner(info["learner"], Settings(**info["settings"]))
    if learner.joint:
        raise MlclipError(f"{folder} is a joint-training upper bound, not a sequence: it cannot be extended")
    loop = TaskLoop(**info["loop"])
    run_config = ContinualConfig(
        manifest=config.manifest, out=folder.parent, order=learnt + (() if again else (config.language,)),
        features_root=config.features_root, learner=learner.name, teir=TeirConfig(**info["teir"]), model=info["base_model"],
        test_manifest=config.test_manifest, test_split=config.test_split,
        loop=loop if config.steps is None else replace(loop, steps=config.steps), settings=learner.settings,
        vocab_budget=info.get("vocab_budget", VOCAB_BUDGET), dynamic_vocab=info.get("dynamic_vocab", True),
        split_han=info.get("split_han", False), cjk=info.get("cjk", "chars"),
        split=config.split, resume=True, device=config.device)
    if again:  # the same command again (after a kill once its state was in place): nothing left to do
        if _differences(saved.record.get("fingerprint"), run_config):
            raise MlclipError(already)
        _log.info(f"{folder}: '{config.language}' is already its last language, learnt with these settings: "
                  "nothing to do")
    with distributed.session(config.device), deferred_interrupts() as stop:
        return _sequence(run_config, learner, list(run_config.order), folder, saved, progress, on_step, on_task, stop)


def _sequence(config: ContinualConfig, learner: Learner, order: list[str], state_dir: Path,
              saved: snapshot.Snapshot | None, progress, on_step, on_task, stop=None) -> ContinualResult:
    done = len(saved.record["tasks"]) if saved else 0
    todo = [] if learner.joint and done else (order if learner.joint else order[done:])
    # Only the rows of the languages the sequence reads (English, its order) and the pair columns are
    # held, not the whole manifest (the world's: 671,000 captions in 11 languages, ~1 GB in memory).
    # The split and languages are checked on the whole file first, so the errors name what it holds.
    split = choose_split(stream.split_counts(config.manifest), str(config.manifest), todo or order[:1], config.split)[1]
    learnt = saved.info["languages"] if saved else []
    manifest = stream.read_languages(config.manifest, list(dict.fromkeys(["en", *order, *learnt])), PAIR_COLUMNS)
    rows, split = select_rows(manifest, str(config.manifest), todo or order[:1], split)
    test_frame = None
    if config.test_manifest is not None:
        test_frame = read_manifest(config.test_manifest).to_pandas()
        present = set(test_frame[test_frame.split == config.test_split].language)
        missing = [lang for lang in order if lang not in present]
        if missing:
            raise MlclipError(f"{config.test_manifest}: no {config.test_split} rows in {', '.join(missing)}")
    torch.manual_seed(config.loop.seed)
    runtime = distributed.current(config.device)
    base = FrozenClip.load(config.model, str(runtime.device))
    vocabulary = vocabulary_for(base.clip, config.split_han, saved.vocabulary_json if saved else None, config.cjk)
    run = _Run(config, learner, base, vocabulary)
    records = [TaskRecord(**task) for task in saved.record["tasks"]] if saved else []
    seconds = saved.record.get("seconds", 0.0) if saved else 0.0
    if saved is not None:
        run.load(saved)
    resumed_from = len(records)
    test = (evaluation_set(test_frame, config.test_manifest, order, base, config.features_root, progress,
                           config.test_split) if test_frame is not None else None)
    tasks = [order] if learner.joint else [[lang] for lang in order]
    # English must tokenise exactly as in CLIP, and each learnt language as when it was learnt (the
    # vocabulary protects a corpus it learnt from; a resumed one is told again).
    for language in ["en", *vocabulary.languages]:
        vocabulary.protect(_texts(manifest, language))
    pending = [lang for task in tasks[len(records):] for lang in task]
    if not base.has_images and learner.name != "cll-clip":
        raise MlclipError(f"'{config.model}' is a text-only encoder: only --learner cll-clip runs on it (NLT loss only)")
    everything = (load_pairs(manifest, config.manifest, pending, split, True, base.has_images, base, config.features_root,
                             None, progress)[0] if pending else None)  # one read of the feature cache for every task
    del manifest  # the tasks read `rows`, the training split, only
    for task in range(len(records), len(tasks)):
        languages = tasks[task]
        began = time.perf_counter()
        new_tokens, notes = {}, {}
        for language in languages:
            new_tokens[language], notes[language] = run.grow(language, _texts(rows, language), task)
        data = everything.subset(languages)
        corpus = {language: _texts(rows, language) for language in languages}
        used = run.used_rows([t for texts in corpus.values() for t in texts])
        scale = row_scales(run.usage, used, run.special, config.teir)
        learner.start_task(run.encoder, languages, task)
        steps = config.loop.steps * len(languages)
        label = f"{task + 1}/{len(tasks)} {_task_name(languages)}"
        loss = run.train_task(data, languages, task, steps, scale, on_step, label, stop)
        for language in languages:  # TEIR usage: +1 for every row this task's language used
            run.usage[run.used_rows(corpus[language])] += 1
        learner.end_task(run.encoder, data, languages, task, run.gradient_of(data, task))
        seen = order[:order.index(languages[-1]) + 1]
        scores = run.evaluate(test, seen) if runtime.is_main else {}
        record = TaskRecord(languages, steps, 0.0, new_tokens, notes, scores, loss)
        record.seconds = time.perf_counter() - began
        seconds += record.seconds
        records.append(record)
        if runtime.is_main:
            _write_state(config, run, learner, seen, records, seconds, state_dir, split)
            if config.keep_steps:
                snapshot.keep_copy(state_dir, state_dir.parent / "steps" / f"{task + 1:02d}-{_task_name(languages)}")
        distributed.barrier()
        if on_task:
            on_task(task, record)
    return _finish(config, run, learner, order, records, seconds, resumed_from, state_dir,
                   test is not None and runtime.is_main)


def _task_name(languages: list[str]) -> str:
    return "+".join(languages) if len(languages) < 4 else "joint"


def _write_state(config, run: _Run, learner: Learner, seen: list[str], records: list[TaskRecord],
                 seconds: float, state_dir: Path, split: str) -> None:
    cards = {}
    for language in seen:
        task = next(r for r in records if language in r.languages)
        cards[language] = {
            "parameters": run.encoder.trainable_parameters(language), "extra_tokens": task.new_tokens.get(language, 0),
            "vocabulary": task.vocabulary.get(language), "stages": "continual", "steps": task.steps,
            "task": records.index(task) + 1, "val_metrics": records[-1].scores.get(language, {}),
            "created": now(), "git_revision": git_revision(),
        }
    record = {"fingerprint": _fingerprint(config), "order": list(config.order), "tasks": [asdict(r) for r in records],
              "seconds": seconds, "train_split": split}
    snapshot.write(state_dir, _info(config, run, learner, seen), run.vocabulary.to_json(), run.weights(), run.usage,
                   learner.state(), record, cards)


def _finish(config, run: _Run, learner: Learner, order, records, seconds, resumed_from, state_dir: Path,
            benched: bool) -> ContinualResult:
    out = state_dir.parent
    summary = sequence_summary(order, [r.scores for r in records]) if benched else {}
    result = ContinualResult(out, state_dir, order, learner.name, config.teir.label, records, summary,
                             run.encoder.trainable_parameters(order[-1]), seconds, resumed_from,
                             text_only=not run.base.has_images)
    if benched:
        result.json_path = write_json(out / "results.json", {
            "artifact": "mlclip-continual-results", "method": snapshot.METHOD, "learner": learner.name, "teir": config.teir.label,
            "order": order, "scored": "t2t" if result.text_only else "t2i",  # t2t: caption -> its English sentence
            "trainable_parameters": result.trainable_parameters, "seconds": seconds,
            "tasks": [asdict(r) for r in records], **summary, "extension": str(state_dir)})
        title = f"{learner.name}, TEIR {config.teir.label}"
        result.plots = [plot_heatmap(summary, metric, out / f"heatmap_{metric.replace('@', '')}.png", f"{title}: {metric}")
                        for metric in METRICS]
        result.plots.append(plot_aa_f({title: summary}, "image_retrieval_recall@1", out / "aa_f.png", title))
    return result
