"""Polish realisation of a CaptionPlan (same meaning as en.py).

Case government: dwa/dwie/trzy take the nominative plural ("dwa czerwone koła", "dwie
czerwone gwiazdy"), "na lewo/prawo od" the genitive ("na lewo od niebieskiego kwadratu"),
"nad/pod" the instrumental ("nad niebieskim kwadratem").
"""

from __future__ import annotations

import random

from mlclip_cli.world.grammar.common import capitalise, join_list
from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "pl"

# shape -> variants of (gender, nominative sg, genitive sg, instrumental sg, nominative pl)
_SHAPE = {
    "circle": (("n", "koło", "koła", "kołem", "koła"), ("n", "kółko", "kółka", "kółkiem", "kółka")),
    "square": (("m", "kwadrat", "kwadratu", "kwadratem", "kwadraty"),),
    "triangle": (("m", "trójkąt", "trójkąta", "trójkątem", "trójkąty"),),
    "star": (("f", "gwiazda", "gwiazdy", "gwiazdą", "gwiazdy"),),
    "cross": (("m", "krzyż", "krzyża", "krzyżem", "krzyże"),),
    "diamond": (("m", "romb", "rombu", "rombem", "romby"),),
    "bar": (("m", "pasek", "paska", "paskiem", "paski"),),
    "ring": (("m", "pierścień", "pierścienia", "pierścieniem", "pierścienie"),),
}
# Adjectives as dictionary forms (nominative masculine); _adjective declines them.
_COLOUR = {
    "red": "czerwony", "green": "zielony", "yellow": "żółty", "orange": "pomarańczowy",
    "purple": "fioletowy", "white": "biały", "black": "czarny",
    "light_blue": "niebieski", "dark_blue": "niebieski",  # Polish merges the blues here
}
_SIZE = {"small": ("mały", "niewielki"), "large": ("duży",)}
# Our shapes are all non-personal, so "dwa" serves masculine and neuter alike.
_NUMBER = {2: {"m": "dwa", "n": "dwa", "f": "dwie"}, 3: {"m": "trzy", "n": "trzy", "f": "trzy"}}
_ENDING = {"nom_m": "y", "nom_f": "a", "nom_n": "e", "gen_m": "ego", "gen_n": "ego", "gen_f": "ej",
           "ins_m": "ym", "ins_n": "ym", "ins_f": "ą", "nom_pl": "e"}
_POSITION = {
    "top_left": ("w lewym górnym rogu", "u góry po lewej"),
    "top": ("u góry", "na górze"),
    "top_right": ("w prawym górnym rogu", "u góry po prawej"),
    "left": ("po lewej", "z lewej strony"),
    "centre": ("na środku", "pośrodku"),
    "right": ("po prawej", "z prawej strony"),
    "bottom_left": ("w lewym dolnym rogu", "na dole po lewej"),
    "bottom": ("na dole", "u dołu"),
    "bottom_right": ("w prawym dolnym rogu", "na dole po prawej"),
}
# relation -> variants of (preposition, case of its object)
_RELATION = {
    "left_of": (("na lewo od", "gen"), ("po lewej stronie", "gen")),
    "right_of": (("na prawo od", "gen"), ("po prawej stronie", "gen")),
    "above": (("nad", "ins"),),
    "below": (("pod", "ins"),),
}
_BACKGROUND = {"grey": "szarym", "beige": "beżowym", "pink": "różowym"}  # locative: "na szarym tle"


def _adjective(lemma: str, form: str) -> str:
    stem, ending = lemma[:-1], _ENDING[form]
    if lemma.endswith("i"):  # -ki/-gi stems soften: niebieskie, niebieskiego, niebieskim
        ending = "i" + ending[1:] if ending[0] == "y" else ("i" + ending if ending[0] == "e" else ending)
    return stem + ending


def _noun_phrase(group: Group, case: str, rng: random.Random) -> str:
    gender, *forms, plural = rng.choice(_SHAPE[group.shape])
    lemmas = ([rng.choice(_SIZE[group.size])] if group.size is not None else []) + [_COLOUR[group.colour]]
    if group.count == 1:
        noun = forms[("nom", "gen", "ins").index(case)]
        words = [_adjective(a, f"{case}_{gender}") for a in lemmas] + [noun]
    else:  # only ever nominative: relations are between single objects
        words = [_NUMBER[group.count][gender], *(_adjective(a, "nom_pl") for a in lemmas), plural]
    phrase = " ".join(words)
    if group.position is not None:
        phrase += " " + rng.choice(_POSITION[group.position])
    return phrase


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    framed = rng.random() < 0.3
    if plan.relation is not None:
        preposition, case = rng.choice(_RELATION[plan.relation])
        subject = _noun_phrase(plan.groups[0], "nom", rng)
        landmark = f"{preposition} {_noun_phrase(plan.groups[1], case, rng)}"
        if not framed and rng.random() < 0.4:  # "Na lewo od niebieskiego kwadratu jest czerwone koło"
            body = f"{landmark} {rng.choice(('jest', 'znajduje się'))} {subject}"
        else:
            body = f"{subject} {landmark}"
    else:
        phrases = [_noun_phrase(g, "nom", rng) for g in plan.groups]
        body = join_list(phrases, "i")
    if framed:
        body = "na obrazku " + body
    if plan.background is not None:
        body += f" na {_BACKGROUND[plan.background]} tle"
    return capitalise(body)
