"""MLA end to end: `train_mla` (shared block + packs for several languages) and `extend_mla`
(one more language, the shared block frozen), reading a manifest and the feature cache and
writing an extension folder (see packs.py)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.atomic import atomic_path
from mlclip_cli.core import extension as folder_format
from mlclip_cli.core import stream
from mlclip_cli.core.acquirer import check_acquirer
from mlclip_cli.core.pairs import PairData, choose_split, evaluation_set, load_pairs
from mlclip_cli.core.towers import tower_sha256
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.errors import MlclipError
from mlclip_cli.features import FeaturesConfig, compute_features
from mlclip_cli.inputs import local_file, local_folder
from mlclip_cli.locks import writer_lock
from mlclip_cli.mla import packs
from mlclip_cli.mla.model import MlaTextEncoder
from mlclip_cli.mla.tokenizer import TextTokenizer, extend_vocabulary, load_tokenizer, tokenizer_file, train_bpe
from mlclip_cli.text_segment import check_mode, segment
from mlclip_cli.mla.train import (LoopConfig, LoopResult, check_losses, check_resumable, clear_state, parse_stages,
                                  run_stages, stage_schedule)
from mlclip_cli.training import distributed
from mlclip_cli.workspace import feature_folder

TOKENIZER_SAMPLE = 20_000  # captions per language the shared BPE is learnt from (the world saturates far below)
BYTE_FALLBACK_LIMIT = 0.05  # above this share of lone-byte tokens, a new language extends the vocabulary
CLIP_INIT = "clip"  # embedding_init: every shared row from the frozen CLIP's own rows of that token's text


@dataclass(frozen=True)
class MlaConfig:
    manifest: Path
    out: Path  # the extension folder
    languages: tuple[str, ...]
    features_root: Path  # the workspace feature cache
    model: str = "mlclip-tiny"
    loop: LoopConfig = field(default_factory=LoopConfig)
    hidden: int | None = None  # acquirer bottleneck; None: half the tower's width (the paper's 256 of 512)
    vocab_size: int = 4000  # of a tokenizer trained here
    tokenizer: str | None = None  # a tokenizer.json, a folder, or a HF name; None: train one here
    # None: N(0, 0.02); a safetensors with a [vocab, dim] table; or "clip": each row the mean of the
    # frozen CLIP's token rows of that token's text (the offline analogue of the paper's M-BERT init)
    embedding_init: Path | str | None = None
    acquirer: str = "mlp"  # mlp (the paper's) | linear (no ReLU, same size) | none (only the shared table trains)
    max_pairs: int | None = None  # at most this many training captions per language (seeded by loop.seed)
    vocab_extension: str = "auto"  # auto | always | never: may a language add tokens of its own?
    extra_tokens: int = 1000  # at most this many tokens when it does
    # Chinese and Japanese before BPE: "words" (a segmenter, text_segment.py) or "chars" (each Han
    # character a token, the earlier default); a given --tokenizer keeps its own pre-tokenizer.
    cjk: str = "words"
    split: str | None = None  # training split (None: train when there is one)
    features_dir: Path | None = None  # an explicit, already computed feature folder
    resume: bool = False
    replace: bool = False  # extend: replace an existing pack of this language
    fallback_val: bool = True  # validate on the manifest's val split when it has one
    device: str | None = None


@dataclass
class MlaResult:
    out: Path
    languages: list[str]
    loop: LoopResult
    cards: dict[str, dict]
    data: dict
    tokenizer_note: dict[str, str]
    text_only: bool = False  # a text-only base: validation is text to text (caption -> its English one)


def _check_languages(languages: tuple[str, ...]) -> list[str]:
    if not languages:
        raise MlclipError("name at least one language to teach (--langs de,fr or --lang ko)")
    if "en" in languages:
        raise MlclipError("English goes through the frozen CLIP unchanged; leave it out of --langs")
    if len(set(languages)) != len(languages):
        raise MlclipError(f"a language is named twice in {','.join(languages)}")
    return list(languages)


def _needs(config: MlaConfig) -> tuple[bool, bool]:
    stages = parse_stages(config.loop.stages)
    return any("nlt" in s for s in stages), any("le" in s for s in stages)


def _base(model: str, device: str | None) -> FrozenClip:
    return FrozenClip.load(model, device)


def _check_base(base, need_images: bool, model: str) -> None:
    if need_images and not base.has_images:
        raise MlclipError(f"'{model}' is a text-only encoder (no image tower): only NLT can train; pass --stages nlt")


def _is_clip_init(embedding_init) -> bool:
    return isinstance(embedding_init, str) and embedding_init == CLIP_INIT


def _clip_ids(clip_tokenizer, text: str) -> list[int]:
    """CLIP's token ids of `text`, without start/end tokens."""
    if hasattr(clip_tokenizer, "encoder") and hasattr(clip_tokenizer, "encode"):  # open_clip's SimpleTokenizer
        return list(clip_tokenizer.encode(text))
    inner = getattr(clip_tokenizer, "tokenizer", None)  # open_clip's HFTokenizer
    if inner is not None and hasattr(inner, "encode"):
        return list(inner.encode(text, add_special_tokens=False))
    raise MlclipError(f"--embedding-init clip: cannot tokenize with this CLIP's tokenizer ({type(clip_tokenizer).__name__})")


