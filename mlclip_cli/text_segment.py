"""Word segmentation for scripts written without spaces (Chinese, Japanese), before BPE.

Split into single characters (the old default, as M-BERT does), Chinese and Japanese captions make
long sequences of ambiguous one-character tokens; a word segmenter gives BPE the words a reader
sees ("黄色 小 菱形"). Measured on the world: Chinese 89% -> 98% of English's text->image R@1 and
Japanese 92% -> 98% (docs/benchmarks.md). The segmenters are maintained libraries that install
offline from PyPI: rjieba (jieba's dictionary and algorithm, in Rust) for Chinese, fugashi (MeCab)
with the unidic-lite dictionary for Japanese.

An MLA extension records its choice (`cjk`: "words" or "chars"), and every tokenizer of a segmented
language segments before it encodes, so training, bench, search and serve see the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from mlclip_cli.errors import MlclipError

CJK_MODES = ("words", "chars")
SEGMENTED = {"zh": "rjieba", "ja": "fugashi + unidic-lite"}  # language -> the library that splits it


def _chinese() -> Callable[[str], list[str]]:
    import rjieba

    return rjieba.cut


def _japanese() -> Callable[[str], list[str]]:
    import fugashi

    tagger = fugashi.Tagger()  # unidic-lite's dictionary, found by fugashi
    return lambda text: [word.surface for word in tagger(text)]


_LOADERS = {"zh": _chinese, "ja": _japanese}


def check_mode(mode: str) -> str:
    if mode not in CJK_MODES:
        raise MlclipError(f"unknown --cjk '{mode}' (choose {', '.join(CJK_MODES)})")
    return mode


@lru_cache(maxsize=None)
def segmenter(language: str) -> Callable[[str], str]:
    """text -> its words joined by single spaces, for a language in SEGMENTED."""
    try:
        cut = _LOADERS[language]()
    except ImportError as exc:
        raise MlclipError(f"'{language}' is split into words by {SEGMENTED[language]}, which is not installed "
                          f"({exc.name}): reinstall mlclip, or train with --cjk chars") from None

    def split(text: str) -> str:
        return " ".join(word for word in cut(text) if word.strip())
    return split


def segmenter_for(language: str, mode: str) -> Callable[[str], str] | None:
    """The segmenter a language's captions go through under `mode` (None: as they are)."""
    return segmenter(language) if mode == "words" and language in SEGMENTED else None


def segment(texts: list[str], language: str, mode: str) -> list[str]:
    split = segmenter_for(language, mode)
    return list(texts) if split is None else [split(text) for text in texts]
