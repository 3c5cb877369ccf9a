"""CLL-CLIP's dynamic vocabulary: CLIP's BPE continued on each new language.

A language's merges rank after every existing merge, so they act only once the older merges are
exhausted; merged strings CLIP lacks get new ids (embedding rows) from the current vocabulary size
on. Pairs adjacent in protected text are never merged, so that text tokenises exactly as before.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Iterable, Sequence

import regex
from open_clip.tokenizer import SimpleTokenizer

from mlclip_cli.errors import ArtifactError, MlclipError

ARTIFACT = "mlclip-clip-vocabulary"
SCHEMA_VERSION = 1
Pair = tuple[str, str]
# One Han, Hiragana or Katakana character, or a run of anything else.
_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]")
_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")


def _cjk_words(word: str) -> list[str]:
    """An unspaced run with Han or kana split into words: Japanese when it has kana, else Chinese."""
    from mlclip_cli.text_segment import segmenter

    return segmenter("ja" if _KANA.search(word) else "zh")(word).split(" ")


_HAN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[^\p{Han}\p{Hiragana}\p{Katakana}]+")
ENCODED_CACHE = 500_000  # captions whose ids are kept


@dataclass(frozen=True)
class LearnedTokens:
    """The merges learnt for one language, in rank order, and the tokens that got new ids."""

    language: str
    merges: list[Pair]
    new_tokens: list[str]
    budget: int
    words: int
    note: str


def _pairs(word: tuple[str, ...]) -> Iterable[Pair]:
    return zip(word, word[1:])


_CLEANED: dict[tuple[str, str], str] = {}


def _cleaned(clean_fn, text: str) -> str:
    """open_clip's cleaning (ftfy + html unescape + whitespace), memoised for the process: it
    costs more than BPE, and every run and vocabulary of a process cleans the same captions."""
    key = (repr(clean_fn), text)
    found = _CLEANED.get(key)
    if found is None:
        if len(_CLEANED) >= ENCODED_CACHE:
            _CLEANED.clear()
        found = _CLEANED[key] = clean_fn(text)
    return found


class GrownVocabulary:
    """What every dynamic vocabulary shares: `base_size` base tokens, then each addition's new
    tokens, with ids in the order the languages came."""

    base_size: int
    additions: list[LearnedTokens]

    @property
    def languages(self) -> list[str]:
        """Languages in the order they were added."""
        return [a.language for a in self.additions]

    def new_ids(self, language: str) -> range:
        """Ids of the tokens `language` added (new ids follow the additions' order)."""
        start = self.base_size
        for added in self.additions:
            if added.language == language:
                return range(start, start + len(added.new_tokens))
            start += len(added.new_tokens)
        raise MlclipError(f"vocabulary: no language {language!r} (added: {', '.join(self.languages) or 'none'})")

    def to_json(self) -> str:
        raise NotImplementedError

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @staticmethod
    def read_document(text: str, artifact: str, version: int) -> dict:
        """A vocabulary file's JSON object, or ArtifactError saying why it is not one."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"vocabulary: not JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(doc, dict) or doc.get("artifact") != artifact or doc.get("schema_version") != version:
            raise ArtifactError(f"vocabulary: not a {artifact} schema {version} file")
        return doc


class ClipVocabulary(GrownVocabulary):
    """CLIP's BPE plus merges appended per language."""

    pad = 0  # the id batches are padded with (never read: pooling is at the EOS position)

    def __init__(self, base: SimpleTokenizer, additions: Sequence[LearnedTokens] = (), split_han: bool = False,
                 cjk_words: bool = False) -> None:
        self.base = base
        # cjk_words: an unspaced Chinese or Japanese run is split into words (text_segment.py: kana
        # in it means Japanese), then BPE works within the words, as MLA's --cjk words does.
        self.cjk_words = cjk_words
        # CLIP's regex keeps an unspaced run of Han/kana as one "word", so BPE on Chinese or
        # Japanese learns whole-phrase tokens; split_han makes each such character a word (as
        # BERT does). It changes no text without those characters, English included.
        self.split_han = split_han
        self.base_size = len(base.encoder)
        self.sot: int = base.sot_token_id
        self.eot: int = base.eot_token_id
        self._special = {base.decoder[i] for i in base.all_special_ids}
        # Copies: the base tokenizer is shared with open_clip and must stay as it is.
        self._ranks: dict[Pair, int] = dict(base.bpe_ranks)
        self._next_rank = max(self._ranks.values(), default=-1) + 1
        self._encoder: dict[str, int] = dict(base.encoder)
        self._decoder: dict[int, str] = dict(base.decoder)
        self._cache: dict[str, tuple[str, ...]] = {t: (t,) for t in self._special}
        self._encoded: dict[str, tuple[int, ...]] = {}
        self._banned: set[Pair] = set()  # pairs adjacent in protected text: never merged
        self.additions: list[LearnedTokens] = []
        for added in additions:
            self._append(added)

    @property
    def vocab_size(self) -> int:
        """Base tokens plus every new token."""
        return len(self._encoder)

    def encode(self, text: str) -> list[int]:
        """Token ids without sot/eot, as SimpleTokenizer.encode with the appended merges."""
        # Whole captions are cached too: cleaning (ftfy) costs more than BPE, and training
        # re-encodes the same captions every epoch.
        found = self._encoded.get(text)
        if found is None:
            if len(self._encoded) >= ENCODED_CACHE:
                self._encoded.clear()
            found = self._encoded[text] = tuple(self._encoder[p] for word in self._words(text) for p in self._pieces(word))
        return list(found)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of these ids, '</w>' read as a space, as SimpleTokenizer.decode."""
        raw = bytearray(self.base.byte_decoder[c] for c in "".join(self._decoder[i] for i in ids))
        return raw.decode("utf-8", errors="replace").replace("</w>", " ")

    def ids(self, texts: Sequence[str], context: int) -> list[list[int]]:
        """[sot] + encode + [eot] per text, cut to `context` with eot last, as open_clip; no padding."""
        rows = [[self.sot, *self.encode(text), self.eot] for text in texts]
        return [row if len(row) <= context else row[:context - 1] + [self.eot] for row in rows]

    def truncated(self, texts: Sequence[str], context: int) -> int:
        """How many texts `ids` would cut at `context`."""
        return sum(len(self.encode(t)) + 2 > context for t in texts)

    def token_set(self, texts: Sequence[str]) -> set[int]:
        """Ids these texts use, sot and eot included."""
        return {self.sot, self.eot}.union(*(self.encode(t) for t in texts))

    def protect(self, texts: Sequence[str]) -> None:
        """From now on, never merge a pair adjacent in these texts' current tokenisation, so they
        tokenise exactly as now (learnt languages protect their own corpus automatically)."""
        for text in set(texts):
            word: list[str] = []
            for piece in (self._decoder[i] for i in self.encode(text)):
                word.append(piece)
                if piece.endswith("</w>"):
                    self._banned.update(_pairs(tuple(word)))
                    word = []

    def learn(self, language: str, texts: Sequence[str], budget: int = 10_000,
              protected: Sequence[str] = (), min_count: int = 2) -> LearnedTokens:
        """Continue BPE on `texts`, never merging a pair adjacent in protected text (`protected`,
        earlier `protect` calls and earlier languages' corpora); append it and return it."""
        if not language or language in self.languages:
            raise MlclipError(f"vocabulary: language {language!r} is empty or already added "
                              f"(added: {', '.join(self.languages) or 'none'})")
        if budget < 0 or min_count < 1:
            raise MlclipError(f"vocabulary: need budget >= 0 and min_count >= 1, got {budget} and {min_count}")
        self.protect(protected)
        freq: Counter[str] = Counter()
        text_words = {}
        for text, repeats in Counter(texts).items():
            text_words[text] = self._words(text)
            for w in text_words[text]:
                if w not in self._special:
                    freq[w] += repeats
        words = sorted(freq)
        weights = [freq[w] for w in words]
        segs = [self._pieces(w) for w in words]
        banned = self._banned
        counts: Counter[Pair] = Counter()
        where: dict[Pair, set[int]] = defaultdict(set)
        for i, seg in enumerate(segs):
            for p in _pairs(seg):
                counts[p] += weights[i]
                where[p].add(i)
        # Lazy max-heap, ties to the smallest pair: an entry is live while its count is current.
        heap = [(-c, p) for p, c in counts.items() if p not in banned]
        heapq.heapify(heap)
        merges: list[Pair] = []
        new_tokens: list[str] = []
        while len(merges) < budget and heap:
            negative, pair = heapq.heappop(heap)
            if counts[pair] != -negative:
                continue
            if -negative < min_count:
                break
            merges.append(pair)
            self._add_merge(pair, new_tokens)
            changed: set[Pair] = set()
            for i in sorted(where[pair]):
                # The new merge outranks nothing, so continuing rank-min BPE from the current
                # segmentation is exactly what `encode` does from scratch.
                old, segs[i] = segs[i], self._merge(segs[i])
                present = set(_pairs(segs[i]))
                delta = Counter(_pairs(segs[i]))
                delta.subtract(_pairs(old))
                for p, n in delta.items():
                    if n:
                        counts[p] += n * weights[i]
                        changed.add(p)
                        (where[p].add if p in present else where[p].discard)(i)
            for p in changed:
                if p not in banned and counts[p] > 0:
                    heapq.heappush(heap, (-counts[p], p))
        note = f"learnt {len(merges)} of {budget} merges"
        if len(merges) < budget:
            note += f": the corpus has no unprotected pair seen {min_count} times or more beyond that"
        added = LearnedTokens(language, merges, new_tokens, budget, len(words), note)
        self.additions.append(added)
        self._cache = {t: (t,) for t in self._special}
        self._cache.update(zip(words, segs))  # final segmentations: the corpus is encoded below for free
        self._encoded = {}
        for text, split in text_words.items():
            self._encoded[text] = tuple(self._encoder[piece] for w in split for piece in self._pieces(w))
        for seg in segs:  # this language's corpus now tokenises as it will for good
            banned.update(_pairs(seg))
        return added

    def to_json(self) -> str:
        """The additions, with a fingerprint of the base tokenizer."""
        return json.dumps({"artifact": ARTIFACT, "schema_version": SCHEMA_VERSION, "base": self._fingerprint,
                           "split_han": self.split_han, "cjk_words": self.cjk_words, "additions": [asdict(a) for a in self.additions]}, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str, base: SimpleTokenizer) -> ClipVocabulary:
        """Rebuild from `to_json` on the same base; ArtifactError on anything else."""
        doc = cls.read_document(text, ARTIFACT, SCHEMA_VERSION)
        vocab = cls(base, split_han=bool(doc.get("split_han", False)), cjk_words=bool(doc.get("cjk_words", False)))
        if doc.get("base") != vocab._fingerprint:
            raise ArtifactError("vocabulary: built on another base tokenizer (size, sot, eot or merges differ)")
        try:
            additions = [LearnedTokens(a["language"], list(a["merges"]), list(a["new_tokens"]),
                                       a["budget"], a["words"], a["note"]) for a in doc["additions"]]
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"vocabulary: malformed additions ({type(exc).__name__}: {exc})") from None
        for added in additions:
            vocab._append(added)
        return vocab

    def _append(self, added: LearnedTokens) -> None:
        """Replay a stored addition, checking that it could have been learnt on this vocabulary."""
        where = f"vocabulary: addition {added.language!r}"
        if not isinstance(added.language, str) or not added.language or added.language in self.languages:
            raise ArtifactError(f"{where}: the language is not a new non-empty string")
        if not (isinstance(added.budget, int) and isinstance(added.words, int) and isinstance(added.note, str)):
            raise ArtifactError(f"{where}: budget, words or note has the wrong type")
        merges: list[Pair] = []
        created: list[str] = []
        for merge in added.merges:
            pair = tuple(merge) if isinstance(merge, (list, tuple)) else ()
            known = len(pair) == 2 and all(isinstance(t, str) and t in self._encoder for t in pair)
            if not known or pair in self._ranks:
                raise ArtifactError(f"{where}: merge {merge!r} is not a new pair of known tokens")
            merges.append(pair)
            self._add_merge(pair, created)
        if created != list(added.new_tokens):
            raise ArtifactError(f"{where}: its new tokens are not the new concatenations of its merges")
        self.additions.append(LearnedTokens(added.language, merges, created, added.budget, added.words, added.note))
        self._cache = {t: (t,) for t in self._special}
        self._encoded = {}

    def _add_merge(self, pair: Pair, new_tokens: list[str]) -> None:
        self._ranks[pair] = self._next_rank
        self._next_rank += 1
        token = pair[0] + pair[1]
        if token not in self._encoder:
            self._decoder[len(self._encoder)] = token
            self._encoder[token] = len(self._encoder)
            new_tokens.append(token)

    def _words(self, text: str) -> list[str]:
        """Pre-tokenise as SimpleTokenizer.encode: clean, split by its regex, bytes to unicode."""
        enc = self.base.byte_encoder
        words = self.base.pat.findall(_cleaned(self.base.clean_fn, text))
        if self.cjk_words:
            words = [part for word in words for part in (_cjk_words(word) if _CJK.search(word) else (word,))]
        elif self.split_han:
            words = [part for word in words for part in (_HAN.findall(word) if _HAN.search(word) else (word,))]
        return ["".join(enc[b] for b in t.encode("utf-8")) for t in words]

    def _pieces(self, word: str) -> tuple[str, ...]:
        """BPE pieces of one pre-tokenised word, '</w>' on the last (special tokens are cached whole)."""
        if word not in self._cache:
            self._cache[word] = self._merge(tuple(word[:-1]) + (word[-1] + "</w>",))
        return self._cache[word]

    def _merge(self, word: tuple[str, ...]) -> tuple[str, ...]:
        """Apply the lowest-ranked merge present until none is, as SimpleTokenizer.bpe does."""
        ranks = self._ranks
        while len(word) > 1:
            pair = min(_pairs(word), key=lambda p: ranks.get(p, float("inf")))
            if pair not in ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = tuple(out)
        return word

    @cached_property
    def _fingerprint(self) -> dict:
        ranks = self.base.bpe_ranks
        lines = "\n".join(f"{a} {b}" for a, b in sorted(ranks, key=ranks.__getitem__))
        return {"size": self.base_size, "sot": self.sot, "eot": self.eot,
                "merges_sha256": hashlib.sha256(lines.encode("utf-8")).hexdigest()}
