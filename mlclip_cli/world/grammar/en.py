"""English realisation of a CaptionPlan (reference implementation for the other languages)."""

from __future__ import annotations

import random

from mlclip_cli.world.grammar.common import capitalise, join_list
from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "en"

_SHAPE = {
    "circle": ("circle", "circles"), "square": ("square", "squares"),
    "triangle": ("triangle", "triangles"), "star": ("star", "stars"),
    "cross": ("cross", "crosses"), "diamond": ("diamond", "diamonds"),
    "bar": ("bar", "bars"), "ring": ("ring", "rings"),
}
_COLOUR = {
    "red": "red", "green": "green", "yellow": "yellow", "orange": "orange",
    "purple": "purple", "white": "white", "black": "black",
    "light_blue": "blue", "dark_blue": "blue",  # English does not split the blues
}
_SIZE = {"small": ("small", "little"), "large": ("large", "big")}
_NUMBER = {2: "two", 3: "three"}
_POSITION = {
    "top_left": ("in the top left", "at the top left"),
    "top": ("at the top", "in the top middle"),
    "top_right": ("in the top right", "at the top right"),
    "left": ("on the left", "at the left"),
    "centre": ("in the centre", "in the middle"),
    "right": ("on the right", "at the right"),
    "bottom_left": ("in the bottom left", "at the bottom left"),
    "bottom": ("at the bottom", "in the bottom middle"),
    "bottom_right": ("in the bottom right", "at the bottom right"),
}
_RELATION = {
    "left_of": ("to the left of", "left of"),
    "right_of": ("to the right of", "right of"),
    "above": ("above",),
    "below": ("below", "under"),
}
_BACKGROUND = {"grey": ("grey", "gray"), "beige": ("beige",), "pink": ("pink",)}


def _noun_phrase(group: Group, rng: random.Random) -> str:
    words = []
    if group.size is not None:
        words.append(rng.choice(_SIZE[group.size]))
    words.append(_COLOUR[group.colour])
    singular, plural = _SHAPE[group.shape]
    words.append(singular if group.count == 1 else plural)
    if group.count == 1:
        article = "an" if words[0][0] in "aeiou" else "a"
        phrase = f"{article} {' '.join(words)}"
    else:
        phrase = f"{_NUMBER[group.count]} {' '.join(words)}"
    if group.position is not None:
        phrase += " " + rng.choice(_POSITION[group.position])
    return phrase


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    phrases = [_noun_phrase(g, rng) for g in plan.groups]
    if plan.relation is not None:
        body = f"{phrases[0]} {rng.choice(_RELATION[plan.relation])} {phrases[1]}"
    else:
        body = join_list(phrases, "and")
    if rng.random() < 0.3:
        body = ("there is " if plan.groups[0].count == 1 and plan.relation is None and len(phrases) == 1
                else "a picture of ") + body
    if plan.background is not None:
        body += f" on a {rng.choice(_BACKGROUND[plan.background])} background"
    return capitalise(body)