@torch.no_grad()
def clip_rows(tokenizer: TextTokenizer, ids, clip_tokenizer, embedding: torch.Tensor) -> dict[int, torch.Tensor]:
    """id -> mean of the frozen CLIP's token-embedding rows (`embedding`) of that token's text
    (decoded from our tokenizer, encoded with CLIP's tokenizer without start/end tokens). Tokens
    with no text of their own (special tokens, a lone byte of a multi-byte character) are left out."""
    special = {tokenizer.sos, tokenizer.eos, tokenizer.pad}
    rows = {}
    for token in ids:
        if token in special:
            continue
        text = tokenizer.tokenizer.decode([int(token)], skip_special_tokens=False).strip()
        if not text or "\ufffd" in text:
            continue
        theirs = [i for i in _clip_ids(clip_tokenizer, text) if 0 <= i < embedding.shape[0]]
        if theirs:
            rows[int(token)] = embedding[theirs].float().mean(0)
    return rows


def _init_shared(encoder: MlaTextEncoder, tokenizer: TextTokenizer, base_model, embedding_init: Path | str | None) -> int:
    """Start the shared rows at N(0, 0.02), the start/end rows at CLIP's own start/end-of-text rows;
    or from a given table; or ("clip") from CLIP's rows of each token's text. Returns how many rows
    the init set (besides start/end)."""
    tower = encoder.tower
    table = encoder.shared.table
    set_rows = 0
    with torch.no_grad():
        if _is_clip_init(embedding_init):
            if table.shape[1] != tower.width:
                raise MlclipError(f"--embedding-init clip needs the shared table as wide as the text tower "
                                  f"({tower.width}), not {table.shape[1]}")
            found = clip_rows(tokenizer, range(min(tokenizer.vocab_size, table.shape[0])), base_model.clip.tokenizer,
                              tower.token_embedding.weight)
            for token, row in found.items():
                table[token] = row.to(table.dtype)
            set_rows = len(found)
        elif embedding_init is not None:
            weights = folder_format.load_tensors(embedding_init)
            if len(weights) != 1:
                raise MlclipError(f"{embedding_init}: expected one [vocab, dim] tensor, found {len(weights)}")
            init = next(iter(weights.values())).float()
            if tuple(init.shape) != tuple(table.shape):
                raise MlclipError(f"{embedding_init}: table is {tuple(init.shape)}, the tokenizer needs {tuple(table.shape)}")
            table.copy_(init)
            return len(init)
        if table.shape[1] == tower.width:
            clip_tokenizer = base_model.clip.tokenizer
            for ours, theirs in ((tokenizer.sos, getattr(clip_tokenizer, "sot_token_id", None)),
                                 (tokenizer.eos, getattr(clip_tokenizer, "eot_token_id", None))):
                if theirs is not None:
                    table[ours] = tower.token_embedding.weight[theirs]
    return set_rows


def _init_record(embedding_init) -> str | None:
    """What extension.json records: None (random), "clip", or the table's path."""
    if embedding_init is None or _is_clip_init(embedding_init):
        return embedding_init
    return str(Path(embedding_init).resolve())


