"""Caption clean-up and language codes, shared by every data-set loader."""

from __future__ import annotations

import re
import unicodedata

# Upstream files use a few non-ISO codes ("jp" in XTD10's STAIR folder).
_LANGUAGE_ALIASES = {"jp": "ja", "cn": "zh", "kr": "ko", "gr": "el", "iw": "he"}

# Invisible characters that only split words wrongly (ZWNJ/ZWJ are kept: they carry meaning
# in Persian, Hindi and emoji).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"), None)
_WHITESPACE = re.compile(r"\s+")
# Machine-translation failures found in real files (MIC's German and French XTD10 lines).
_PLACEHOLDERS = {"could not translate", "?", "-", "n/a", "none", "null"}


def normalise_language(code: str) -> str:
    code = code.strip().lower().replace("_", "-")
    return _LANGUAGE_ALIASES.get(code, code)


def clean_caption(raw: str) -> str:
    """NFC, drop invisible characters, collapse whitespace (tabs, CR, NBSP) and strip."""
    text = unicodedata.normalize("NFC", raw).translate(_INVISIBLE)
    return _WHITESPACE.sub(" ", text).strip()


def mask_reason(caption: str) -> str | None:
    """Why a cleaned caption must not be used, or None when it is fine."""
    if not caption:
        return "empty"
    if caption.lower().rstrip(".!") in _PLACEHOLDERS:
        return "placeholder"
    if not any(ch.isalnum() for ch in caption):
        return "no letters"
    return None
