"""CLL-CLIP's dynamic vocabulary for a Hugging Face WordPiece tower (BERT, MiniLM).

A new language's WordPiece is learnt with the base tokenizer's own normaliser and
pre-tokeniser; the pieces the base vocabulary lacks get new ids from its size on (new rows of
the word-embedding table). WordPiece picks the longest piece it knows, so a new piece could
change how protected text (English, earlier languages) splits: every piece that would is
dropped, until the protected words tokenise exactly as before.

Same interface as ClipVocabulary (the open_clip BPE one), so the continual runner takes either.
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Sequence

from tokenizers import Tokenizer, models, trainers

from mlclip_cli.continual.vocab import GrownVocabulary, LearnedTokens
from mlclip_cli.errors import ArtifactError, MlclipError

ARTIFACT = "mlclip-wordpiece-vocabulary"
SCHEMA_VERSION = 1


class WordPieceVocabulary(GrownVocabulary):
    def __init__(self, base) -> None:
        """`base`: mlclip's HfTokenizer (models/hf_text.py) of the frozen tower."""
        self.base = base
        state = json.loads(base.tokenizer.backend_tokenizer.to_str())
        if state.get("model", {}).get("type") != "WordPiece":
            raise MlclipError(f"cll-clip on a HF tower extends WordPiece vocabularies (BERT, MiniLM); this tokenizer's "
                              f"model is {state.get('model', {}).get('type')}")
        self._state = state
        self._base_vocab: dict[str, int] = dict(state["model"]["vocab"])
        self.base_size = len(self._base_vocab)
        self.sot, self.eot, self.pad = base.sot_token_id, base.eot_token_id, base.pad_token_id
        self.split_han = False  # BERT's pre-tokeniser already splits every CJK character
        self.additions: list[LearnedTokens] = []
        self._vocab = dict(self._base_vocab)
        self._protected: set[str] = set()  # normalised, pre-tokenised words that must split as before
        self._tokenizer = self._build(self._vocab)

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def _build(self, vocab: dict[str, int]) -> Tokenizer:
        state = json.loads(json.dumps(self._state))
        state["model"]["vocab"] = vocab
        state["truncation"] = state["padding"] = None
        return Tokenizer.from_str(json.dumps(state))

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def ids(self, texts: Sequence[str], context: int) -> list[list[int]]:
        """[CLS] + pieces + [SEP] per text, cut to `context` with [SEP] last (as the base tokenizer
        with truncation: English gets exactly the base's ids)."""
        encoded = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        limit = min(context, self.base.max_length) - 2
        return [[self.sot, *e.ids[:limit], self.eot] for e in encoded]

    def token_set(self, texts: Sequence[str]) -> set[int]:
        used = {self.sot, self.eot}
        for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False):
            used.update(e.ids)
        return used

    def _words(self, texts: Iterable[str]) -> set[str]:
        normaliser, splitter = self._tokenizer.normalizer, self._tokenizer.pre_tokenizer
        words: set[str] = set()
        for text in texts:
            normal = normaliser.normalize_str(text) if normaliser else text
            words.update(w for w, _ in (splitter.pre_tokenize_str(normal) if splitter else [(normal, None)]))
        return words

    def protect(self, texts: Sequence[str]) -> None:
        self._protected |= self._words(texts)

    def learn(self, language: str, texts: Sequence[str], budget: int = 10_000) -> LearnedTokens:
        """Learn a WordPiece of `budget` pieces on `texts`; append the pieces the vocabulary lacks
        that leave every protected word's split unchanged."""
        if language in self.languages:
            raise MlclipError(f"vocabulary: '{language}' was already added")
        learner = self._build({"[UNK]": 0})
        learner.model = models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##")
        specials = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t in self._vocab]
        learner.train_from_iterator(list(texts), trainers.WordPieceTrainer(vocab_size=budget, special_tokens=specials,
                                                                          show_progress=False))
        fresh = [t for t, _ in sorted(learner.get_vocab().items(), key=lambda kv: kv[1]) if t not in self._vocab]
        protected = sorted(self._protected)
        before = self._tokenizer.encode_batch(protected, add_special_tokens=False) if protected else []
        dropped = 0
        while True:
            vocab = dict(self._vocab)
            for token in fresh:
                vocab[token] = len(vocab)
            trial = self._build(vocab)
            after = trial.encode_batch(protected, add_special_tokens=False) if protected else []
            candidates = set(fresh)
            culprits = {token for b, a in zip(before, after) if b.ids != a.ids for token in a.tokens if token in candidates}
            if not culprits:
                break
            dropped += len(culprits)
            fresh = [t for t in fresh if t not in culprits]
        self._vocab, self._tokenizer = vocab, trial
        self._protected |= self._words(texts)
        note = (f"{len(fresh)} new WordPiece tokens of {budget} learnt on {len(texts)} captions"
                + (f"; {dropped} dropped to keep protected text unchanged" if dropped else ""))
        added = LearnedTokens(language, [], fresh, budget, len(texts), note)
        self.additions.append(added)
        return added

    @property
    def _fingerprint(self) -> dict:
        digest = hashlib.sha256(json.dumps(self._base_vocab, sort_keys=True).encode("utf-8")).hexdigest()
        return {"size": self.base_size, "sot": self.sot, "eot": self.eot, "vocab_sha256": digest}

    def to_json(self) -> str:
        return json.dumps({"artifact": ARTIFACT, "schema_version": SCHEMA_VERSION, "base": self._fingerprint,
                           "additions": [{"language": a.language, "new_tokens": a.new_tokens, "budget": a.budget,
                                          "words": a.words, "note": a.note} for a in self.additions]},
                          ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str, base) -> "WordPieceVocabulary":
        doc = cls.read_document(text, ARTIFACT, SCHEMA_VERSION)
        vocab = cls(base)
        if doc.get("base") != vocab._fingerprint:
            raise ArtifactError("vocabulary: built on another base tokenizer (its vocabulary differs)")
        for added in doc.get("additions", []):
            for token in added["new_tokens"]:
                vocab._vocab[token] = len(vocab._vocab)
            vocab.additions.append(LearnedTokens(added["language"], [], list(added["new_tokens"]), added["budget"],
                                                 added["words"], added["note"]))
        vocab._tokenizer = vocab._build(vocab._vocab)
        return vocab


def vocabulary_for(clip, split_han: bool, saved_json: str | None = None, cjk: str = "chars"):
    """The dynamic vocabulary of a base: CLIP's BPE (ClipVocabulary) or a HF WordPiece."""
    from mlclip_cli.continual.vocab import ClipVocabulary

    if clip.kind == "text":
        return WordPieceVocabulary.from_json(saved_json, clip.tokenizer) if saved_json else WordPieceVocabulary(clip.tokenizer)
    return (ClipVocabulary.from_json(saved_json, clip.tokenizer) if saved_json
            else ClipVocabulary(clip.tokenizer, split_han=split_han, cjk_words=cjk == "words"))
