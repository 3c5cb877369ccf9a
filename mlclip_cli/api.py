"""The Python API: one `load(spec)` for every kind of `--model`, a `Model` that encodes texts (in
a named language, or each routed by language ID) and images, and an image `Index` to search.

    >>> import mlclip_cli
    >>> model = mlclip_cli.load("mlclip-tiny")            # or an extension folder (`mlclip train`)
    >>> model.encode_text(["ein roter Würfel"], lang="auto").shape
    (1, 128)

It stands on what the CLI uses: `loading.load_encoder` (the spec table), the encoders'
`encode_texts` / `encode_mixed` / `encode_pixels`, `langid.identify` and the FAISS helpers of
`search` (through `collection.Index`). The library functions behind `mlclip index build`, `mlclip
index add` and `mlclip search` are here too: a config dataclass in, a typed result out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from mlclip_cli.collection import (INDEX_FILE, AddResult, Hit, Index, Unreadable, check_out_folder, list_images,
                                   manifest_images)
from mlclip_cli.core.extension import recover
from mlclip_cli.encoders import FrozenClip, check_fallback
from mlclip_cli.errors import MlclipError
from mlclip_cli.images import open_image
from mlclip_cli.langid import DEFAULT_BACKEND, check_languages, encoder_languages, get_backend, identify
from mlclip_cli.loading import load_encoder
from mlclip_cli.locks import writer_lock
from mlclip_cli.text import normalise_language

__all__ = ["load", "Model", "Detection", "Index", "Hit", "AddResult", "Unreadable", "SearchConfig", "SearchResult",
           "search", "BuildConfig", "BuildResult", "build", "UpdateConfig", "UpdateResult", "update"]

AUTO = "auto"


@dataclass(frozen=True)
class Detection:
    """Where a text was routed."""

    language: str
    confidence: float  # langid's confidence in [0, 1]; 1.0 when the script alone decides or the language was given


def load(spec: str = "mlclip-tiny", *, device: str | None = None, fallback: str = "none",
         langid_backend: str = DEFAULT_BACKEND) -> "Model":
    """The model `spec` names: anything `--model` takes (mlclip-tiny, a `mlclip pretrain` folder, an
    open_clip NAME:PRETRAINED, local-dir:, hf-hub:, a Hugging Face folder, or an extension folder
    written by train / extend / continual). `fallback`: an extension's rule for a language without a
    pack (none: refuse, english: the frozen English tower)."""
    check_fallback(fallback)
    return Model(load_encoder(spec, device, fallback), spec=recorded_spec(spec), fallback=fallback,
                 langid_backend=langid_backend)


def recorded_spec(spec: str) -> str:
    """`spec` as an index records it: a folder made absolute (the index may be searched from elsewhere)."""
    return str(Path(spec).resolve()) if Path(spec).exists() else spec


def _as_list(items, single: tuple[type, ...], what: str) -> list:
    if isinstance(items, single):
        return [items]
    if isinstance(items, (str, bytes)):
        raise MlclipError(f"{what}: expected {' or '.join(t.__name__ for t in single)} or a sequence of them")
    return list(items)


class Model:
    """A frozen CLIP (plus any language extension) as one object: `encode_text`, `encode_image`,
    `detect_language`. `encoder` is the underlying `encoders.FrozenClip` (or an extension's subclass)."""

    def __init__(self, encoder: FrozenClip, *, spec: str, fallback: str = "none",
                 langid_backend: str = DEFAULT_BACKEND):
        self.encoder, self.spec, self.fallback, self.langid_backend = encoder, spec, fallback, langid_backend
        self._dim: int | None = None

    def __repr__(self) -> str:
        return f"Model({self.spec!r}, languages={self.languages}, dim={self.dim})"

    @property
    def is_extension(self) -> bool:
        """Whether languages other than English go through their own packs (an extension folder)."""
        return getattr(self.encoder, "languages", None) is not None

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages it encodes natively: "en" plus its packs. A plain CLIP encodes every language
        through its one English tower (the zero-shot baseline): its native language is "en" only."""
        return tuple(dict.fromkeys(["en", *(getattr(self.encoder, "languages", None) or [])]))

    @property
    def image_identity(self) -> str:
        return self.encoder.image_identity

    def text_identity(self, language: str = "en") -> str:
        return self.encoder.text_identity(normalise_language(language))

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.encoder.encode_texts(["a"], "en").shape[1])
        return self._dim

    # ---------------------------------------------------------------------------------- languages

    def check_language(self, lang: str) -> str:
        """`lang` normalised ("jp" -> "ja"), or "auto"; one line for an unknown code or, with an
        extension that does not fall back to English, a language it has no pack for."""
        if not isinstance(lang, str) or not lang.strip():
            raise MlclipError(f"a language is an ISO 639-1 code or 'auto', not {lang!r}")
        code = normalise_language(lang)
        if code == AUTO or code in self.languages:
            return code
        check_languages([code], self.langid_backend)  # an unknown code: one line listing the known ones
        if self.is_extension and self.fallback != "english":
            raise MlclipError(f"{self.spec} has no language pack for '{code}' (it has {', '.join(self.languages)}): "
                              "route each text by language ID (lang 'auto'), name one of those, or load it with "
                              "fallback 'english' to encode other languages as English")
        return code

    def detect_language(self, texts: str | Sequence[str]) -> list[Detection]:
        """Each text's language among the ones this model can route to (an extension's packs plus
        English; XTD10's 11 for a plain CLIP). A text that matches none of them goes to English where
        that is what the model does with it anyway (a plain CLIP, fallback 'english'), else is refused."""
        texts = _as_list(texts, (str,), "texts")
        among = list(self.languages) if self.is_extension else encoder_languages(self.encoder)
        found = []
        for text, detection in zip(texts, identify(texts, among, self.langid_backend, fallback="en")):
            if detection.method == "fallback":
                if self.is_extension and self.fallback != "english":
                    shown = text if len(text) <= 40 else text[:37] + "..."
                    raise MlclipError(f"{shown!r} matches none of {self.spec}'s languages ({', '.join(among)}): "
                                      "name its language instead of 'auto'")
                found.append(Detection("en", 0.0))
            elif detection.method == "script":
                found.append(Detection(detection.language, 1.0))
            else:
                found.append(Detection(detection.language, float(detection.confidence)))
        return found

    # ---------------------------------------------------------------------------------- encoding

    def encode_text(self, texts: str | Sequence[str], lang: str = "en", *, batch_size: int = 256) -> np.ndarray:
        """(n, dim) float32 L2-normalised embeddings of `texts` in language `lang`; "auto" routes each
        text to the language detected for it (`detect_language`)."""
        texts = _as_list(texts, (str,), "texts")
        if any(not isinstance(t, str) for t in texts):
            raise MlclipError("texts must be strings")
        lang = self.check_language(lang)
        if batch_size < 1:
            raise MlclipError(f"batch_size must be at least 1, not {batch_size}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        routed = [d.language for d in self.detect_language(texts)] if lang == AUTO else None
        blocks = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            if routed is None:
                blocks.append(self.encoder.encode_texts(batch, lang))
            else:
                blocks.append(self.encoder.encode_mixed(batch, routed[start:start + batch_size]))
        return np.ascontiguousarray(np.concatenate(blocks), dtype=np.float32)

    def encode_image(self, images: str | os.PathLike | Image.Image | Sequence[str | os.PathLike | Image.Image], *,
                     batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32 L2-normalised embeddings of image files or PIL images."""
        import torch

        if not self.encoder.has_images:
            raise MlclipError(f"{self.spec} is a text-only encoder: it has no image tower (use a CLIP)")
        items = _as_list(images, (str, os.PathLike, Image.Image), "images")
        if batch_size < 1:
            raise MlclipError(f"batch_size must be at least 1, not {batch_size}")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        preprocess = self.encoder.clip.preprocess
        blocks = []
        for start in range(0, len(items), batch_size):
            batch = [item.convert("RGB") if isinstance(item, Image.Image) else open_image(str(item))
                     for item in items[start:start + batch_size]]
            blocks.append(self.encoder.encode_pixels(torch.stack([preprocess(image) for image in batch])))
        return np.ascontiguousarray(np.concatenate(blocks), dtype=np.float32)


# ------------------------------------------------------------------------------------ mlclip search


@dataclass(frozen=True)
class SearchConfig:
    index: Path  # an image index folder (`mlclip index build`)
    query: str | None = None  # text -> image
    image: Path | None = None  # image -> image
    model: str | None = None  # None: the model the index records
    language: str = AUTO  # the query's language, or "auto": language ID picks it
    k: int = 10
    fallback: str = "none"
    device: str | None = None
    langid_backend: str = DEFAULT_BACKEND

    def check(self) -> "SearchConfig":
        """Everything that needs no model or index: before anything loads."""
        if (self.query is None) == (self.image is None):
            raise MlclipError("give a text query or --image FILE, not both and not neither")
        if self.query is not None and not self.query.strip():
            raise MlclipError("the query is empty: give the words to search for")
        if self.image is not None and not Path(self.image).is_file():
            raise MlclipError(f"{self.image}: no such image file")
        if isinstance(self.k, bool) or self.k < 1:
            raise MlclipError(f"-k must be at least 1, not {self.k}")
        if self.query is not None and normalise_language(self.language) != AUTO:
            check_languages([self.language], self.langid_backend)
        if self.query is not None and normalise_language(self.language) == AUTO:
            get_backend(self.langid_backend)  # a missing backend fails now, not after loading the model
        check_fallback(self.fallback)
        return self


@dataclass
class SearchResult:
    query: str  # the text, or the image file's path
    language: str | None  # where the text was routed; None for an image query
    confidence: float | None  # langid's confidence (1.0 for a named language); None for an image query
    results: list[Hit]
    model: str = ""
    index: Path | None = None

    def to_json(self) -> dict:
        return {"query": self.query, "language": self.language, "confidence": self.confidence,
                "results": [{"rank": h.rank, "path": h.path, "score": round(h.score, 6)} for h in self.results]}


def open_search(config, model: Model | None = None, index: Index | None = None) -> tuple[Model, Index]:
    """The index `config.index` names and the model that searches it (`config.model`, else the one
    the index records), checked to belong together; `model` / `index`: already loaded ones.
    `config`: anything with index, model, device, fallback and langid_backend (search, serve)."""
    index = index if index is not None else Index.load(config.index)
    if model is None:
        spec = config.model or index.model
        if spec is None:
            raise MlclipError(f"{config.index}: the index records no model: pass --model")
        model = load(spec, device=config.device, fallback=config.fallback, langid_backend=config.langid_backend)
    index.check_model(model)
    return model, index


def search(config: SearchConfig, model: Model | None = None, index: Index | None = None) -> SearchResult:
    """The k images of an index nearest a text (in its named or detected language) or an image.
    `model` / `index`: already loaded ones (a server keeps them); otherwise loaded from the config."""
    config.check()
    model, index = open_search(config, model, index)
    if config.image is not None:
        vector = model.encode_image(config.image)
        return SearchResult(str(config.image), None, None, index.search(vector, config.k)[0], model.spec, config.index)
    language = _search_language(model, config.language)
    if language == AUTO:
        detection = model.detect_language([config.query])[0]
    else:
        detection = Detection(language, 1.0)
    vector = model.encode_text([config.query], detection.language)
    return SearchResult(config.query, detection.language, detection.confidence, index.search(vector, config.k)[0],
                        model.spec, config.index)


def _search_language(model: Model, language: str) -> str:
    """--lang checked against the model, in the CLI's words."""
    code = normalise_language(language)
    if code == AUTO or code in model.languages or not model.is_extension or model.fallback == "english":
        return model.check_language(code)
    raise MlclipError(f"--lang {code}: the model {model.spec} has no language pack for '{code}' (it has "
                      f"{', '.join(model.languages)}); pass --lang auto to route the query by language ID, "
                      f"--lang one of those, or --fallback english to encode it as English")


# ------------------------------------------------------------------------------------ mlclip index build / add


Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BuildConfig:
    out: Path  # the index folder to write
    images: Path | None = None  # a folder of images (recursively)
    manifest: Path | None = None  # or a prepared data set's manifest: its images
    split: str | None = None  # with manifest: only this split's images
    model: str = "mlclip-tiny"
    kind: str = "flat"
    fallback: str = "none"
    device: str | None = None
    batch_size: int = 64


@dataclass
class BuildResult:
    out: Path
    count: int
    dim: int
    kind: str
    root: Path
    image_identity: str
    unreadable: list[Unreadable] = field(default_factory=list)


def build(config: BuildConfig, model: Model | None = None, progress: Progress | None = None) -> BuildResult:
    """Encode a folder's (or a manifest's) images and write an image index folder."""
    if (config.images is None) == (config.manifest is None):
        raise MlclipError("give the images to index: a folder (--images) or a data set (--data), one of them")
    check_out_folder(config.out)
    if config.images is not None and not Path(config.images).is_dir():
        raise MlclipError(f"{config.images}: no such image folder")
    with writer_lock(config.out, "index folder"):
        if config.manifest is not None:
            files = manifest_images(config.manifest, config.split)
            model = model or load(config.model, device=config.device, fallback=config.fallback)
            index = Index.build(model, files, kind=config.kind, progress=progress, batch_size=config.batch_size)
            index.source = {"kind": "manifest", "manifest": str(Path(config.manifest).resolve()), "split": config.split}
        else:
            if not list_images(config.images):  # before loading a model
                raise MlclipError(f"{config.images}: no images (jpg, jpeg, png, webp, bmp, gif) in it or below")
            model = model or load(config.model, device=config.device, fallback=config.fallback)
            index = Index.build(model, config.images, kind=config.kind, progress=progress, batch_size=config.batch_size)
        index.save(config.out)
    return BuildResult(Path(config.out), len(index), index.dim, index.kind, index.root, index.image_identity,
                       index.unreadable)


@dataclass(frozen=True)
class UpdateConfig:
    index: Path  # an image index folder
    images: Path | None = None  # None: what it was built from; a folder: the collection now
    model: str | None = None  # None: the model the index records
    fallback: str = "none"
    device: str | None = None
    batch_size: int = 64


@dataclass
class UpdateResult:
    index: Path
    count: int
    root: Path
    changes: AddResult


def update(config: UpdateConfig, model: Model | None = None, progress: Progress | None = None) -> UpdateResult:
    """Bring an index folder up to date: encode new and changed images, drop vanished ones, and
    swap the folder in (under its lock; nothing is written when nothing changed)."""
    if config.images is not None and not Path(config.images).is_dir():
        raise MlclipError(f"{config.images}: no such image folder")
    with writer_lock(config.index, "index folder"):
        recover(config.index, INDEX_FILE)  # a swap a kill interrupted: finished or undone first
        index = Index.load(config.index)
        if model is None:
            spec = config.model or index.model
            if spec is None:
                raise MlclipError(f"{config.index}: the index records no model: pass --model")
            model = load(spec, device=config.device, fallback=config.fallback)
        old_root = index.root
        changes = index.add(model, config.images, progress=progress, batch_size=config.batch_size)
        if changes.changed or index.root != old_root:
            index.save(config.index)
    return UpdateResult(Path(config.index), len(index), index.root, changes)
