"""Turkish realisation of a CaptionPlan (same meaning as en.py).

Modifiers precede the head: "küçük kırmızı bir daire", no plural after numerals ("iki
kırmızı daire"), places before what is there ("solda kırmızı bir daire"). A relation is
genitive + possessive + locative on the landmark: "mavi bir karenin solunda".
"""

from __future__ import annotations

import random

from mlclip_cli.world.grammar.common import join_list
from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "tr"

# shape -> variants of (bare noun, genitive). Genitives are written out because they
# follow vowel harmony, the buffer n after vowels and k -> ğ softening (çubuk -> çubuğun).
_SHAPE = {
    "circle": (("daire", "dairenin"), ("yuvarlak", "yuvarlağın")),
    "square": (("kare", "karenin"),),
    "triangle": (("üçgen", "üçgenin"),),
    "star": (("yıldız", "yıldızın"),),
    "cross": (("haç", "haçın"),),
    "diamond": (("eşkenar dörtgen", "eşkenar dörtgenin"), ("baklava dilimi", "baklava diliminin")),
    "bar": (("çubuk", "çubuğun"),),
    "ring": (("halka", "halkanın"),),
}
_COLOUR = {
    "red": "kırmızı", "green": "yeşil", "yellow": "sarı", "orange": "turuncu", "purple": "mor",
    "white": "beyaz", "black": "siyah",
    "light_blue": "mavi", "dark_blue": "mavi",  # Turkish merges the blues here
}
_SIZE = {"small": ("küçük", "ufak"), "large": ("büyük",)}
_NUMBER = {2: "iki", 3: "üç"}
# Locatives (-da/-de/-ta/-te by harmony and voicing).
_POSITION = {
    "top_left": ("sol üstte", "sol üst köşede"),
    "top": ("üstte", "yukarıda"),
    "top_right": ("sağ üstte", "sağ üst köşede"),
    "left": ("solda",),
    "centre": ("ortada", "merkezde"),
    "right": ("sağda",),
    "bottom_left": ("sol altta", "sol alt köşede"),
    "bottom": ("altta", "aşağıda"),
    "bottom_right": ("sağ altta", "sağ alt köşede"),
}
# Possessive + locative of the place noun, after the landmark's genitive.
_RELATION = {
    "left_of": ("solunda",), "right_of": ("sağında",), "above": ("üstünde",), "below": ("altında",),
}
_BACKGROUND = {"grey": "gri", "beige": "bej", "pink": "pembe"}


def _noun_phrase(group: Group, rng: random.Random, genitive: bool = False) -> str:
    bare, gen = rng.choice(_SHAPE[group.shape])
    words = [rng.choice(_SIZE[group.size])] if group.size is not None else []
    words.append(_COLOUR[group.colour])
    # "bir" sits between the adjectives and the noun; numerals come first.
    words = words + ["bir"] if group.count == 1 else [_NUMBER[group.count]] + words
    words.append(gen if genitive else bare)
    if group.position is not None:
        words.insert(0, rng.choice(_POSITION[group.position]))
    return " ".join(words)


def _capitalise(text: str) -> str:
    first = {"i": "İ", "ı": "I"}.get(text[0], text[0].upper())  # Turkish dotted/dotless i
    return first + text[1:]


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    existential = rng.random() < 0.4  # "... var" (there is)
    if plan.relation is not None:
        landmark = _noun_phrase(plan.groups[1], rng, genitive=True)
        body = f"{landmark} {rng.choice(_RELATION[plan.relation])} {_noun_phrase(plan.groups[0], rng)}"
    else:
        phrases = [_noun_phrase(g, rng) for g in plan.groups]
        body = join_list(phrases, "ve")
    if existential:
        body += " var"
    if plan.background is not None:  # the setting comes first
        colour = _BACKGROUND[plan.background]
        setting = rng.choice(("{} arka planda", "{} bir arka plan üzerinde", "{} zemin üzerinde"))
        body = f"{setting.format(colour)} {body}"
    elif existential and rng.random() < 0.5:
        body = "resimde " + body
    return _capitalise(body)
