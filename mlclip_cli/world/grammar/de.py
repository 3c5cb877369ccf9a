"""German realisation of a CaptionPlan (same meaning as en.py).

Adjectives decline by article, case and gender: after "ein" ("ein roter Kreis", dative
"einem roten Kreis"), after a bare numeral ("zwei rote Kreise", dative "zwei roten Kreisen")
and with no article at all ("auf grauem Hintergrund").
"""

from __future__ import annotations

import random

from mlclip_cli.world.grammar.common import capitalise, join_list
from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "de"

# shape -> variants of (gender, singular, plural, dative plural)
_SHAPE = {
    "circle": (("m", "Kreis", "Kreise", "Kreisen"),),
    "square": (("n", "Quadrat", "Quadrate", "Quadraten"),),
    "triangle": (("n", "Dreieck", "Dreiecke", "Dreiecken"),),
    "star": (("m", "Stern", "Sterne", "Sternen"),),
    "cross": (("n", "Kreuz", "Kreuze", "Kreuzen"),),
    "diamond": (("f", "Raute", "Rauten", "Rauten"), ("m", "Rhombus", "Rhomben", "Rhomben")),
    "bar": (("m", "Balken", "Balken", "Balken"), ("m", "Stab", "Stäbe", "Stäben")),
    "ring": (("m", "Ring", "Ringe", "Ringen"),),
}
# Adjective stems. Standard German leaves "orange" and "lila" uninflected ("ein orange Kreis"
# is wrong), so use the inflecting "orangefarben" and "violett".
_COLOUR = {
    "red": "rot", "green": "grün", "yellow": "gelb", "orange": "orangefarben",
    "purple": "violett", "white": "weiß", "black": "schwarz",
    "light_blue": "blau", "dark_blue": "blau",  # German does not split the blues
}
_SIZE = {"small": ("klein",), "large": ("groß",)}
_NUMBER = {2: "zwei", 3: "drei"}
_ARTICLE = {"nom": {"m": "ein", "f": "eine", "n": "ein"},
            "dat": {"m": "einem", "f": "einer", "n": "einem"}}
# Adjective endings after "ein" (mixed declension) and after a bare numeral (strong plural).
_AFTER_ARTICLE = {"nom": {"m": "er", "f": "e", "n": "es"}, "dat": {"m": "en", "f": "en", "n": "en"}}
_AFTER_NUMBER = {"nom": "e", "dat": "en"}
_POSITION = {
    "top_left": ("oben links", "links oben"),
    "top": ("oben", "oben in der Mitte"),
    "top_right": ("oben rechts", "rechts oben"),
    "left": ("links", "auf der linken Seite"),
    "centre": ("in der Mitte", "im Zentrum"),
    "right": ("rechts", "auf der rechten Seite"),
    "bottom_left": ("unten links", "links unten"),
    "bottom": ("unten", "unten in der Mitte"),
    "bottom_right": ("unten rechts", "rechts unten"),
}
# All four take the dative here (location, not direction).
_RELATION = {
    "left_of": ("links von",), "right_of": ("rechts von",), "above": ("über",), "below": ("unter",),
}
_BACKGROUND = {"grey": ("grau",), "beige": ("beigefarben",), "pink": ("rosa", "rosafarben")}
_UNINFLECTED = {"rosa"}


def _noun_phrase(group: Group, case: str, rng: random.Random) -> str:
    gender, singular, plural, dative_plural = rng.choice(_SHAPE[group.shape])
    stems = ([rng.choice(_SIZE[group.size])] if group.size is not None else []) + [_COLOUR[group.colour]]
    if group.count == 1:
        ending = _AFTER_ARTICLE[case][gender]
        words = [_ARTICLE[case][gender], *(s + ending for s in stems), singular]
    else:
        ending = _AFTER_NUMBER[case]
        noun = dative_plural if case == "dat" else plural
        words = [_NUMBER[group.count], *(s + ending for s in stems), noun]
    phrase = " ".join(words)
    if group.position is not None:
        phrase += " " + rng.choice(_POSITION[group.position])
    return phrase


def _background(colour: str, rng: random.Random) -> str:
    word = rng.choice(_BACKGROUND[colour])
    if rng.random() < 0.5:  # "auf einem grauen Hintergrund"
        return f"auf einem {word if word in _UNINFLECTED else word + 'en'} Hintergrund"
    # No article: strong dative ending, "auf grauem Hintergrund".
    return f"{rng.choice(('auf', 'vor'))} {word if word in _UNINFLECTED else word + 'em'} Hintergrund"


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    framed = rng.random() < 0.3  # "Ein Bild mit ..." puts every noun phrase in the dative
    case = "dat" if framed else "nom"
    if plan.relation is not None:
        subject = _noun_phrase(plan.groups[0], case, rng)
        landmark = f"{rng.choice(_RELATION[plan.relation])} {_noun_phrase(plan.groups[1], 'dat', rng)}"
        if not framed and rng.random() < 0.4:
            # Landmark first, verb second: "Links von einem blauen Quadrat ist ein roter Kreis".
            body = f"{landmark} {rng.choice(('ist', 'befindet sich'))} {subject}"
        else:
            body = f"{subject} {landmark}"
    else:
        phrases = [_noun_phrase(g, case, rng) for g in plan.groups]
        body = join_list(phrases, "und")
    if framed:
        body = "ein Bild mit " + body
    if plan.background is not None:
        body += " " + _background(plan.background, rng)
    return capitalise(body)
