"""Japanese realisation of a CaptionPlan (same meaning as en.py).

Modifiers and places come first; counts take a counter (本 for long thin things such as
bars, つ or 個 otherwise): "二つの赤い丸" or, in a sentence, "赤い丸が二つある".
Relations use the landmark's の + place noun: "青い四角の左に赤い丸がある".
"""

from __future__ import annotations

import random

from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "ja"

_SHAPE = {
    "circle": ("丸", "円"), "square": ("正方形", "四角"), "triangle": ("三角形", "三角"),
    "star": ("星",), "cross": ("十字",), "diamond": ("ひし形",), "bar": ("棒",), "ring": ("輪", "リング"),
}
# Attributive forms: i-adjectives (赤い) or colour nouns with の (緑の).
_COLOUR = {
    "red": ("赤い",), "green": ("緑の", "緑色の"), "yellow": ("黄色い",), "orange": ("オレンジ色の", "オレンジの"),
    "purple": ("紫の", "紫色の"), "white": ("白い",), "black": ("黒い",),
    "light_blue": ("青い",), "dark_blue": ("青い",),  # Japanese merges the blues here
}
_SIZE = {"small": ("小さな", "小さい"), "large": ("大きな", "大きい")}
_COUNTERS = (("一つ", "二つ", "三つ"), ("一個", "二個", "三個"))
_BAR_COUNTER = ("一本", "二本", "三本")
_POSITION = {
    "top_left": ("左上",), "top": ("上", "上部"), "top_right": ("右上",),
    "left": ("左", "左側"), "centre": ("中央", "真ん中"), "right": ("右", "右側"),
    "bottom_left": ("左下",), "bottom": ("下", "下部"), "bottom_right": ("右下",),
}
_RELATION = {"left_of": "左", "right_of": "右", "above": "上", "below": "下"}
_BACKGROUND = {"grey": ("灰色", "グレー"), "beige": ("ベージュ",), "pink": ("ピンク", "ピンク色")}
_VERB = ("ある", "描かれている")


def _words(group: Group, rng: random.Random) -> str:
    size = rng.choice(_SIZE[group.size]) if group.size is not None else ""
    return size + rng.choice(_COLOUR[group.colour]) + rng.choice(_SHAPE[group.shape])


def _counter(group: Group, rng: random.Random) -> str:
    counters = _BAR_COUNTER if group.shape == "bar" else rng.choice(_COUNTERS)
    return counters[group.count - 1]


def _noun_phrase(group: Group, rng: random.Random) -> str:
    """"左上の赤い丸", "二つの赤い丸", "二本の赤い棒"."""
    phrase = _words(group, rng)
    if group.count > 1:
        phrase = f"{_counter(group, rng)}の{phrase}"
    if group.position is not None:
        phrase = f"{rng.choice(_POSITION[group.position])}の{phrase}"
    return phrase


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    existential = rng.random() < 0.5  # a sentence ending in ある/描かれている, else a noun phrase
    if plan.relation is not None:
        subject = _words(plan.groups[0], rng)
        landmark = f"{_words(plan.groups[1], rng)}の{_RELATION[plan.relation]}"
        if existential:
            body = f"{landmark}に{subject}が{rng.choice(_VERB)}"
        else:  # "青い四角の左にある赤い丸" / "青い四角の左の赤い丸"
            body = f"{landmark}{rng.choice(('にある', 'の'))}{subject}"
    elif len(plan.groups) == 1 and existential:
        group = plan.groups[0]  # "左上に赤い丸がある", "赤い丸が二つある"
        place = f"{rng.choice(_POSITION[group.position])}に" if group.position is not None else ""
        count = _counter(group, rng) if group.count > 1 else ""
        body = f"{place}{_words(group, rng)}が{count}{rng.choice(_VERB)}"
    else:
        items = [_noun_phrase(g, rng) for g in plan.groups]
        body = items[0] if len(items) == 1 else "、".join(items[:-1]) + "と" + items[-1]
        if existential:
            body += "が" + rng.choice(_VERB)
    if plan.background is not None:
        # "灰色の背景に赤い丸"; a comma keeps it apart from a second に-place.
        located = plan.relation is not None or any(g.position is not None for g in plan.groups)
        body = f"{rng.choice(_BACKGROUND[plan.background])}の背景に{'、' if located else ''}{body}"
    return body
