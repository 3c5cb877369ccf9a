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
from mlclip_cli.locks import check_writable


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
    fallback_language: str | None = None  # auto: for a text that matches none of the model's languages
    # (default: an error; see langid.auto_fallback)
    langid_backend: str = "py3langid"  # auto: mlclip_cli.langid backend


@dataclass
class EmbedResult:
    out: Path
    rows: int
    dim: int
    languages: dict[str, int] | None = None  # auto: texts per detected language
    # texts longer than the model's context, embedded from their first `context` tokens: their rows
    # (0-based, in input order); None for images, or an encoder that cannot count its tokens
    truncated_rows: list[int] | None = None
    context: int | None = None  # the content tokens the context holds (of the first language that cut)

    @property
    def truncated(self) -> int | None:
        return None if self.truncated_rows is None else len(self.truncated_rows)


def check_out(out: Path) -> None:
    """--out: a .parquet file that can be written (checked before any work)."""
    if Path(out).suffix.lower() != ".parquet":
        raise MlclipError(f"--out {out}: embeddings are written as Parquet; name a .parquet file")
    check_writable(out, "output file", is_file=True)


def embed(config: EmbedConfig, encoder: FrozenClip | None = None) -> EmbedResult:
    if bool(config.texts) == bool(config.images):
        raise MlclipError("give either texts or images to embed, not both and not neither")
    if config.texts and not config.language:
        raise MlclipError("texts need a language (--lang; auto detects each): it picks the language extension to use")
    auto = bool(config.texts) and config.language == "auto"
    if config.fallback_language is not None and not auto:
        raise MlclipError(f"--fallback-lang is for --lang auto (texts whose language is detected), not "
                          f"{'images' if config.images else f'--lang {config.language}'}")
    check_out(config.out)
    fallback = None
    if auto:  # a missing extra, an unknown backend or fallback code: fail before loading the model
        from mlclip_cli.langid import auto_fallback

        fallback = auto_fallback(config.model, config.langid_backend, config.fallback_language, config.fallback)
    encoder = encoder or load_encoder(config.model, config.device, config.fallback)
    inputs = list(config.texts or config.images)
    if auto:
        from mlclip_cli.langid import detect_languages, encoder_languages

        languages = detect_languages(inputs, encoder_languages(encoder), config.langid_backend, fallback)
    else:
        languages = [config.language if config.texts else None] * len(inputs)
    truncated, context, encoded = _fit_context(encoder, inputs, languages) if config.texts else (None, None, inputs)
    blocks = []
    for start in range(0, len(inputs), config.batch_size):
        batch = encoded[start:start + config.batch_size]
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
    return EmbedResult(path, len(inputs), matrix.shape[1], counts, truncated, context)


def _fit_context(encoder, texts: list[str], languages: list[str]) -> tuple[list[int] | None, int | None, list[str]]:
    """The rows whose text the model's context cuts (the encoders keep its first tokens), the
    context's content tokens, and the texts to encode: a very long one as its prefix of whole words
    past the context, which embeds the same (encoders.TextBudget.fit). (None, None, texts) when the
    encoder cannot count its tokens."""
    budget_of = getattr(encoder, "text_budget", None)
    if budget_of is None:
        return None, None, texts
    rows, context, encoded = [], None, list(texts)
    for language in dict.fromkeys(languages):
        budget = budget_of(language)
        if budget is None:
            return None, None, texts
        for i in (i for i, lang in enumerate(languages) if lang == language):
            cut, encoded[i] = budget.fit(texts[i])
            if cut:
                rows.append(i)
                context = context or budget.capacity
    return sorted(rows), context, encoded
