"""Zero-shot retrieval of a frozen CLIP on a prepared manifest, one language at a time.

Images are encoded once and shared by every language; captions are encoded per language with
the model's own tokenizer (so languages the English CLIP never saw get its English BPE pieces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mlclip_cli.errors import MlclipError
from mlclip_cli.images import load_uint8
from mlclip_cli.metrics import retrieval_metrics
from mlclip_cli.models.clip import LoadedClip


@dataclass
class LanguageResult:
    language: str
    images: int
    captions: int
    metrics: dict[str, float]


@torch.no_grad()
def encode_images(clip: LoadedClip, paths: list[str], batch: int = 256) -> np.ndarray:
    mean = torch.tensor(clip.mean).view(1, 3, 1, 1)
    std = torch.tensor(clip.std).view(1, 3, 1, 1)
    device = next(clip.model.parameters()).device
    features = []
    for start in range(0, len(paths), batch):
        pixels = torch.from_numpy(load_uint8(paths[start:start + batch], clip.image_size))
        x = (pixels.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        features.append(clip.model.encode_image(x.to(device), normalize=True).float().cpu())
    return torch.cat(features).numpy()


@torch.no_grad()
def encode_texts(clip: LoadedClip, captions: list[str], batch: int = 256) -> np.ndarray:
    device = next(clip.model.parameters()).device
    features = []
    for start in range(0, len(captions), batch):
        tokens = clip.tokenizer(captions[start:start + batch]).to(device)
        features.append(clip.model.encode_text(tokens, normalize=True).float().cpu())
    return torch.cat(features).numpy()


def zero_shot_retrieval(clip: LoadedClip, manifest: pd.DataFrame, languages: list[str] | None = None,
                        split: str = "test", on_language: Callable[[LanguageResult], None] | None = None) -> list[LanguageResult]:
    rows = manifest[(manifest.split == split) & manifest.image_path.notna()]
    if rows.empty:
        raise MlclipError(f"no '{split}' rows with images in the manifest")
    languages = languages or sorted(rows.language.unique())
    image_ids = list(dict.fromkeys(rows.image_id))
    index = {image_id: i for i, image_id in enumerate(image_ids)}
    paths = rows.drop_duplicates("image_id").set_index("image_id").loc[image_ids, "image_path"].tolist()
    image_features = encode_images(clip, paths)
    results = []
    for language in languages:
        subset = rows[rows.language == language]
        if subset.empty:
            raise MlclipError(f"no '{split}' captions in language '{language}'")
        text_features = encode_texts(clip, subset.caption.tolist())
        metrics = retrieval_metrics(text_features, image_features, subset.image_id.map(index).to_numpy())
        result = LanguageResult(language, len(image_ids), len(subset), metrics)
        results.append(result)
        if on_language:
            on_language(result)
    return results
