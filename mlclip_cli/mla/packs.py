"""An MLA extension folder on disk: the shared block once, one pack per language.

    extension.json                  method, base model identity and hashes, encoder shape
    shared/tokenizer.json           the non-native tokenizer
    shared/embedding.safetensors    the shared token table (+ W_e)
    packs/<lang>.safetensors        that language's acquirers (+ its extra token rows)
                                    (empty with acquirer "none" and no extra rows)
    packs/<lang>.tokenizer.json     only when the language extended the vocabulary
    packs/<lang>.json               the pack's card, written last: a pack without a card does not exist

The index and the cards follow the extension folder format (core/extension.py). Every file is
written atomically. Adding a language writes only its own three files, so every
other file (and so every other language's output) stays bit-identical. Loading checks every
hash and refuses a pack made for another base model, tokenizer or shared block.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from safetensors.torch import save_file

from mlclip_cli import __version__
from mlclip_cli.atomic import atomic_path
from mlclip_cli.core.extension import (EXTENSION_FILE, Extension, git_revision, load_tensors, now, sha256_file,
                                       unavailable, write_card)
from mlclip_cli.errors import MlclipError
from mlclip_cli.locks import writer_lock
from mlclip_cli.mla.model import LanguagePack, MlaTextEncoder
from mlclip_cli.mla.tokenizer import TextTokenizer

METHOD = "mla"


def check_pack(extension: Extension, language: str) -> None:
    """Refuse, in one line, a pack that was made for another base, tokenizer or shared block, or
    whose weights are not the ones its card describes."""
    card = extension.cards[language]
    info = extension.info
    for key, what in (("base_identity", "base model"), ("tower_sha256", "base model's text tower"),
                      ("tokenizer_sha256", "tokenizer"), ("shared_sha256", "shared embedding block")):
        if card.get(key) != info[key]:
            raise MlclipError(f"pack '{language}' in {extension.folder} was built for another {what} "
                              f"({str(card.get(key))[:24]}, this extension has {str(info[key])[:24]}); "
                              "remove it with `mlclip packs remove` or train it again")
    weights = extension.pack_path(language)
    if not weights.is_file() or sha256_file(weights) != card.get("pack_sha256"):
        raise MlclipError(f"{weights}: missing or corrupt (its hash is not the one in its card)")
    if card.get("extra_tokens"):
        tok = extension.pack_path(language, ".tokenizer.json")
        if not tok.is_file() or sha256_file(tok) != card.get("pack_tokenizer_sha256"):
            raise MlclipError(f"{tok}: missing or corrupt (its hash is not the one in its card)")


def write_shared(folder: Path, encoder: MlaTextEncoder, tokenizer: TextTokenizer) -> tuple[str, str]:
    """Write the shared tokenizer and block; return their sha256s."""
    with atomic_path(folder / "shared" / "tokenizer.json") as tmp:
        tmp.write_text(tokenizer.to_json(), encoding="utf-8")
    state = {k: v.detach().float().contiguous().cpu() for k, v in encoder.shared.state_dict().items()}
    with atomic_path(folder / "shared" / "embedding.safetensors") as tmp:
        save_file(state, str(tmp))
    return sha256_file(folder / "shared" / "tokenizer.json"), sha256_file(folder / "shared" / "embedding.safetensors")


def write_pack(extension_folder: Path, info: dict, language: str, pack: LanguagePack,
               tokenizer: TextTokenizer | None, card: dict, before_card: Callable[[], None] | None = None) -> dict:
    """Write one language's weights, its tokenizer when it has its own, then (after `before_card`)
    its card."""
    weights = extension_folder / "packs" / f"{language}.safetensors"
    state = {k: v.detach().float().contiguous().cpu() for k, v in pack.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    tokenizer_sha = None
    if tokenizer is not None:
        path = extension_folder / "packs" / f"{language}.tokenizer.json"
        with atomic_path(path) as tmp:
            tmp.write_text(tokenizer.to_json(), encoding="utf-8")
        tokenizer_sha = sha256_file(path)
    fields = {
        "tokenizer_sha256": info["tokenizer_sha256"], "shared_sha256": info["shared_sha256"],
        "pack_sha256": sha256_file(weights), "pack_tokenizer_sha256": tokenizer_sha,
        "parameters": int(sum(v.numel() for v in state.values())), **card,
        "mlclip_version": __version__, "git_revision": git_revision(), "created": now(),
    }
    if before_card:
        before_card()
    card = write_card(extension_folder, language, info["method"], info, fields)
    return card


def problems(extension: Extension) -> dict[str, str]:
    """Every pack that would not load, and why (an empty dict: all of them are whole)."""
    found = dict(extension.broken)
    shared = extension.folder / "shared" / "embedding.safetensors"
    if not shared.is_file() or sha256_file(shared) != extension.info["shared_sha256"]:
        found["shared"] = f"{shared}: missing or corrupt (its hash is not the one in {EXTENSION_FILE})"
    for language in extension.languages:
        try:
            check_pack(extension, language)
        except MlclipError as exc:
            found[language] = str(exc)
    return found


def remove_pack(extension: Extension, language: str) -> list[Path]:
    """A pack's files, its card first (a broken card too: removing is how a broken pack is mended)."""
    if language not in extension.cards and language not in extension.broken:
        raise MlclipError(unavailable(extension, language))
    removed = []
    with writer_lock(extension.folder, "extension folder"):  # never while `extend` writes it
        card = extension.pack_path(language, ".json")
        card.unlink()  # the card first: from here on the pack does not exist
        removed.append(card)
        for suffix in (".safetensors", ".tokenizer.json"):
            path = extension.pack_path(language, suffix)
            if path.exists():
                path.unlink()
                removed.append(path)
    return removed


def load_encoder_weights(extension: Extension, encoder: MlaTextEncoder, languages: list[str],
                         skip_broken: bool = False) -> dict[str, TextTokenizer | None]:
    """Fill `encoder` with the shared block and the packs of `languages` (each checked first);
    return each language's own tokenizer (None: the shared one). With `skip_broken` a pack that
    fails its check is left out and recorded in `extension.broken`, so the others stay usable."""
    shared_path = extension.folder / "shared" / "embedding.safetensors"
    if not shared_path.is_file() or sha256_file(shared_path) != extension.info["shared_sha256"]:
        raise MlclipError(f"{shared_path}: missing or corrupt (its hash is not the one in {EXTENSION_FILE})")
    try:
        encoder.shared.load_state_dict(load_tensors(shared_path))
    except RuntimeError as exc:
        raise MlclipError(f"{shared_path}: does not fit this encoder ({str(exc).splitlines()[0]})") from None
    own: dict[str, TextTokenizer | None] = {}
    for language in languages:
        if language not in extension.cards:
            raise MlclipError(unavailable(extension, language))
        try:
            check_pack(extension, language)
        except MlclipError as exc:
            if not skip_broken:
                raise
            extension.broken[language] = str(exc)
            continue
        card = extension.cards[language]
        pack = encoder.add_pack(language, int(card.get("extra_tokens") or 0))
        try:
            pack.load_state_dict(load_tensors(extension.pack_path(language)))
        except RuntimeError as exc:
            raise MlclipError(f"{extension.pack_path(language)}: does not fit this encoder "
                              f"({str(exc).splitlines()[0]})") from None
        own[language] = (TextTokenizer.from_file(extension.pack_path(language, ".tokenizer.json"))
                         if card.get("extra_tokens") else None)
    return own