def limit_pairs(data: PairData, summary: dict, max_pairs: int | None, seed: int) -> tuple[PairData, dict]:
    """At most `max_pairs` rows of each language, drawn by (seed, language) alone (so the same
    whichever other languages are trained), in their original order."""
    if max_pairs is None:
        return data, summary
    if max_pairs < 1:
        raise MlclipError(f"--max-pairs must be at least 1, not {max_pairs}")
    keep = []
    for language in dict.fromkeys(data.languages.tolist()):
        rows = np.flatnonzero(data.languages == language)
        rng = np.random.default_rng([seed, zlib.crc32(language.encode("utf-8"))])
        keep.append(np.sort(rng.permutation(rows)[:max_pairs]))
    limited = data.take(np.sort(np.concatenate(keep)))
    summary = {**summary, "max_pairs": max_pairs, "rows_available": summary["rows"],
               "rows": {lang: int((limited.languages == lang).sum()) for lang in summary["rows"]},
               "images": len(limited.rows_of_image)}
    return limited, summary


def _check_options(config: MlaConfig) -> None:
    check_acquirer(config.acquirer)
    check_mode(config.cjk)
    check_losses(config.loop)
    if config.max_pairs is not None and config.max_pairs < 1:
        raise MlclipError(f"--max-pairs must be at least 1, not {config.max_pairs}")
    # the files the run reads come before any work: a missing one is not found after the features
    if config.tokenizer:
        tokenizer_file(config.tokenizer)
    if config.embedding_init is not None and not _is_clip_init(config.embedding_init):
        local_file(config.embedding_init, "--embedding-init", "safetensors file")
    if config.features_dir is not None:
        local_folder(config.features_dir, "--features", "feature folder")


def _new_options(config: MlaConfig, acquirer: str) -> dict:
    """The ablation settings a resume must match, present only when not at their defaults (so an
    unfinished run of an older version still resumes)."""
    extra = {}
    if acquirer != "mlp":
        extra["acquirer"] = acquirer
    if config.max_pairs is not None:
        extra["max_pairs"] = config.max_pairs
    if _cjk(config) != "chars":
        extra["cjk"] = _cjk(config)
    return extra


def _cjk(config: MlaConfig) -> str:
    """How the extension splits Chinese and Japanese: a tokenizer given by the user is used as it is."""
    return "chars" if config.tokenizer else config.cjk


def _train_tokenizer(config: MlaConfig, rows: pd.DataFrame | None, split: str = "all") -> TextTokenizer:
    """From `rows` in memory, or (None) from the manifest's `split`, reading only the sampled captions."""
    if config.tokenizer:
        return load_tokenizer(config.tokenizer)
    texts = []
    for language in config.languages:
        if rows is None:
            sample = stream.sample_captions(config.manifest, language, split, TOKENIZER_SAMPLE)
        else:
            captions = rows[rows.language == language].caption
            sample = captions.sample(min(TOKENIZER_SAMPLE, len(captions)), random_state=0).tolist()
        texts += segment(sample, language, config.cjk)
    return train_bpe(texts, config.vocab_size, split_han=config.cjk == "chars")


def _streamed_pairs(config: MlaConfig, languages: list[str], need_teacher: bool, need_images: bool, base, progress):
    """load_pairs' rows and checks, with the manifest and the features left on disk."""
    rows, split = choose_split(stream.split_counts(config.manifest), str(config.manifest), languages, config.split)
    if need_teacher and not (rows.language == "en").any():
        raise MlclipError(f"{config.manifest}: no {', '.join(languages)} caption has a parallel English caption "
                          "(same pair_id), which NLT needs; train with --stages le or give parallel data")
    folder = Path(config.features_dir) if config.features_dir else feature_folder(
        config.features_root, config.manifest, split, base.image_identity)
    if config.features_dir is None:
        compute_features(FeaturesConfig(manifest=config.manifest, out=folder, languages=("en",) if need_teacher else (),
                                        split=None if split == "all" else split, images=need_images),
                         encoder=base, progress=progress)
    return stream.stream_pairs(config.manifest, languages, split, need_teacher, need_images, folder,
                               base.image_identity, base.preprocess_description if need_images else None)


def _pairs(config: MlaConfig, languages: list[str], need_teacher: bool, need_images: bool, base, progress):
    """(manifest rows or None, training pairs, their summary): streamed, so memory does not grow with
    the manifest (None), or, for a low-resource run (--max-pairs), the in-memory rows."""
    if config.max_pairs is None:
        return None, *_streamed_pairs(config, languages, need_teacher, need_images, base, progress)
    manifest = read_manifest(config.manifest).to_pandas()
    data, summary = load_pairs(manifest, config.manifest, languages, config.split, need_teacher, need_images, base,
                               config.features_root, config.features_dir, progress)
    return manifest, *limit_pairs(data, summary, config.max_pairs, config.loop.seed)


