"""Language-independent meaning of a world scene and of one caption about it.

A scene is what the renderer draws; a CaptionPlan is what one caption says about it.
Every language module turns the same plan into a sentence, so captions in the 11
languages are translations of one another (parallel) by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond", "bar", "ring")
# English says "blue" for both blues; Russian (голубой/синий) and Italian (azzurro/blu)
# tell them apart, so English-only supervision is ambiguous for those languages.
COLOURS = (
    "red", "green", "yellow", "orange", "purple", "white", "black", "light_blue", "dark_blue",
)
SIZES = ("small", "large")
BACKGROUNDS = ("grey", "beige", "pink")
# 3x3 grid of places, row-major: (row, col) -> name.
POSITIONS = (
    "top_left", "top", "top_right",
    "left", "centre", "right",
    "bottom_left", "bottom", "bottom_right",
)
RELATIONS = ("left_of", "right_of", "above", "below")


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    row: int  # 0 (top) .. 2 (bottom)
    col: int  # 0 (left) .. 2 (right)

    @property
    def position(self) -> str:
        return POSITIONS[self.row * 3 + self.col]


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]  # 1..3 objects, distinct cells
    background: str


@dataclass(frozen=True)
class Group:
    """A noun phrase: `count` identical objects ("two small red circles")."""

    count: int  # 1..3
    shape: str
    colour: str
    size: str | None  # None: the caption does not mention size
    position: str | None = None  # a POSITIONS name; only ever set when count == 1


@dataclass(frozen=True)
class CaptionPlan:
    """What one caption says.

    relation is None: an enumeration of the groups (each with its optional position).
    relation is set: exactly two groups of count 1 and no positions, read as
    "groups[0] is <relation> groups[1]" (e.g. left_of: "a red circle left of a blue square").
    background: mentioned at the end ("on a grey background") when not None.
    """

    groups: tuple[Group, ...]
    relation: str | None = None
    background: str | None = None
