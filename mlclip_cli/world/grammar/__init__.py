"""Caption realisers, one module per language: `realise(lang, plan, rng)` dispatches to them.

Every module turns the same CaptionPlan into a sentence of its own language, so the
captions of one plan are translations of one another.
"""

from __future__ import annotations

import random

from mlclip_cli.world.grammar import de, en, es, fr, it, ja, ko, pl, ru, tr, zh
from mlclip_cli.world.semantics import CaptionPlan

LANGUAGES = ("en", "de", "fr", "es", "it", "ru", "pl", "tr", "ko", "zh", "ja")

_MODULES = {module.CODE: module for module in (en, de, fr, es, it, ru, pl, tr, ko, zh, ja)}


def realise(lang: str, plan: CaptionPlan, rng: random.Random) -> str:
    """Caption `plan` in language `lang`; all variant choices come from `rng`."""
    module = _MODULES.get(lang)
    if module is None:
        raise ValueError(f"unknown caption language {lang!r}; expected one of {LANGUAGES}")
    return module.realise(plan, rng)
