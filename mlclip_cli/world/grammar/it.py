"""Italian realisation of a CaptionPlan (same meaning as en.py).

Adjectives agree in gender and number; size usually precedes the noun, colour follows it
("un piccolo cerchio rosso", "due grandi stelle gialle"). Italian tells the blues apart:
azzurro (light) and blu (dark, invariable).
"""

from __future__ import annotations

import random

from mlclip_cli.world.grammar.common import capitalise, join_list
from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "it"

# shape -> variants of (gender, singular, plural)
_SHAPE = {
    "circle": (("m", "cerchio", "cerchi"),),
    "square": (("m", "quadrato", "quadrati"),),
    "triangle": (("m", "triangolo", "triangoli"),),
    "star": (("f", "stella", "stelle"),),
    "cross": (("f", "croce", "croci"),),
    "diamond": (("m", "rombo", "rombi"),),
    "bar": (("f", "barra", "barre"),),
    "ring": (("m", "anello", "anelli"),),
}
# Adjective forms (masc. sg, fem. sg, masc. pl, fem. pl).
_COLOUR = {
    "red": ("rosso", "rossa", "rossi", "rosse"),
    "green": ("verde", "verde", "verdi", "verdi"),
    "yellow": ("giallo", "gialla", "gialli", "gialle"),
    "orange": ("arancione", "arancione", "arancioni", "arancioni"),
    "purple": ("viola", "viola", "viola", "viola"),  # invariable
    "white": ("bianco", "bianca", "bianchi", "bianche"),
    "black": ("nero", "nera", "neri", "nere"),
    "light_blue": ("azzurro", "azzurra", "azzurri", "azzurre"),
    "dark_blue": ("blu", "blu", "blu", "blu"),  # invariable
}
_SIZE = {
    "small": ("piccolo", "piccola", "piccoli", "piccole"),
    "large": ("grande", "grande", "grandi", "grandi"),
}
_NUMBER = {2: "due", 3: "tre"}
_POSITION = {
    "top_left": ("in alto a sinistra", "nell'angolo in alto a sinistra"),
    "top": ("in alto",),
    "top_right": ("in alto a destra", "nell'angolo in alto a destra"),
    "left": ("a sinistra", "sulla sinistra"),
    "centre": ("al centro", "nel mezzo"),
    "right": ("a destra", "sulla destra"),
    "bottom_left": ("in basso a sinistra", "nell'angolo in basso a sinistra"),
    "bottom": ("in basso",),
    "bottom_right": ("in basso a destra", "nell'angolo in basso a destra"),
}
_RELATION = {
    "left_of": ("a sinistra di",), "right_of": ("a destra di",), "above": ("sopra",), "below": ("sotto",),
}
_BACKGROUND = {"grey": "grigio", "beige": "beige", "pink": "rosa"}


def _article(gender: str, word: str) -> str:
    """Indefinite article chosen by the next word's sound: un, uno, una, un'."""
    if gender == "f":
        return "un'" if word[0] in "aeiou" else "una "
    impure = word[0] in "zx" or word[:2] in ("gn", "ps") or (word[0] == "s" and word[1] not in "aeiou")
    return "uno " if impure else "un "


def _noun_phrase(group: Group, rng: random.Random) -> str:
    gender, singular, plural = rng.choice(_SHAPE[group.shape])
    form = (0 if gender == "m" else 1) + (0 if group.count == 1 else 2)
    words = [singular if group.count == 1 else plural, _COLOUR[group.colour][form]]
    if group.size is not None:
        size = _SIZE[group.size][form]
        if rng.random() < 0.75:  # "un piccolo cerchio rosso"; else "un cerchio rosso piccolo"
            words.insert(0, size)
        else:
            words.append(size)
    phrase = " ".join(words)
    if group.count == 1:
        phrase = _article(gender, phrase) + phrase
    else:
        phrase = f"{_NUMBER[group.count]} {phrase}"
    if group.position is not None:
        phrase += " " + rng.choice(_POSITION[group.position])
    return phrase


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    framed = rng.random() < 0.3
    if plan.relation is not None:
        subject = _noun_phrase(plan.groups[0], rng)
        landmark = f"{rng.choice(_RELATION[plan.relation])} {_noun_phrase(plan.groups[1], rng)}"
        if not framed and rng.random() < 0.4:  # "A sinistra di un quadrato blu c'è un cerchio rosso"
            body = f"{landmark} c'è {subject}"
        else:
            body = f"{subject} {landmark}"
        several = False
    else:
        phrases = [_noun_phrase(g, rng) for g in plan.groups]
        body = join_list(phrases, "e")
        several = len(phrases) > 1 or plan.groups[0].count > 1
    if framed:
        body = rng.choice(("ci sono " if several else "c'è ", "un'immagine con ")) + body
    if plan.background is not None:
        body += rng.choice((" su sfondo ", " su uno sfondo ")) + _BACKGROUND[plan.background]
    return capitalise(body)
