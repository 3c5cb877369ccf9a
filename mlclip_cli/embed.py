"""`mlclip embed`: embed texts in a named language, or images, with the frozen model (plus any
language extension), into a Parquet file of the `embeddings` schema."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mlclip_cli.artifacts import EMBEDDINGS, write_table
from mlclip_cli.encoders import FrozenClip, load_encoder
from mlclip_cli.errors import MlclipError


@dataclass(frozen=True)
class EmbedConfig:
    out: Path
    texts: tuple[str, ...] = ()
    language: str | None = None  # required with texts
    images: tuple[str, ...] = ()  # image paths
    model: str = "mlclip-tiny"
    batch_size: int = 256
    fallback: str = "none"  # extensions: "english" encodes a language without a pack as English
    device: str | None = None


@dataclass
class EmbedResult:
    out: Path
    rows: int
    dim: int


def embed(config: EmbedConfig, encoder: FrozenClip | None = None) -> EmbedResult:
    if bool(config.texts) == bool(config.images):
        raise MlclipError("give either texts or images to embed, not both and not neither")
    if config.texts and not config.language:
        raise MlclipError("texts need a language (--lang): it picks the language extension to use")
    encoder = encoder or load_encoder(config.model, config.device, config.fallback)
    inputs = list(config.texts or config.images)
    blocks = []
    for start in range(0, len(inputs), config.batch_size):
        batch = inputs[start:start + config.batch_size]
        blocks.append(encoder.encode_texts(batch, config.language) if config.texts else encoder.encode_images(batch))
    matrix = np.concatenate(blocks).astype(np.float32)
    language = config.language if config.texts else None
    table = pa.table({"input": inputs, "language": pa.array([language] * len(inputs), pa.string()),
                      "embedding": list(matrix)})
    path = write_table(table, config.out, EMBEDDINGS, metadata={"identity": encoder.text_identity(language) if language else encoder.image_identity})
    return EmbedResult(path, len(inputs), matrix.shape[1])
