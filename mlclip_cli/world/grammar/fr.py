"""French realisation of a CaptionPlan (same meaning as en.py).

Adjectives agree in gender and number; size goes before the noun and colour after it
("un petit cercle rouge", "deux grandes étoiles jaunes"); "de" elides before "un(e)".
"""

from __future__ import annotations

import random

from mlclip_cli.world.grammar.common import capitalise, join_list
from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "fr"

# shape -> variants of (gender, singular, plural)
_SHAPE = {
    "circle": (("m", "cercle", "cercles"), ("m", "rond", "ronds")),
    "square": (("m", "carré", "carrés"),),
    "triangle": (("m", "triangle", "triangles"),),
    "star": (("f", "étoile", "étoiles"),),
    "cross": (("f", "croix", "croix"),),
    "diamond": (("m", "losange", "losanges"),),
    "bar": (("f", "barre", "barres"),),
    "ring": (("m", "anneau", "anneaux"),),
}
_BLUE = ("bleu", "bleue", "bleus", "bleues")
# Adjective forms (masc. sg, fem. sg, masc. pl, fem. pl).
_COLOUR = {
    "red": ("rouge", "rouge", "rouges", "rouges"),
    "green": ("vert", "verte", "verts", "vertes"),
    "yellow": ("jaune", "jaune", "jaunes", "jaunes"),
    "orange": ("orange", "orange", "orange", "orange"),  # a colour noun: invariable
    "purple": ("violet", "violette", "violets", "violettes"),
    "white": ("blanc", "blanche", "blancs", "blanches"),
    "black": ("noir", "noire", "noirs", "noires"),
    "light_blue": _BLUE, "dark_blue": _BLUE,  # French does not split the blues
}
_SIZE = {
    "small": (("petit", "petite", "petits", "petites"),),
    "large": (("grand", "grande", "grands", "grandes"), ("gros", "grosse", "gros", "grosses")),
}
_NUMBER = {2: "deux", 3: "trois"}
_POSITION = {
    "top_left": ("en haut à gauche", "dans le coin supérieur gauche"),
    "top": ("en haut",),
    "top_right": ("en haut à droite", "dans le coin supérieur droit"),
    "left": ("à gauche",),
    "centre": ("au centre", "au milieu"),
    "right": ("à droite",),
    "bottom_left": ("en bas à gauche", "dans le coin inférieur gauche"),
    "bottom": ("en bas",),
    "bottom_right": ("en bas à droite", "dans le coin inférieur droit"),
}
_RELATION = {
    "left_of": ("à gauche de",), "right_of": ("à droite de",),
    "above": ("au-dessus de",), "below": ("en dessous de", "sous"),
}
_BACKGROUND = {"grey": "gris", "beige": "beige", "pink": "rose"}


def _noun_phrase(group: Group, rng: random.Random) -> str:
    gender, singular, plural = rng.choice(_SHAPE[group.shape])
    form = (0 if gender == "m" else 1) + (0 if group.count == 1 else 2)
    words = ["un" if gender == "m" else "une"] if group.count == 1 else [_NUMBER[group.count]]
    if group.size is not None:
        words.append(rng.choice(_SIZE[group.size])[form])
    words += [singular if group.count == 1 else plural, _COLOUR[group.colour][form]]
    phrase = " ".join(words)
    if group.position is not None:
        phrase += " " + rng.choice(_POSITION[group.position])
    return phrase


def _preposition(prep: str, phrase: str) -> str:
    if prep.endswith(" de") and phrase[0] in "aeiouéh":  # "à gauche d'un carré"
        return f"{prep[:-2]}d'{phrase}"
    return f"{prep} {phrase}"


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    frame = rng.choice(("", "", "", "", "il y a ", "une image avec "))
    if plan.relation is not None:
        subject = _noun_phrase(plan.groups[0], rng)
        landmark = _preposition(rng.choice(_RELATION[plan.relation]), _noun_phrase(plan.groups[1], rng))
        if not frame and rng.random() < 0.4:  # "À gauche d'un carré bleu se trouve un cercle rouge"
            body = f"{landmark} se trouve {subject}"
        else:
            body = f"{frame}{subject} {landmark}"
    else:
        phrases = [_noun_phrase(g, rng) for g in plan.groups]
        body = frame + join_list(phrases, "et")
    if plan.background is not None:
        body += rng.choice((" sur fond ", " sur un fond ")) + _BACKGROUND[plan.background]
    return capitalise(body)
