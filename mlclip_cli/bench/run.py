"""`mlclip bench <benchmark>`: multilingual retrieval of a (frozen or extended) CLIP, or of any
text encoder for the text-to-text task.

Task `t2i` (the default), image-text retrieval: image and text features come from the feature
cache (`mlclip features`), computed on first use. Search is FAISS (exact inner product unless told
otherwise). All captions of an image are kept: text->image has one query per caption, image->text
hits when any caption of the image is in the top k. Where captions are parallel (a shared pair_id
with an English caption), text->text recall to the English caption is reported too.

Task `t2t`, text-to-text retrieval: each sentence of a language retrieves its parallel English
sentence (same pair_id) among all English sentences of the split, and each English sentence its
translation among all sentences of that language. Only `encode_texts` is called (no image, no
image tower, no feature cache: a text-only encoder works), and rows need no image.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlclip_cli import __version__
from mlclip_cli.artifacts import read_manifest
from mlclip_cli.bench.plot import plot_bench
from mlclip_cli.bench.registry import get_benchmark
from mlclip_cli.bench.result import BENCH_SCHEMA_VERSION, KS, TASK_KEYS, TASKS, write_bench_result
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.errors import MlclipError
from mlclip_cli.features import FeaturesConfig, compute_features, load_features
from mlclip_cli.loading import load_encoder
from mlclip_cli.locks import check_writable
from mlclip_cli.retrieval import faiss_retrieval_metrics, paired_text_recall, translation_recall
from mlclip_cli.workspace import feature_folder, slug

CAPTIONS_POLICY = ("all captions of each image kept: text->image has one query per caption; "
                   "image->text hits when any caption of the image is in the top k")
T2T_POLICY = ("each sentence with a parallel English sentence (same pair_id) retrieves it among all English "
              "sentences of the split; each English sentence with a translation retrieves it among all "
              "sentences of that language; a query hits when any sentence of its pair is in the top k")
POLICIES = {"t2i": CAPTIONS_POLICY, "t2t": T2T_POLICY}
TEXT_BATCH = 2048  # sentences per encode_texts call (the encoder sorts a call by length)


@dataclass(frozen=True)
class BenchConfig:
    benchmark: str
    manifest: Path
    out_dir: Path  # results land here as <benchmark>-<model>-<time>.json / .png
    features_dir: Path  # feature cache root
    languages: tuple[str, ...] = ("all",)
    model: str = "mlclip-tiny"
    subset: str | None = None
    index: str = "flat"
    device: str | None = None
    fallback: str = "none"  # extensions: "english" encodes a language without a pack as English
    task: str = "t2i"  # t2i: image-text retrieval both ways; t2t: each language <-> its parallel English
    lang: str = "given"  # given: each caption through its tagged language's pack; auto: the detected one's
    lang_fallback: str | None = None  # auto: the language of a caption that matches none
    langid_backend: str | None = None  # auto: None for the default backend
    split: str | None = None  # None: the benchmark's own split (test)


@dataclass
class BenchResult:
    result: dict
    json_path: Path
    png_path: Path
    # t2t: languages left out, with why (no sentence shares a pair_id with an English one, ...)
    skipped: dict[str, str] = field(default_factory=dict)


def run_bench(config: BenchConfig, encoder: FrozenClip | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> BenchResult:
    """`encoder`: anything with `encode_texts(captions, language)` for task t2t; a CLIP encoder
    (`load_encoder`'s) for t2i. Loaded from `config.model` when None."""
    benchmark = get_benchmark(config.benchmark)
    if config.task not in TASKS:
        raise MlclipError(f"unknown task '{config.task}' (known: {', '.join(TASKS)})")
    if config.lang not in ROUTES:
        raise MlclipError(f"unknown --lang '{config.lang}' (choose {' or '.join(ROUTES)})")
    lang_fallback = _check_auto(config)
    check_writable(config.out_dir, "results folder")  # before any work: not found once the recall is computed
    if not Path(config.manifest).is_file():
        raise MlclipError(f"{config.manifest}: no such manifest; run `mlclip prepare {benchmark.dataset} ...` first "
                          f"(see `mlclip prepare {benchmark.dataset} --help`) or pass --manifest")
    manifest = read_manifest(config.manifest).to_pandas()
    split = config.split or benchmark.split
    if not (manifest.split == split).any():
        splits = sorted(manifest.split.unique())
        raise MlclipError(f"{config.manifest} has no '{split}' split (it has {', '.join(splits) or 'no rows'}; "
                          "choose one with --split)")
    rows = manifest[manifest.split == split]
    if config.task == "t2i":
        rows = rows[rows.image_path.notna()]
        if rows.empty:
            raise MlclipError(f"{config.manifest}: no '{split}' captions with images "
                              f"(prepare {benchmark.dataset} with --images, or bench --task t2t, which needs none)")
    if benchmark.select is not None:
        rows = benchmark.select(rows, config.subset)
    elif config.subset is not None:
        raise MlclipError(f"benchmark '{benchmark.name}' has no subsets")
    available = sorted(rows.language.unique())
    languages = available if "all" in config.languages else list(dict.fromkeys(config.languages))
    unknown = [lang for lang in languages if lang not in available]
    if unknown:
        raise MlclipError(f"{config.manifest} has no {split} captions in {', '.join(unknown)} "
                          f"(it has {', '.join(available)})")

    skipped: dict[str, str] = {}
    if config.task == "t2t":
        pairs = _parallel_plan(rows, languages, "all" in config.languages, f"{config.manifest}", split, skipped)
        encoder = encoder or load_encoder(config.model, config.device, config.fallback)
        routed = _routed(encoder, config, lang_fallback, rows, [*pairs])
        per_language = _text_to_text(pairs, routed or encoder, config.index, progress)
        identity = _text_identity(encoder, config.model)
    else:
        encoder = encoder or load_encoder(config.model, config.device, config.fallback)
        if getattr(encoder, "has_images", True) is False:
            raise MlclipError(f"{config.model} is a text-only encoder: it has no image tower (use --task t2t)")
        routed = _routed(encoder, config, lang_fallback, rows, languages)
        per_language = _image_text(config, rows, manifest, split, languages, available, encoder, progress, routed)
        identity = encoder.image_identity
    if routed is not None:  # where each language's captions went, and how often to their own pack
        for language, entry in per_language.items():
            entry["routed"] = dict(sorted(routed.routing.get(language, {}).items()))
            entry["routing_accuracy"] = routed.accuracy(language)

    from mlclip_cli.provenance import provenance

    now = dt.datetime.now(dt.timezone.utc)
    result = {
        "artifact": "bench", "schema_version": BENCH_SCHEMA_VERSION, "task": config.task, "benchmark": benchmark.name,
        "dataset": benchmark.dataset, "manifest": str(Path(config.manifest).resolve()), "split": split,
        "subset": config.subset, "model": config.model, "model_identity": identity,
        "text_encoder": getattr(encoder, "name", "frozen"), "index": config.index,
        "captions_policy": POLICIES[config.task], "lang": config.lang, "created": now.isoformat(timespec="seconds"),
        "mlclip_version": __version__, "provenance": provenance(),
        "languages": per_language,
        "average": {key: float(np.mean([v["metrics"][key] for v in per_language.values()]))
                    for key in TASK_KEYS[config.task]},
    }
    if skipped:
        result["skipped_languages"] = dict(skipped)
    parts = [benchmark.name, config.subset, slug(split) if split != benchmark.split else None,
             config.task if config.task != "t2i" else None, "auto" if config.lang == "auto" else None,
             slug(Path(config.model).name)]
    stem = f"{'-'.join(part for part in parts if part)}-{now:%Y%m%dT%H%M%S}"
    json_path = write_bench_result(result, Path(config.out_dir) / f"{stem}.json")
    png_path = plot_bench(result, Path(config.out_dir) / f"{stem}.png")
    return BenchResult(result, json_path, png_path, skipped)


ROUTES = ("given", "auto")


def _check_auto(config: BenchConfig) -> str | None:
    """--lang auto's options, before any work (langid.auto_fallback: the one rule for a caption whose
    language the model lacks, shared with embed); they mean nothing with --lang given."""
    if config.lang != "auto":
        for option, value in (("--fallback-lang", config.lang_fallback), ("--langid-backend", config.langid_backend)):
            if value is not None:
                raise MlclipError(f"{option} is for --lang auto (captions whose language is detected), not --lang given")
        return None
    from mlclip_cli.langid import DEFAULT_BACKEND, auto_fallback

    return auto_fallback(config.model, config.langid_backend or DEFAULT_BACKEND, config.lang_fallback, config.fallback)


def _routed(encoder, config: BenchConfig, fallback: str | None, rows, languages: list[str]):
    """--lang auto: the encoder behind language identification, with the captions of `languages`
    detected already (None: route by the tags)."""
    if config.lang != "auto":
        return None
    from mlclip_cli.langid import DEFAULT_BACKEND, AutoRouted

    routed = AutoRouted(encoder, config.langid_backend or DEFAULT_BACKEND, fallback)
    routed.detect_all(rows[rows.language.isin(languages)].caption.tolist())  # a caption in no language: refused now
    return routed


def _image_text(config: BenchConfig, rows, manifest, split: str, languages: list[str], available: list[str],
                encoder: FrozenClip, progress, routed=None) -> dict:
    """Image-text recall per language from the feature cache; with `routed` (--lang auto) each
    language's captions are encoded through it instead (the cache is keyed by tagged language)."""
    parallel = rows.pair_id.notna().any() and "en" in available
    # routed (--lang auto), a language's captions are encoded as detected, not from the cache (which is
    # keyed by the tagged language, and would ask the extension for a pack it may lack): only English,
    # the side of text->text recall, is cached then
    tagged = set() if routed is not None else set(languages)
    needed = tuple(sorted(tagged | ({"en"} if parallel else set())))

    # Images always come from the frozen image tower: an extension shares the frozen model's image
    # shards and keeps only its text features apart (under its cache key).
    image_folder = feature_folder(config.features_dir, config.manifest, split, encoder.image_identity)
    folder = feature_folder(config.features_dir, config.manifest, split, encoder.cache_key)
    if image_folder != folder:
        compute_features(FeaturesConfig(manifest=config.manifest, out=image_folder, languages=(), split=split,
                                        device=config.device), encoder=encoder, progress=progress, manifest=manifest)
    if needed or image_folder == folder:
        compute_features(FeaturesConfig(manifest=config.manifest, out=folder, languages=needed, split=split,
                                        images=image_folder == folder, device=config.device),
                         encoder=encoder, progress=progress, manifest=manifest)
    image_keys, image_matrix = load_features(image_folder, "image", encoder.image_identity, encoder.preprocess_description)
    image_row = {key: i for i, key in enumerate(image_keys)}
    kept_images = list(dict.fromkeys(rows.image_id))
    image_features = image_matrix[[image_row[i] for i in kept_images]]
    kept_index = {image_id: i for i, image_id in enumerate(kept_images)}

    english = None
    if parallel:
        en_keys, en_matrix = load_features(folder, "text-en", encoder.text_identity("en"))
        en_rows = rows[rows.language == "en"].set_index("sample_id")
        key_row = {k: i for i, k in enumerate(en_keys)}
        en_pair_row = {en_rows.at[k, "pair_id"]: key_row[k] for k in en_rows.index if k in key_row}
        english = (en_matrix, en_pair_row)

    per_language = {}
    for language in languages:
        captions = rows[rows.language == language]
        if routed is not None:
            text = _encode(routed, _side(rows, language), language, progress)
        else:
            keys, matrix = load_features(folder, f"text-{language}", encoder.text_identity(language))
            key_row = {k: i for i, k in enumerate(keys)}
            text = matrix[[key_row[k] for k in captions.sample_id]]
        metrics = faiss_retrieval_metrics(text, image_features, captions.image_id.map(kept_index).to_numpy(), config.index)
        if english is not None:
            en_matrix, en_pair_row = english
            has_pair = captions.pair_id.map(lambda p: p in en_pair_row).to_numpy(dtype=bool)
            if has_pair.any():
                target = np.array([en_pair_row[p] for p in captions.pair_id[has_pair]])
                metrics |= translation_recall(text[has_pair], en_matrix, target, config.index)
        per_language[language] = {"images": int(captions.image_id.nunique()), "captions": int(len(captions)),
                                  "metrics": metrics}
    return per_language


@dataclass(frozen=True)
class _Side:
    captions: list[str]
    pairs: list  # pair_id per sentence (None where it has none)


def _side(rows, language: str) -> _Side:
    chosen = rows[rows.language == language]
    return _Side(chosen.caption.tolist(), [None if _missing(p) else str(p) for p in chosen.pair_id])


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _parallel_plan(rows, languages: list[str], every: bool, where: str, split: str,
                   skipped: dict[str, str]) -> dict[str, _Side]:
    """t2t: English and each language that shares pair_ids with it; the others go to `skipped`."""
    if "en" not in set(rows.language):
        raise MlclipError(f"{where}: no English captions in its '{split}' split: --task t2t retrieves each "
                          "caption's parallel English caption")
    english = _side(rows, "en")
    english_pairs = {p for p in english.pairs if p is not None}
    plan = {"en": english}
    for language in languages:
        if language == "en":
            if not every:
                skipped["en"] = "English is the side every language is retrieved against"
            continue
        side = _side(rows, language)
        if not english_pairs.intersection(side.pairs):
            skipped[language] = "no caption shares a pair_id with an English caption"
            continue
        plan[language] = side
    if len(plan) == 1:
        asked = [lang for lang in languages if lang != "en"]
        which = f" in {', '.join(asked)}" if asked and not every else ""
        raise MlclipError(f"{where}: no '{split}' caption{which} shares a pair_id with an English caption: "
                          "--task t2t needs parallel English (translations with the same pair_id)")
    return plan


def _encode(encoder, side: _Side, language: str, progress) -> np.ndarray:
    blocks = []
    for start in range(0, len(side.captions), TEXT_BATCH):
        blocks.append(np.asarray(encoder.encode_texts(side.captions[start:start + TEXT_BATCH], language),
                                 dtype=np.float32))
        if progress:
            progress(f"text-{language}", start + len(blocks[-1]), len(side.captions))
    return np.concatenate(blocks)


def _text_to_text(plan: dict[str, _Side], encoder, index: str, progress) -> dict:
    english = plan["en"]
    english_vectors = _encode(encoder, english, "en", progress)
    per_language = {}
    for language, side in plan.items():
        if language == "en":
            continue
        vectors = _encode(encoder, side, language, progress)
        ours, theirs = set(side.pairs) - {None}, set(english.pairs) - {None}
        to_english = [i for i, p in enumerate(side.pairs) if p in theirs]
        from_english = [i for i, p in enumerate(english.pairs) if p in ours]
        forward = paired_text_recall(vectors[to_english], english_vectors, [side.pairs[i] for i in to_english],
                                     english.pairs, index)
        backward = paired_text_recall(english_vectors[from_english], vectors, [english.pairs[i] for i in from_english],
                                      side.pairs, index)
        metrics = {f"target_to_english_recall@{k}": forward[k] for k in KS}
        metrics |= {f"english_to_target_recall@{k}": backward[k] for k in KS}
        metrics["mean_recall"] = float(np.mean(list(metrics.values())))
        per_language[language] = {"captions": len(side.captions), "english_captions": len(english.captions),
                                  "target_queries": len(to_english), "english_queries": len(from_english),
                                  "metrics": metrics}
    return per_language


def _text_identity(encoder, spec: str) -> str:
    """What names the text encoder in the result (never the image tower: a text-only encoder has none)."""
    text_identity = getattr(encoder, "text_identity", None)
    if callable(text_identity):
        return str(text_identity("en"))
    return str(getattr(encoder, "identity", None) or spec)
