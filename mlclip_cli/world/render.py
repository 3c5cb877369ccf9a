"""Draw a Scene as a small RGB image with pillow.

Shapes are drawn at 4x and downsampled, so edges are anti-aliased like photos rather than
pixel art; objects are jittered inside their grid cell and the background carries noise,
so a model must look at shape, not at exact pixels.
"""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw

from mlclip_cli.world.semantics import Scene, SceneObject

IMAGE_SIZE = 64
_SCALE = 4

COLOUR_RGB = {
    "red": (220, 30, 30), "green": (30, 170, 50), "yellow": (240, 220, 40), "orange": (250, 140, 20),
    "purple": (140, 50, 180), "white": (250, 250, 250), "black": (15, 15, 15),
    "light_blue": (120, 190, 255), "dark_blue": (20, 40, 170),
}
BACKGROUND_RGB = {"grey": (128, 128, 128), "beige": (215, 200, 165), "pink": (240, 170, 200)}
# Radius as a fraction of a grid cell.
SIZE_RADIUS = {"small": 0.24, "large": 0.42}


def _polygon(cx: float, cy: float, radius: float, points: int, inner: float | None = None, turn: float = -90):
    vertices = []
    count = points * 2 if inner else points
    for i in range(count):
        r = radius * (inner if inner and i % 2 else 1.0)
        angle = math.radians(turn + 360 * i / count)
        vertices.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return vertices


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, cx: float, cy: float, r: float) -> None:
    fill = COLOUR_RGB[obj.colour]
    if obj.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif obj.shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=max(1, int(r * 0.38)))
    elif obj.shape == "square":
        s = r * 0.85
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    elif obj.shape == "triangle":
        draw.polygon(_polygon(cx, cy + r * 0.15, r * 1.1, 3), fill=fill)
    elif obj.shape == "star":
        draw.polygon(_polygon(cx, cy, r * 1.1, 5, inner=0.45), fill=fill)
    elif obj.shape == "diamond":
        draw.polygon(_polygon(cx, cy, r, 4), fill=fill)
    elif obj.shape == "cross":
        t = r * 0.33
        draw.rectangle((cx - r, cy - t, cx + r, cy + t), fill=fill)
        draw.rectangle((cx - t, cy - r, cx + t, cy + r), fill=fill)
    elif obj.shape == "bar":
        draw.rectangle((cx - r * 1.1, cy - r * 0.3, cx + r * 1.1, cy + r * 0.3), fill=fill)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def render(scene: Scene, rng: random.Random, size: int = IMAGE_SIZE) -> Image.Image:
    big = size * _SCALE
    cell = big / 3
    image = Image.new("RGB", (big, big), BACKGROUND_RGB[scene.background])
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        r = SIZE_RADIUS[obj.size] * cell * rng.uniform(0.9, 1.1)
        slack = max(0.0, cell / 2 - r * 1.1)
        cx = (obj.col + 0.5) * cell + rng.uniform(-slack, slack) * 0.6
        cy = (obj.row + 0.5) * cell + rng.uniform(-slack, slack) * 0.6
        _draw_object(draw, obj, cx, cy, r)
    small = np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.int16)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 6, small.shape)
    return Image.fromarray(np.clip(small + noise, 0, 255).astype(np.uint8))
