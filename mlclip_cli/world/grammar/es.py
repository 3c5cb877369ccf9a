"""Spanish realisation of a CaptionPlan (same meaning as en.py).

Adjectives agree in gender and number and colour follows the noun; "pequeño" may go
before the noun ("un pequeño círculo rojo") or after the colour, "grande" goes after
("un círculo rojo grande": before the noun "gran" reads as "great").
"""

from __future__ import annotations

import random

from mlclip_cli.world.grammar.common import capitalise, join_list
from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "es"

# shape -> variants of (gender, singular, plural)
_SHAPE = {
    "circle": (("m", "círculo", "círculos"),),
    "square": (("m", "cuadrado", "cuadrados"),),
    "triangle": (("m", "triángulo", "triángulos"),),
    "star": (("f", "estrella", "estrellas"),),
    "cross": (("f", "cruz", "cruces"),),
    "diamond": (("m", "rombo", "rombos"),),
    "bar": (("f", "barra", "barras"),),
    "ring": (("m", "anillo", "anillos"), ("m", "aro", "aros")),
}
_BLUE = ("azul", "azul", "azules", "azules")
# Adjective forms (masc. sg, fem. sg, masc. pl, fem. pl).
_COLOUR = {
    "red": ("rojo", "roja", "rojos", "rojas"),
    "green": ("verde", "verde", "verdes", "verdes"),
    "yellow": ("amarillo", "amarilla", "amarillos", "amarillas"),
    "orange": ("naranja", "naranja", "naranja", "naranja"),  # colour noun, traditionally invariable
    "purple": ("morado", "morada", "morados", "moradas"),
    "white": ("blanco", "blanca", "blancos", "blancas"),
    "black": ("negro", "negra", "negros", "negras"),
    "light_blue": _BLUE, "dark_blue": _BLUE,  # Spanish does not split the blues here
}
_SMALL = ("pequeño", "pequeña", "pequeños", "pequeñas")
_LARGE = ("grande", "grande", "grandes", "grandes")
_NUMBER = {2: "dos", 3: "tres"}
_POSITION = {
    "top_left": ("arriba a la izquierda", "en la esquina superior izquierda"),
    "top": ("arriba", "en la parte superior"),
    "top_right": ("arriba a la derecha", "en la esquina superior derecha"),
    "left": ("a la izquierda",),
    "centre": ("en el centro", "en el medio"),
    "right": ("a la derecha",),
    "bottom_left": ("abajo a la izquierda", "en la esquina inferior izquierda"),
    "bottom": ("abajo", "en la parte inferior"),
    "bottom_right": ("abajo a la derecha", "en la esquina inferior derecha"),
}
_RELATION = {
    "left_of": ("a la izquierda de",), "right_of": ("a la derecha de",),
    "above": ("encima de",), "below": ("debajo de",),  # "sobre" would clash with "sobre fondo"
}
_BACKGROUND = {"grey": "gris", "beige": "beige", "pink": "rosa"}


def _noun_phrase(group: Group, rng: random.Random) -> str:
    gender, singular, plural = rng.choice(_SHAPE[group.shape])
    form = (0 if gender == "m" else 1) + (0 if group.count == 1 else 2)
    words = ["un" if gender == "m" else "una"] if group.count == 1 else [_NUMBER[group.count]]
    after = []
    if group.size == "small":
        (words if rng.random() < 0.5 else after).append(_SMALL[form])
    elif group.size == "large":
        after.append(_LARGE[form])
    words += [singular if group.count == 1 else plural, _COLOUR[group.colour][form], *after]
    phrase = " ".join(words)
    if group.position is not None:
        phrase += " " + rng.choice(_POSITION[group.position])
    return phrase


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    frame = rng.choice(("", "", "", "", "hay ", "una imagen con "))
    if plan.relation is not None:
        subject = _noun_phrase(plan.groups[0], rng)
        landmark = f"{rng.choice(_RELATION[plan.relation])} {_noun_phrase(plan.groups[1], rng)}"
        if not frame and rng.random() < 0.4:  # "A la izquierda de un cuadrado azul hay un círculo rojo"
            body = f"{landmark} hay {subject}"
        else:
            body = f"{frame}{subject} {landmark}"
    else:
        phrases = [_noun_phrase(g, rng) for g in plan.groups]
        body = frame + join_list(phrases, "y")
    if plan.background is not None:
        setting = rng.choice(("sobre fondo", "sobre un fondo", "con fondo"))
        body += f" {setting} {_BACKGROUND[plan.background]}"
    return capitalise(body)
