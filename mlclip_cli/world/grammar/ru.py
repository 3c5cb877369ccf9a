"""Russian realisation of a CaptionPlan (same meaning as en.py).

Case government: два/две/три take the genitive singular noun, with genitive plural
adjectives for masculine/neuter nouns ("два красных круга") and nominative plural for
feminine ones ("две красные звезды"); "слева/справа от" take the genitive, "над/под" the
instrumental. Russian tells the blues apart: голубой (light) and синий (dark).
"""

from __future__ import annotations

import random

from mlclip_cli.world.grammar.common import capitalise, join_list
from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "ru"

# shape -> variants of (gender, nominative, genitive sg, instrumental sg)
_SHAPE = {
    "circle": (("m", "круг", "круга", "кругом"), ("m", "кружок", "кружка", "кружком")),
    "square": (("m", "квадрат", "квадрата", "квадратом"),),
    "triangle": (("m", "треугольник", "треугольника", "треугольником"),),
    "star": (("f", "звезда", "звезды", "звездой"), ("f", "звёздочка", "звёздочки", "звёздочкой")),
    "cross": (("m", "крест", "креста", "крестом"),),
    "diamond": (("m", "ромб", "ромба", "ромбом"),),
    "bar": (("f", "полоска", "полоски", "полоской"), ("f", "полоса", "полосы", "полосой")),
    "ring": (("n", "кольцо", "кольца", "кольцом"),),
}
# Adjectives as dictionary forms (nominative masculine); _adjective declines them.
_COLOUR = {
    "red": "красный", "green": "зелёный", "yellow": "жёлтый", "orange": "оранжевый",
    "purple": "фиолетовый", "white": "белый", "black": "чёрный",
    "light_blue": "голубой", "dark_blue": "синий",
}
_SIZE = {"small": ("маленький", "небольшой"), "large": ("большой", "крупный")}
_NUMBER = {2: {"m": "два", "n": "два", "f": "две"}, 3: {"m": "три", "n": "три", "f": "три"}}
# Endings of hard-stem adjectives (красный, голубой) and soft-stem ones (синий).
_HARD = {"nom_f": "ая", "nom_n": "ое", "gen_m": "ого", "gen_n": "ого", "gen_f": "ой",
         "ins_m": "ым", "ins_n": "ым", "ins_f": "ой", "nom_pl": "ые", "gen_pl": "ых"}
_SOFT = {"nom_f": "яя", "nom_n": "ее", "gen_m": "его", "gen_n": "его", "gen_f": "ей",
         "ins_m": "им", "ins_n": "им", "ins_f": "ей", "nom_pl": "ие", "gen_pl": "их"}
_POSITION = {
    "top_left": ("вверху слева", "в левом верхнем углу"),
    "top": ("вверху", "наверху"),
    "top_right": ("вверху справа", "в правом верхнем углу"),
    "left": ("слева",),
    "centre": ("в центре", "посередине"),
    "right": ("справа",),
    "bottom_left": ("внизу слева", "в левом нижнем углу"),
    "bottom": ("внизу",),
    "bottom_right": ("внизу справа", "в правом нижнем углу"),
}
# relation -> (preposition, case of its object)
_RELATION = {
    "left_of": ("слева от", "gen"), "right_of": ("справа от", "gen"),
    "above": ("над", "ins"), "below": ("под", "ins"),
}
_BACKGROUND = {"grey": "сером", "beige": "бежевом", "pink": "розовом"}  # prepositional: "на сером фоне"


def _adjective(lemma: str, form: str) -> str:
    if form == "nom_m":
        return lemma
    if lemma.endswith("ний"):
        return lemma[:-2] + _SOFT[form]
    stem, ending = lemma[:-2], _HARD[form]
    if stem[-1] in "гкхжшчщ" and ending[0] == "ы":  # spelling rule: маленьких, больших
        ending = "и" + ending[1:]
    return stem + ending


def _noun_phrase(group: Group, case: str, rng: random.Random) -> str:
    gender, nominative, genitive, instrumental = rng.choice(_SHAPE[group.shape])
    lemmas = ([rng.choice(_SIZE[group.size])] if group.size is not None else []) + [_COLOUR[group.colour]]
    if group.count == 1:
        noun = {"nom": nominative, "gen": genitive, "ins": instrumental}[case]
        words = [_adjective(a, f"{case}_{gender}") for a in lemmas] + [noun]
    else:  # only ever nominative: relations are between single objects
        form = "nom_pl" if gender == "f" else "gen_pl"
        words = [_NUMBER[group.count][gender], *(_adjective(a, form) for a in lemmas), genitive]
    phrase = " ".join(words)
    if group.position is not None:
        phrase += " " + rng.choice(_POSITION[group.position])
    return phrase


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    framed = rng.random() < 0.3
    if plan.relation is not None:
        preposition, case = _RELATION[plan.relation]
        subject = _noun_phrase(plan.groups[0], "nom", rng)
        landmark = f"{preposition} {_noun_phrase(plan.groups[1], case, rng)}"
        if not framed and rng.random() < 0.4:  # "Слева от синего квадрата находится красный круг"
            body = f"{landmark} находится {subject}"
        else:
            body = f"{subject} {landmark}"
    else:
        phrases = [_noun_phrase(g, "nom", rng) for g in plan.groups]
        body = join_list(phrases, "и")
    if framed:
        body = rng.choice(("на картинке ", "на изображении ")) + body
    if plan.background is not None:
        body += f" на {_BACKGROUND[plan.background]} фоне"
    return capitalise(body)
