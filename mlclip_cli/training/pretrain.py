"""`mlclip pretrain`: train an English CLIP contrastively on a manifest's English captions.

Made for the embedded world (the tiny model learns it in minutes on a CPU), but any manifest
with images and English captions works as long as its images fit in memory at the model's
resolution (they are decoded once and held as uint8: 30,000 world images take 370 MB). Whole blocks of `block_size` consecutive images form a
batch's units: the world writes near-duplicate scenes next to each other, so batches hold hard
negatives. Runs on CPU, one GPU, or several through torchrun (DDP, per-rank contrastive loss).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.errors import MlclipError
from mlclip_cli.images import load_uint8
from mlclip_cli.metrics import retrieval_metrics
from mlclip_cli.models.clip import TINY, create_untrained, register_configs
from mlclip_cli.training import distributed
from mlclip_cli.training.checkpoint import load_trainer_state, save_trainer_state, save_weights


@dataclass(frozen=True)
class PretrainConfig:
    manifest: Path
    out: Path
    model_name: str = TINY
    language: str = "en"
    steps: int = 6000
    batch_size: int = 128
    block_size: int = 4  # consecutive images sampled together (1: plain random batches)
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: float = 0.03
    seed: int = 0
    eval_every: int = 500
    checkpoint_every: int = 500
    weights_dtype: str = "float32"  # of the final model.safetensors; "float16" halves its size
    device: str | None = None


@dataclass
class PretrainResult:
    out: Path
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)  # mean loss per eval interval
    val_metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: int = 0


@dataclass
class _Split:
    images: torch.Tensor  # uint8 [n, h, w, 3]
    tokens: torch.Tensor  # long [n_captions, context]
    caption_image: np.ndarray  # image index of each caption


def _load_split(table, split: str, language: str, tokenizer, size: int) -> _Split | None:
    df = table.to_pandas()
    df = df[(df.split == split) & (df.language == language) & df.image_path.notna()]
    if df.empty:
        return None
    image_ids = list(dict.fromkeys(df.image_id))  # manifest order: keeps the world's blocks together
    index = {image_id: i for i, image_id in enumerate(image_ids)}
    paths = df.drop_duplicates("image_id").set_index("image_id").loc[image_ids, "image_path"].tolist()
    tokens = tokenizer(df.caption.tolist())
    return _Split(torch.from_numpy(load_uint8(paths, size)), tokens, df.image_id.map(index).to_numpy())


def _to_model_input(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, device) -> torch.Tensor:
    x = images.to(device).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean) / std


def attention_kernel(device: torch.device):
    """On CPU the plain attention kernel is about 2x faster than the fused one at head width 32."""
    if device.type != "cpu":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def _lr_at(step: int, config: PretrainConfig) -> float:
    warm = max(1, int(config.warmup * config.steps))
    if step < warm:
        return config.lr * (step + 1) / warm
    progress = (step - warm) / max(1, config.steps - warm)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(model, split: _Split, mean, std, device, batch: int = 500) -> dict[str, float]:
    model.eval()
    image_features, text_features = [], []
    for start in range(0, len(split.images), batch):
        x = _to_model_input(split.images[start:start + batch], mean, std, device)
        image_features.append(model.encode_image(x, normalize=True).float().cpu())
    for start in range(0, len(split.tokens), batch):
        text_features.append(model.encode_text(split.tokens[start:start + batch].to(device), normalize=True).float().cpu())
    model.train()
    return retrieval_metrics(torch.cat(text_features).numpy(), torch.cat(image_features).numpy(), split.caption_image)


def _batches(n_images: int, config: PretrainConfig, step: int, rank: int, world: int) -> np.ndarray:
    """Image indices of this rank's share of global batch `step` (deterministic: resumable)."""
    blocks = max(1, n_images // config.block_size)
    per_batch = max(1, config.batch_size // config.block_size)
    batches_per_epoch = max(1, blocks // per_batch)
    epoch, offset = divmod(step, batches_per_epoch)
    order = np.random.default_rng([config.seed, epoch]).permutation(blocks)
    chosen = order[offset * per_batch:(offset + 1) * per_batch]
    indices = (chosen[:, None] * config.block_size + np.arange(config.block_size)[None, :]).reshape(-1)
    indices = indices[indices < n_images]
    return indices[rank::world]


def _check(config: PretrainConfig) -> None:
    """The arguments, before any work: an architecture open_clip knows, a manifest, a writable --out."""
    import open_clip

    from mlclip_cli.locks import check_writable

    if config.model_name not in open_clip.list_models():
        raise MlclipError(f"unknown --arch '{config.model_name}' (mlclip's: {TINY}, mlclip-micro; or an open_clip "
                          "architecture such as ViT-B-32: see open_clip.list_models())")
    if not Path(config.manifest).is_file():
        raise MlclipError(f"{config.manifest}: no such manifest file")
    check_writable(config.out, "checkpoint folder")


def pretrain(config: PretrainConfig, on_step: Callable[[int, int, float], None] | None = None,
             on_eval: Callable[[int, dict], None] | None = None) -> PretrainResult:
    register_configs()
    _check(config)
    runtime = distributed.setup(config.device)
    torch.manual_seed(config.seed)
    model = create_untrained(config.model_name)
    if hasattr(model.visual, "positional_embedding"):
        # A larger start lets the small ViT learn where things are.
        model.visual.positional_embedding.data.mul_(10.0)
    model.to(runtime.device).train()
    cfg = model.visual.preprocess_cfg
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    mean = torch.tensor(cfg["mean"], device=runtime.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], device=runtime.device).view(1, 3, 1, 1)

    import open_clip

    tokenizer = open_clip.get_tokenizer(config.model_name)
    table = read_manifest(config.manifest)
    train = _load_split(table, "train", config.language, tokenizer, size)
    if train is None:
        raise MlclipError(f"{config.manifest}: no train rows with images in language '{config.language}'")
    val = _load_split(table, "val", config.language, tokenizer, size)
    captions_of = [np.flatnonzero(train.caption_image == i) for i in range(len(train.images))]

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "token_embedding" not in n and "positional" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "token_embedding" not in n and "positional" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(0.9, 0.98), eps=1e-6,
    )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    state = load_trainer_state(model, optimizer, out) or {}
    if state and state.get("config", {}).get("manifest") != str(config.manifest):
        raise MlclipError(f"{out} holds a run on another manifest; choose another --out or delete it")
    start = int(state.get("step", 0))
    history = state.get("history", {"losses": [], "val": []})
    ddp_model = distributed.wrap(model, runtime)
    autocast = torch.autocast(runtime.device.type, dtype=torch.bfloat16)

    began = time.perf_counter()
    window: list[float] = []
    for step in range(start, config.steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        image_index = _batches(len(train.images), config, step, runtime.rank, runtime.world_size)
        pick = np.random.default_rng([config.seed, step, runtime.rank])  # per step: resumes exactly
        caption_index = np.array([pick.choice(captions_of[i]) for i in image_index])
        images = _to_model_input(train.images[image_index], mean, std, runtime.device)
        tokens = train.tokens[caption_index].to(runtime.device)
        with autocast, attention_kernel(runtime.device):
            image_features, text_features, logit_scale = ddp_model(images, tokens)[:3]
            logits = logit_scale * image_features.float() @ text_features.float().T
            target = torch.arange(len(logits), device=logits.device)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        window.append(loss.item())
        if on_step:
            on_step(step + 1, config.steps, window[-1])
        last = step + 1 == config.steps
        if (step + 1) % config.eval_every == 0 or last:
            history["losses"].append([step + 1, float(np.mean(window))])
            window = []
            if val is not None and runtime.is_main:
                metrics = evaluate(model, val, mean, std, runtime.device)
                history["val"].append([step + 1, metrics])
                if on_eval:
                    on_eval(step + 1, metrics)
        if runtime.is_main and ((step + 1) % config.checkpoint_every == 0 or last):
            _save(model, optimizer, out, config, step + 1, history)
    distributed.teardown()
    return PretrainResult(
        out=out, steps=config.steps, seconds=time.perf_counter() - began,
        losses=[loss for _, loss in history["losses"]],
        val_metrics=history["val"][-1][1] if history["val"] else {}, resumed_from=start,
    )


def _save(model, optimizer, out: Path, config: PretrainConfig, step: int, history: dict) -> None:
    dtype = torch.float16 if config.weights_dtype == "float16" else torch.float32
    model_config = {
        "model_name": config.model_name, "framework": "open_clip", "trained_by": "mlclip pretrain",
        "steps": step, "language": config.language, "train_manifest": str(config.manifest),
        "weights_dtype": config.weights_dtype,
    }
    save_weights(model, out, model_config, dtype)
    save_trainer_state(model, optimizer, out, {
        "step": step, "history": history, "config": {k: str(v) for k, v in asdict(config).items()},
    })