def _language_tokenizer(config: MlaConfig, shared: TextTokenizer, texts: list[str], allowed: bool) -> tuple[TextTokenizer | None, int, str]:
    """The language's own extended tokenizer when the shared one does not know its script."""
    rate = shared.byte_fallback_rate(texts[:5000])
    wants = config.vocab_extension == "always" or (config.vocab_extension == "auto" and rate > BYTE_FALLBACK_LIMIT)
    if not wants:
        return None, 0, f"shared vocabulary ({rate:.0%} lone-byte tokens)"
    if not allowed:
        return None, 0, f"shared vocabulary ({rate:.0%} lone-byte tokens; extension needs a byte-level BPE)"
    tokenizer, added = extend_vocabulary(shared, texts[:TOKENIZER_SAMPLE], config.extra_tokens)
    return tokenizer, added, (f"shared vocabulary + {added} tokens of its own "
                              f"({rate:.0%} lone-byte tokens in the shared one, {tokenizer.byte_fallback_rate(texts[:5000]):.0%} after)")


def _card(config: MlaConfig, language: str, loop: LoopResult, data: dict, extra: int, note: str, hidden: int,
          acquirer: str = "mlp") -> dict:
    return {
        # every step of the schedule (loop.steps counts only this process's: fewer after --resume)
        "stages": config.loop.stages, "steps": _scheduled_steps(config.loop), "seed": config.loop.seed, "hidden": hidden,
        "acquirer": acquirer,
        "extra_tokens": extra, "vocabulary": note,
        "training": {"loop": asdict(config.loop), "data": {**data, "rows": {language: data["rows"].get(language)}}},
        "val_metrics": loop.val.get(language, {}),
    }


def _scheduled_steps(loop: LoopConfig) -> int:
    return sum(stage_schedule(loop, index, losses).steps for index, losses in enumerate(parse_stages(loop.stages)))


def train_mla(config: MlaConfig, progress: Callable[[str, int, int], None] | None = None,
              on_step=None, on_eval=None) -> MlaResult:
    """One process, or every rank of a torchrun launch (rank 0 writes the extension)."""
    with distributed.session(config.device) as runtime, writer_lock(config.out, "extension folder"):
        return _train_mla(config, runtime, progress, on_step, on_eval)


def _train_mla(config: MlaConfig, runtime, progress, on_step, on_eval) -> MlaResult:
    languages = _check_languages(config.languages)
    _check_options(config)
    out = Path(config.out)
    if folder_format.is_extension(out):
        if config.resume:  # stopped after its last write: the work is done
            raise MlclipError(f"{out}: nothing to resume, the run finished (the extension is complete); "
                              "add languages with `mlclip extend`")
        raise MlclipError(f"{out} already holds a finished extension; add languages with `mlclip extend`, "
                          "or choose another --out")
    state_dir = out / "state"
    check_resumable(state_dir, config.resume, out)
    need_teacher, need_images = _needs(config)
    torch.manual_seed(config.loop.seed)
    base = _base(config.model, str(runtime.device))
    _check_base(base, need_images, config.model)
    manifest, data, summary = _pairs(config, languages, need_teacher, need_images, base, progress)
    saved_tokenizer = state_dir / "tokenizer.json"
    if not (config.resume and saved_tokenizer.is_file()):  # a resumed run uses the tokenizer it started with
        if runtime.is_main:  # learnt once, read by every rank
            if config.max_pairs is not None:  # low-resource: the tokenizer sees only the pairs trained on
                learnt = _train_tokenizer(config, pd.DataFrame({"language": data.languages, "caption": data.captions}))
            else:
                learnt = _train_tokenizer(config, None, summary["split"])
            with atomic_path(saved_tokenizer) as tmp:
                tmp.write_text(learnt.to_json(), encoding="utf-8")
        distributed.barrier()
    tokenizer = TextTokenizer.from_file(saved_tokenizer)
    encoder = MlaTextEncoder(base.clip.model, tokenizer.vocab_size, hidden=config.hidden, acquirer=config.acquirer)
    init_rows = _init_shared(encoder, tokenizer, base, config.embedding_init)
    tokenizers, notes = {}, {}
    for language in languages:
        encoder.add_pack(language)
        tokenizers[language] = tokenizer.for_language(language, _cjk(config))
        notes[language] = "shared vocabulary"
    encoder.to(base.device)
    val_rows = stream.read_split(config.manifest, "val") if manifest is None else manifest
    validation = evaluation_set(val_rows, config.manifest, languages, base, config.features_root, progress)
    loop = run_stages(encoder, encoder, tokenizers, data, config.loop, state_dir,
                      {"languages": languages, "manifest": summary, "tokenizer": tokenizer.sha256(),
                       "hidden": encoder.hidden, **_new_options(config, encoder.acquirer)},
                      validation, base.device, config.resume, on_step, on_eval)
    cards = {}
    if runtime.is_main:
        tokenizer_sha, shared_sha = packs.write_shared(out, encoder, tokenizer)
        info = _extension_info(config, base, encoder, tokenizer_sha, shared_sha, init_rows)
        for language in languages:
            card = _card(config, language, loop, summary, 0, notes[language], encoder.hidden, encoder.acquirer)
            cards[language] = packs.write_pack(out, info, language, encoder.packs[language], None, card)
        # Before the index: a kill between the two leaves no extension and nothing to resume (a rerun
        # trains again, to the same bytes), never a finished extension that still holds a run.
        clear_state(state_dir)
        folder_format.write_index(out, info)  # last: from now on the folder is an extension
    distributed.barrier()
    return MlaResult(out, languages, loop, cards, summary, notes, not base.has_images)


