"""`mlclip embed`: embed texts in a named language (or each in its detected language: "auto"),
or images, with the frozen model (plus any language extension), into a Parquet file of the
`embeddings` schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mlclip_cli.artifacts import EMBEDDINGS, write_table
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.errors import MlclipError
from mlclip_cli.loading import load_encoder


@dataclass(frozen=True)
class EmbedConfig:
    out: Path
    texts: tuple[str, ...] = ()
    language: str | None = None  # required with texts; "auto": detect each text's (mlclip_cli.langid)
    images: tuple[str, ...] = ()  # image paths
    model: str = "mlclip-tiny"
    batch_size: int = 256
    fallback: str = "none"  # extensions: "english" encodes a language without a pack as English
    device: str | None = None
    fallback_language: str | None = None  # auto: for a text that matches no language (default: en with
    # fallback "english", else an error)
    langid_backend: str = "py3langid"  # auto: mlclip_cli.langid backend


@dataclass
class EmbedResult:
    out: Path
    rows: int
    dim: int
    languages: dict[str, int] | None = None  # auto: texts per detected language


def embed(config: EmbedConfig, encoder: FrozenClip | None = None) -> EmbedResult:
    if bool(config.texts) == bool(config.images):
        raise MlclipError("give either texts or images to embed, not both and not neither")
    if config.texts and not config.language:
        raise MlclipError("texts need a language (--lang; auto detects each): it picks the language extension to use")
    auto = bool(config.texts) and config.language == "auto"
    if auto:  # a missing extra, an unknown backend or fallback code: fail before loading the model
        from mlclip_cli.langid import check_languages, get_backend

        get_backend(config.langid_backend)
        if config.fallback_language is not None:
            check_languages([config.fallback_language], config.langid_backend)
    encoder = encoder or load_encoder(config.model, config.device, config.fallback)
    inputs = list(config.texts or config.images)
    if auto:
        from mlclip_cli.langid import detect_languages, encoder_languages

        fallback = config.fallback_language or ("en" if config.fallback == "english" else None)
        languages = detect_languages(inputs, encoder_languages(encoder), config.langid_backend, fallback)
    else:
        languages = [config.language if config.texts else None] * len(inputs)
    blocks = []
    for start in range(0, len(inputs), config.batch_size):
        batch = inputs[start:start + config.batch_size]
        if not config.texts:
            blocks.append(encoder.encode_images(batch))
        elif auto:
            blocks.append(encoder.encode_mixed(batch, languages[start:start + config.batch_size]))
        else:
            blocks.append(encoder.encode_texts(batch, config.language))
    matrix = np.concatenate(blocks).astype(np.float32)
    table = pa.table({"input": inputs, "language": pa.array(languages, pa.string()), "embedding": list(matrix)})
    if config.texts:
        # one identity per language used: a string when they agree, else {language: identity} (JSON)
        identities = {language: encoder.text_identity(language) for language in dict.fromkeys(languages)}
        metadata = {"identity": (next(iter(identities.values())) if len(set(identities.values())) == 1
                                 else json.dumps(identities, sort_keys=True))}
        if auto:
            metadata["language_detection"] = config.langid_backend
    else:
        metadata = {"identity": encoder.image_identity}
    path = write_table(table, config.out, EMBEDDINGS, metadata=metadata)
    counts = {language: languages.count(language) for language in dict.fromkeys(languages)} if auto else None
    return EmbedResult(path, len(inputs), matrix.shape[1], counts)
