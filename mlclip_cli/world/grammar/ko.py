"""Korean realisation of a CaptionPlan (same meaning as en.py).

Head-final: modifiers and places come first ("파란 사각형 왼쪽에 빨간 원이 있다"); a count
follows the noun with a native numeral and the counter 개 ("빨간 원 두 개"). 개 is also what
Korean uses for drawn bars ("막대 두 개"); 자루 is for tools like pens. Particles pick their
form by whether the last syllable ends in a consonant (이/가, 과/와).
"""

from __future__ import annotations

import random

from mlclip_cli.world.semantics import CaptionPlan, Group

CODE = "ko"

_SHAPE = {
    "circle": ("원", "동그라미"), "square": ("정사각형", "사각형"), "triangle": ("삼각형", "세모"),
    "star": ("별",), "cross": ("십자 모양",), "diamond": ("마름모",), "bar": ("막대", "막대기"),
    "ring": ("고리", "링"),
}
# Adjectival forms before a noun: native adjectives (빨간) or colour nouns (빨간색).
_COLOUR = {
    "red": ("빨간", "빨간색"), "green": ("초록색", "녹색"), "yellow": ("노란", "노란색"),
    "orange": ("주황색",), "purple": ("보라색",), "white": ("하얀", "흰색"), "black": ("검은", "검은색"),
    "light_blue": ("파란", "파란색"), "dark_blue": ("파란", "파란색"),  # Korean merges the blues here
}
_SIZE = {"small": ("작은",), "large": ("큰",)}
_NUMBER = {2: "두", 3: "세"}  # native numerals before the counter 개
_POSITION = {
    "top_left": ("왼쪽 위", "왼쪽 상단"), "top": ("위쪽", "상단"), "top_right": ("오른쪽 위", "오른쪽 상단"),
    "left": ("왼쪽",), "centre": ("가운데", "중앙"), "right": ("오른쪽",),
    "bottom_left": ("왼쪽 아래", "왼쪽 하단"), "bottom": ("아래쪽", "하단"),
    "bottom_right": ("오른쪽 아래", "오른쪽 하단"),
}
_RELATION = {"left_of": ("왼쪽",), "right_of": ("오른쪽",), "above": ("위",), "below": ("아래", "밑")}
_BACKGROUND = {"grey": ("회색",), "beige": ("베이지색",), "pink": ("분홍색", "핑크색")}


def _has_final_consonant(word: str) -> bool:
    code = ord(word[-1]) - 0xAC00
    return 0 <= code < 11172 and code % 28 != 0


def _subject(word: str) -> str:
    return word + ("이" if _has_final_consonant(word) else "가")


def _and(word: str) -> str:
    return word + ("과" if _has_final_consonant(word) else "와")


def _noun_phrase(group: Group, rng: random.Random, with_position: bool = True) -> str:
    words = [rng.choice(_SIZE[group.size])] if group.size is not None else []
    words += [rng.choice(_COLOUR[group.colour]), rng.choice(_SHAPE[group.shape])]
    if group.count > 1:
        words += [_NUMBER[group.count], "개"]
    phrase = " ".join(words)
    if with_position and group.position is not None:
        # "왼쪽 위의 빨간 원" / "왼쪽 위에 있는 빨간 원"
        phrase = rng.choice(_POSITION[group.position]) + rng.choice(("의 ", "에 있는 ")) + phrase
    return phrase


def realise(plan: CaptionPlan, rng: random.Random) -> str:
    # Existential sentence ("...이 있다"), picture caption ("...이 있는 그림") or bare noun phrase.
    ending = rng.choice(("", "", " 있다", " 있는 그림"))
    if plan.relation is not None:
        subject = _noun_phrase(plan.groups[0], rng)
        landmark = _noun_phrase(plan.groups[1], rng)
        place = rng.choice(_RELATION[plan.relation])
        if ending:  # "파란 사각형(의) 왼쪽에 빨간 원이 있다"
            body = f"{landmark}{rng.choice(('', '의'))} {place}에 {_subject(subject)}{ending}"
        else:  # "파란 사각형 왼쪽의 빨간 원" / "파란 사각형 왼쪽에 있는 빨간 원"
            body = f"{landmark} {place}{rng.choice(('의', '에 있는'))} {subject}"
    elif len(plan.groups) == 1 and plan.groups[0].position is not None and ending:
        # "왼쪽 위에 빨간 원이 있다"
        group = plan.groups[0]
        place = rng.choice(_POSITION[group.position])
        body = f"{place}에 {_subject(_noun_phrase(group, rng, with_position=False))}{ending}"
    else:
        phrases = [_noun_phrase(g, rng) for g in plan.groups]
        if len(phrases) > 1:  # "A, B와 C": the last pair is joined by the particle 와/과
            phrases[-2:] = [f"{_and(phrases[-2])} {phrases[-1]}"]
        body = ", ".join(phrases)
        if ending:
            body = _subject(body) + ending
    if plan.background is not None:
        body = f"{rng.choice(_BACKGROUND[plan.background])} {rng.choice(('배경', '바탕'))}에 {body}"
    return body
