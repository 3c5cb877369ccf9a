"""The non-native tokenizer: trained here with HF `tokenizers`, or loaded by name or path.

Trained tokenizers are byte-level BPE: any text encodes (never an unknown token), but a script
the tokenizer never saw falls back to raw bytes, three or more tokens a character. For such a
language `extend_vocabulary` learns a small BPE on its text and appends the tokens the shared
vocabulary lacks, with ids from the shared vocabulary's size on, in a tokenizer that language's
pack owns. The shared tokenizer file never changes, so every earlier language's ids stay the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from mlclip_cli.errors import MlclipError
from mlclip_cli.inputs import local_file, looks_like_path

SPECIALS = ("<pad>", "<sos>", "<eos>")
# Han characters, each split off before BPE as BERT's tokenizer does: unspaced Chinese and Japanese
# would otherwise merge into whole phrases ("蓝色小十字形", blue small cross, one token), so every
# colour x size x shape combination would need an embedding of its own.
_HAN = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_SOS_NAMES = ("<sos>", "<s>", "[CLS]", "<|startoftext|>", "<bos>")
_EOS_NAMES = ("<eos>", "</s>", "[SEP]", "<|endoftext|>")
_PAD_NAMES = ("<pad>", "[PAD]")


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte <-> printable-character table, as byte-level BPE uses it: char -> byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


_BYTE_OF = _byte_level_alphabet()


@dataclass
class TextTokenizer:
    """A `tokenizers.Tokenizer` with the ids MLA needs, and encoding to padded id tensors."""

    tokenizer: Tokenizer
    sos: int
    eos: int
    pad: int
    # Splits a caption into words first (Chinese, Japanese: text_segment.py); None: as it is.
    segment: Callable[[str], str] | None = dataclasses.field(default=None, compare=False)

    def for_language(self, language: str, cjk: str) -> "TextTokenizer":
        """This tokenizer as `language` uses it under the extension's `cjk` choice."""
        from mlclip_cli.text_segment import segmenter_for

        split = segmenter_for(language, cjk)
        return self if split is None else dataclasses.replace(self, segment=split)

    def _words(self, texts) -> list[str]:
        return [self.segment(text) for text in texts] if self.segment is not None else list(texts)

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> "TextTokenizer":
        vocab = tokenizer.get_vocab()

        def find(names, what):
            for name in names:
                if name in vocab:
                    return vocab[name]
            raise MlclipError(f"tokenizer has no {what} token (looked for {', '.join(names)})")

        return cls(tokenizer, find(_SOS_NAMES, "start"), find(_EOS_NAMES, "end"), find(_PAD_NAMES, "padding"))

    @classmethod
    def from_file(cls, path: Path) -> "TextTokenizer":
        try:
            return cls.from_tokenizer(Tokenizer.from_file(str(path)))
        except MlclipError:
            raise
        except Exception as exc:
            raise MlclipError(f"{path}: not a tokenizer file ({str(exc).splitlines()[0]})") from None

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def ids(self, texts: list[str], context_length: int) -> list[list[int]]:
        """SOS + pieces + EOS per text, pieces cut so the EOS always fits the context."""
        encoded = self.tokenizer.encode_batch(self._words(texts), add_special_tokens=False)
        return [[self.sos, *e.ids[:context_length - 2], self.eos] for e in encoded]

    def encode(self, texts: list[str], context_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids [n, longest] and lengths [n] (the EOS sits at length - 1)."""
        rows = self.ids(texts, context_length)
        longest = max(len(r) for r in rows)
        ids = torch.full((len(rows), longest), self.pad, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
        return ids, torch.tensor([len(r) for r in rows])

    def byte_fallback_rate(self, texts: list[str]) -> float:
        """Share of tokens that are a lone non-ASCII byte: how badly this tokenizer knows a script."""
        vocab = {i: t for t, i in self.tokenizer.get_vocab().items()}
        encoded = self.tokenizer.encode_batch(self._words(texts), add_special_tokens=False)
        total = sum(len(e.ids) for e in encoded)
        lone = sum(1 for e in encoded for i in e.ids
                   if len(vocab.get(i, "")) == 1 and _BYTE_OF.get(vocab[i], 0) >= 0x80)
        return lone / total if total else 0.0


def train_bpe(texts: list[str], vocab_size: int, split_han: bool = True) -> TextTokenizer:
    """A byte-level BPE in CLIP's style (case kept); `split_han`: Han characters split apart first
    (`--cjk chars`), else BPE within the words of already segmented text (`--cjk words`)."""
    tokenizer = Tokenizer(models.BPE())
    steps = [pre_tokenizers.Split(Regex(_HAN), behavior="isolated")] if split_han else []
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([*steps, pre_tokenizers.ByteLevel(add_prefix_space=True)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return TextTokenizer.from_tokenizer(tokenizer)


def tokenizer_file(spec: str) -> Path | None:
    """The local tokenizer.json that --tokenizer `spec` names (a file, or a folder holding one), or
    None for a Hugging Face name; a path that is missing or holds no tokenizer.json is one line."""
    if not looks_like_path(spec, hub_names=True):
        return None
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "tokenizer.json").is_file():
            raise MlclipError(f"--tokenizer {spec}: a folder without a tokenizer.json")
        return path / "tokenizer.json"
    return local_file(spec, "--tokenizer", "tokenizer file")


def load_tokenizer(spec: str) -> TextTokenizer:
    """A tokenizer.json file, a folder holding one, or a Hugging Face name (needs the hub)."""
    path = tokenizer_file(spec)
    if path is not None:
        return TextTokenizer.from_file(path)
    try:
        return TextTokenizer.from_tokenizer(Tokenizer.from_pretrained(spec))
    except MlclipError:
        raise
    except Exception as exc:  # offline or an unknown name: one line
        raise MlclipError(f"--tokenizer {spec}: no such local file or folder, and not a tokenizer the hub gives "
                          f"({str(exc).splitlines()[0]})") from None


def extend_vocabulary(shared: TextTokenizer, texts: list[str], new_tokens: int) -> tuple[TextTokenizer, int]:
    """The shared tokenizer plus up to `new_tokens` tokens learnt on `texts`; returns it and how
    many tokens were added. Shared ids and merges come first and keep their numbers."""
    state = json.loads(shared.to_json())
    model = state.get("model", {})
    if model.get("type") != "BPE" or not isinstance(state.get("pre_tokenizer"), dict) \
            or "ByteLevel" not in json.dumps(state.get("pre_tokenizer")):
        raise MlclipError("vocabulary extension needs a byte-level BPE shared tokenizer (the kind mlclip trains)")
    split_han = "Split" in json.dumps(state.get("pre_tokenizer"))  # learn the way the shared one did
    learnt = json.loads(train_bpe(texts, new_tokens + len(SPECIALS) + 256, split_han).to_json())["model"]
    vocab = dict(model["vocab"])
    next_id = shared.vocab_size
    added = 0
    for token, _ in sorted(learnt["vocab"].items(), key=lambda kv: kv[1]):
        if token not in vocab and token not in SPECIALS:
            vocab[token] = next_id
            next_id += 1
            added += 1
    known = {tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]}
    merges = list(model["merges"])
    for merge in learnt["merges"]:
        key = tuple(merge) if isinstance(merge, list) else tuple(merge.split(" "))
        if key not in known:
            merges.append(merge)
            known.add(key)
    model["vocab"], model["merges"] = vocab, merges
    return TextTokenizer.from_tokenizer(Tokenizer.from_str(json.dumps(state))), added