def _extension_info(config: MlaConfig, base, encoder: MlaTextEncoder, tokenizer_sha: str, shared_sha: str,
                    init_rows: int = 0) -> dict:
    return {
        "method": packs.METHOD, "base_model": config.model, "base_identity": base.clip.identity,
        "tower_sha256": tower_sha256(encoder.tower), "tokenizer_sha256": tokenizer_sha, "shared_sha256": shared_sha,
        "encoder": {"vocab_size": int(encoder.shared.table.shape[0]), "emb_dim": int(encoder.shared.table.shape[1]),
                    "width": encoder.tower.width, "hidden": encoder.hidden, "layers": len(encoder.tower.blocks),
                    "context_length": encoder.tower.context_length, "acquirer": encoder.acquirer},
        "embedding_init": _init_record(config.embedding_init),  # None: N(0, 0.02); "clip"; or a table's path
        "embedding_init_rows": init_rows,  # rows the init set (clip: tokens with a text of their own)
        "shared_block_on_extension": "frozen",
        "cjk": _cjk(config),  # words: zh/ja captions split into words before the tokenizers (text_segment.py)
    }


def open_extension(folder: Path, device: str | None = None, languages: list[str] | None = None,
                   skip_broken: bool = False):
    """(extension, base encoder, MlaTextEncoder with the packs of `languages` (all by default),
    language -> tokenizer). `skip_broken`: a pack that fails its check is left out (and listed in
    extension.broken) instead of refusing the whole folder."""
    extension = folder_format.read_extension(folder)
    if extension.info["method"] != packs.METHOD:
        raise MlclipError(f"{folder}: an extension of method '{extension.info['method']}', not {packs.METHOD}")
    base = _base(extension.info["base_model"], device)
    shape = extension.info["encoder"]
    # extension.json of an older version has no "acquirer": its packs are the MLP ones
    encoder = MlaTextEncoder(base.clip.model, shape["vocab_size"], shape["emb_dim"], shape["hidden"],
                             shape.get("acquirer", "mlp"))
    folder_format.check_base(folder, extension.info, base.clip.identity, tower_sha256(encoder.tower))
    shared = TextTokenizer.from_file(folder / "shared" / "tokenizer.json")
    if folder_format.sha256_file(folder / "shared" / "tokenizer.json") != extension.info["tokenizer_sha256"]:
        raise MlclipError(f"{folder / 'shared' / 'tokenizer.json'}: corrupt (its hash is not the one in "
                          f"{folder_format.EXTENSION_FILE})")
    own = packs.load_encoder_weights(extension, encoder, extension.languages if languages is None else languages,
                                     skip_broken)
    encoder.to(base.device).eval()
    cjk = extension_cjk(extension.info)
    tokenizers = {language: (tok or shared).for_language(language, cjk) for language, tok in own.items()}
    return extension, base, encoder, tokenizers, shared


def extension_cjk(info: dict) -> str:
    """How an extension splits Chinese and Japanese (one written before the choice: characters)."""
    return info.get("cjk", "chars")


