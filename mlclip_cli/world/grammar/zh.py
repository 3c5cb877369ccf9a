"""Chinese realisation of a CaptionPlan (same meaning as en.py).

Numerals need a measure word (个 by default, 颗 for stars, 根 for bars) and 两 rather than 二;
places come first and existence is "有": "蓝色正方形的左边有一个红色圆形".
"""

from __future__ import annotations

import random

from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "zh"

# shape -> variants of (noun, measure word)
_SHAPE = {
    "circle": (("圆形", "个"), ("圆", "个")),
    "square": (("正方形", "个"), ("方块", "个")),
    "triangle": (("三角形", "个"),),
    "star": (("星星", "颗"), ("五角星", "颗")),
    "cross": (("十字", "个"), ("十字形", "个")),
    "diamond": (("菱形", "个"),),
    "bar": (("长条", "根"),),
    "ring": (("圆环", "个"), ("环", "个")),
}
_COLOUR = {
    "red": "红色", "green": "绿色", "yellow": "黄色", "orange": "橙色", "purple": "紫色",
    "white": "白色", "black": "黑色",
    "light_blue": "蓝色", "dark_blue": "蓝色",  # Chinese merges the blues here
}
_SIZE = {"small": "小", "large": "大"}
_NUMBER = {1: "一", 2: "两", 3: "三"}
_POSITION = {
    "top_left": ("左上角",), "top": ("上方", "顶部"), "top_right": ("右上角",),
    "left": ("左边", "左侧"), "centre": ("中间", "中央"), "right": ("右边", "右侧"),
    "bottom_left": ("左下角",), "bottom": ("下方", "底部"), "bottom_right": ("右下角",),
}
_RELATION = {
    "left_of": ("左边", "左侧"), "right_of": ("右边", "右侧"), "above": ("上面", "上方"), "below": ("下面", "下方"),
}
_BACKGROUND = {"grey": ("灰色",), "beige": ("米色",), "pink": ("粉色", "粉红色")}


def _modified_noun(group: Group, rng: random.Random) -> tuple[str, str]:
    """"红色的小圆形" / "红色圆形" without numeral; returns it with the measure word."""
    noun, measure = rng.choice(_SHAPE[group.shape])
    core = _SIZE[group.size] + noun if group.size is not None else noun
    # A bare one-character noun after a colour needs 的 ("红色的圆", not "红色圆").
    de = "的" if len(core) == 1 or rng.random() < 0.5 else ""
    return _COLOUR[group.colour] + de + core, measure


def _noun_phrase(group: Group, rng: random.Random) -> str:
    noun, measure = _modified_noun(group, rng)
    return _NUMBER[group.count] + measure + noun


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "、".join(items[:-1]) + "和" + items[-1]


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    existential = rng.random() < 0.5
    clause = True  # a full clause gets the background as "灰色背景上，..."
    if plan.relation is not None:
        subject = _noun_phrase(plan.groups[0], rng)
        landmark, _ = _modified_noun(plan.groups[1], rng)
        place = rng.choice(_RELATION[plan.relation])
        place = place if "的" in landmark or rng.random() < 0.5 else "的" + place  # avoid 的…的
        body = f"{landmark}{place}有{subject}" if existential else f"{subject}在{landmark}{place}"
    elif existential and all(g.position is not None for g in plan.groups):
        # "左上角有一个红色圆形，右边有一个蓝色正方形"
        body = "，".join(f"{rng.choice(_POSITION[g.position])}有{_noun_phrase(g, rng)}" for g in plan.groups)
    else:
        items = [
            (rng.choice(_POSITION[g.position]) + "的" if g.position is not None else "") + _noun_phrase(g, rng)
            for g in plan.groups
        ]
        # A list that names places reads as a clause: "粉色背景上，右边的一个白色三角形和…".
        body, clause = _join(items), any(g.position is not None for g in plan.groups)
    if plan.background is not None:
        setting = rng.choice(_BACKGROUND[plan.background]) + "背景上"
        if clause:
            body = f"{setting}，{body}"
        else:  # "灰色背景上有一个红色圆形" / "灰色背景上的一个红色圆形"
            body = setting + ("有" if existential else "的") + body
    elif not clause and existential:
        body = rng.choice(("图中有", "画面中有")) + body
    return body