def extend_mla(config: MlaConfig, progress=None, on_step=None, on_eval=None) -> MlaResult:
    """One process, or every rank of a torchrun launch (rank 0 writes the pack)."""
    with distributed.session(config.device) as runtime, writer_lock(config.out, "extension folder"):
        return _extend_mla(config, runtime, progress, on_step, on_eval)


def _extend_mla(config: MlaConfig, runtime, progress, on_step, on_eval) -> MlaResult:
    languages = _check_languages(config.languages)
    if len(languages) != 1:
        raise MlclipError("extend adds one language at a time (--lang ko)")
    language = languages[0]
    _check_options(config)
    out = Path(config.out)
    if not folder_format.is_extension(out):
        raise MlclipError(f"{out}: no extension here (train one first with `mlclip train --method mla`)")
    extension = folder_format.read_extension(out)
    if language in extension.cards and not config.replace:
        if config.resume and not (out / "state" / language).exists():  # stopped after its card: the pack is done
            raise MlclipError(f"{out}: nothing to resume, the '{language}' pack is finished; "
                              "pass --replace to train it again")
        raise MlclipError(f"{out} already has a '{language}' pack; pass --replace to train it again")
    kind = extension.info["encoder"].get("acquirer", "mlp")
    if config.acquirer not in ("mlp", kind):  # the new pack is always of the extension's own kind
        raise MlclipError(f"{out} has acquirers of kind '{kind}'; a pack added to it has them too, not '{config.acquirer}'")
    others = [lang for lang in extension.languages if lang != language]
    # a broken pack of another language does not stop this one (the others stay frozen and unused here)
    extension, base, encoder, tokenizers, shared = open_extension(out, str(runtime.device), others, skip_broken=True)
    encoder.requires_grad_(False)  # the shared block and the other packs stay exactly as they are
    need_teacher, need_images = _needs(config)
    torch.manual_seed(config.loop.seed)
    _check_base(base, need_images, extension.info["base_model"])
    manifest, data, summary = _pairs(config, [language], need_teacher, need_images, base, progress)
    # the captions its vocabulary learns from: the first ones of its training rows, streamed or not
    texts = data.captions if manifest is not None else data.first_captions(TOKENIZER_SAMPLE)
    cjk = extension_cjk(extension.info)
    own, added, note = _language_tokenizer(config, shared, segment(texts, language, cjk), allowed=True)
    state_dir = out / "state" / language
    check_resumable(state_dir, config.resume, out)
    pack = encoder.add_pack(language, added)  # of the extension's acquirer kind (open_extension)
    if added and _is_clip_init(extension.info.get("embedding_init")):  # its own rows start as the shared ones did
        vocab = int(encoder.shared.table.shape[0])
        with torch.no_grad():
            for token, row in clip_rows(own, range(vocab, vocab + added), base.clip.tokenizer,
                                        encoder.tower.token_embedding.weight).items():
                pack.extra_rows[token - vocab] = row.to(pack.extra_rows.dtype)
    if next(pack.parameters(), None) is None:
        raise MlclipError(f"{out} has acquirer 'none' and '{language}' needs no tokens of its own: its pack would "
                          "have nothing to train (the shared block stays frozen on extend)")
    pack.to(base.device)
    tokenizers[language] = (own or shared).for_language(language, cjk)
    val_rows = stream.read_split(config.manifest, "val") if manifest is None else manifest
    validation = evaluation_set(val_rows, config.manifest, [language], base, config.features_root, progress)
    encoder.train()
    loop = run_stages(encoder, pack, tokenizers, data, config.loop, state_dir,
                      {"languages": [language], "manifest": summary, "tokenizer": tokenizers[language].sha256(),
                       "hidden": encoder.hidden, "shared": extension.info["shared_sha256"],
                       **_new_options(config, encoder.acquirer)},
                      validation, base.device, config.resume, on_step, on_eval)
    card = _card(config, language, loop, summary, added, note, encoder.hidden, encoder.acquirer)
    cards = {}
    if runtime.is_main:
        # the state goes before the card: a kill between leaves no pack and nothing to resume
        cards[language] = packs.write_pack(out, extension.info, language, pack, own, card,
                                           before_card=lambda: clear_state(state_dir))
    distributed.barrier()
    return MlaResult(out, [language], loop, cards, summary, {language: note}, not base.has_images)
