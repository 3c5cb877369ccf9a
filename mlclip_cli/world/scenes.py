"""Sample scenes and turn them into caption plans.

Training scenes are random. Test scenes come in clusters of near-duplicates that differ in
one attribute (shape, colour, size, place, count or relation), so that retrieval is decided
by exactly the details a weak model confuses; no two test scenes share a description.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from mlclip_cli.world.semantics import (
    BACKGROUNDS, COLOURS, SHAPES, SIZES, CaptionPlan, Group, Scene, SceneObject,
)

# English has one word for both blues; the test never hinges on a difference English cannot say.
ENGLISH_COLOUR = {colour: ("blue" if colour.endswith("_blue") else colour) for colour in COLOURS}
_CELLS = [(row, col) for row in range(3) for col in range(3)]


def _random_object(rng: random.Random, cell: tuple[int, int]) -> SceneObject:
    return SceneObject(rng.choice(SHAPES), rng.choice(COLOURS), rng.choice(SIZES), *cell)


def random_scene(rng: random.Random) -> Scene:
    n = rng.choices((1, 2, 3), weights=(3, 4, 3))[0]
    cells = rng.sample(_CELLS, n)
    objects = [_random_object(rng, cells[0])]
    for cell in cells[1:]:
        if rng.random() < 0.25:  # a copy of an earlier object: counts ("two red circles")
            objects.append(replace(rng.choice(objects), row=cell[0], col=cell[1]))
        else:
            objects.append(_random_object(rng, cell))
    return Scene(tuple(objects), rng.choice(BACKGROUNDS))


def _groups(scene: Scene) -> list[tuple[tuple[str, str, str], list[SceneObject]]]:
    grouped: dict[tuple[str, str, str], list[SceneObject]] = {}
    for obj in sorted(scene.objects, key=lambda o: (o.row, o.col)):  # reading order
        grouped.setdefault((obj.shape, obj.colour, obj.size), []).append(obj)
    return list(grouped.items())


def relations_between(a: SceneObject, b: SceneObject) -> list[str]:
    found = []
    if a.col < b.col:
        found.append("left_of")
    if a.col > b.col:
        found.append("right_of")
    if a.row < b.row:
        found.append("above")
    if a.row > b.row:
        found.append("below")
    return found


def plan_for(scene: Scene, rng: random.Random, full: bool = False) -> CaptionPlan:
    """One caption plan for `scene`. full=True (test captions): every size and place is said."""
    groups = _groups(scene)
    background = scene.background if (not full and rng.random() < 0.3) else None
    singles = [objs[0] for _, objs in groups if len(objs) == 1]
    if len(groups) == 2 and len(singles) == 2 and rng.random() < 0.4:
        a, b = singles if rng.random() < 0.5 else singles[::-1]
        relation = rng.choice(relations_between(a, b))
        size = full or rng.random() < 0.8
        return CaptionPlan(
            tuple(Group(1, o.shape, o.colour, o.size if size else None) for o in (a, b)),
            relation=relation, background=background,
        )
    out = []
    for (shape, colour, size), objs in groups:
        say_size = full or rng.random() < 0.8
        say_place = len(objs) == 1 and (full or rng.random() < 0.7)
        out.append(Group(len(objs), shape, colour, size if say_size else None,
                         objs[0].position if say_place else None))
    if not full:
        rng.shuffle(out)
    return CaptionPlan(tuple(out), background=background)


_FLIPPED = {"right_of": "left_of", "below": "above"}


def english_key(plan: CaptionPlan) -> tuple:
    """What an English caption of `plan` says, ignoring word choice: equal keys read the same."""
    groups = tuple(sorted(
        (g.count, g.shape, ENGLISH_COLOUR[g.colour], g.size or "", g.position or "") for g in plan.groups
    ))
    relation = plan.relation
    if relation is not None:
        groups = tuple((g.count, g.shape, ENGLISH_COLOUR[g.colour], g.size or "") for g in plan.groups)
        if relation in _FLIPPED:  # "B right of A" says what "A left of B" says
            groups, relation = groups[::-1], _FLIPPED[relation]
    return groups, relation, plan.background


# --- near-duplicate test clusters -------------------------------------------------------

def _edit_shape(scene, rng):
    i = rng.randrange(len(scene.objects))
    obj = scene.objects[i]
    return _replace_object(scene, i, replace(obj, shape=rng.choice([s for s in SHAPES if s != obj.shape])))


def _edit_colour(scene, rng):
    i = rng.randrange(len(scene.objects))
    obj = scene.objects[i]
    options = [c for c in COLOURS if ENGLISH_COLOUR[c] != ENGLISH_COLOUR[obj.colour]]
    return _replace_object(scene, i, replace(obj, colour=rng.choice(options)))


def _edit_size(scene, rng):
    i = rng.randrange(len(scene.objects))
    obj = scene.objects[i]
    return _replace_object(scene, i, replace(obj, size="small" if obj.size == "large" else "large"))


def _edit_place(scene, rng):
    used = {(o.row, o.col) for o in scene.objects}
    i = rng.randrange(len(scene.objects))
    row, col = rng.choice([c for c in _CELLS if c not in used])
    return _replace_object(scene, i, replace(scene.objects[i], row=row, col=col))


def _edit_count(scene, rng):
    used = {(o.row, o.col) for o in scene.objects}
    if len(scene.objects) < 3 and rng.random() < 0.6:  # one more copy of an object
        row, col = rng.choice([c for c in _CELLS if c not in used])
        return Scene(scene.objects + (replace(rng.choice(scene.objects), row=row, col=col),), scene.background)
    counts = Counter((o.shape, o.colour, o.size) for o in scene.objects)
    repeated = [k for k, n in counts.items() if n > 1]
    if repeated:  # one copy fewer
        key = rng.choice(repeated)
        i = next(j for j, o in enumerate(scene.objects) if (o.shape, o.colour, o.size) == key)
        return Scene(scene.objects[:i] + scene.objects[i + 1:], scene.background)
    return None


def _edit_swap(scene, rng):
    if len(scene.objects) != 2:
        return None
    a, b = scene.objects
    return Scene((replace(a, row=b.row, col=b.col), replace(b, row=a.row, col=a.col)), scene.background)


EDITS = (_edit_shape, _edit_colour, _edit_size, _edit_place, _edit_count, _edit_swap)


def _replace_object(scene: Scene, i: int, obj: SceneObject) -> Scene:
    return Scene(scene.objects[:i] + (obj,) + scene.objects[i + 1:], scene.background)


def scene_cluster(rng: random.Random, size: int) -> list[Scene]:
    """A random scene followed by `size - 1` edits of scenes already in the cluster."""
    cluster = [random_scene(rng)]
    attempts = 0
    while len(cluster) < size and attempts < 30:
        attempts += 1
        edited = rng.choice(EDITS)(rng.choice(cluster), rng)
        if edited is not None and edited not in cluster:
            cluster.append(edited)
    while len(cluster) < size:  # rare: no edit applied; pad with fresh scenes
        cluster.append(random_scene(rng))
    return cluster


def clustered_scenes(rng: random.Random, n_scenes: int, cluster_size: int = 5,
                     accept: Callable[[int, CaptionPlan], bool] | None = None) -> list[tuple[Scene, CaptionPlan]]:
    """`n_scenes` scenes with full captions, in clusters of near-duplicates, all descriptions unique.

    accept(index, plan), if given, is asked about each candidate with the output index it would get
    (its captions depend on that index); a refused candidate is left out and replaced by a further
    one-attribute edit of the cluster, so clusters stay near `cluster_size`. Without accept, the
    output is what it always was.
    """
    seen: set = set()
    out: list[tuple[Scene, CaptionPlan]] = []
    while len(out) < n_scenes:
        cluster = scene_cluster(rng, cluster_size)
        pending, kept, spares = list(cluster), [], 30
        while pending and len(out) < n_scenes:
            scene = pending.pop(0)
            plan = plan_for(scene, rng, full=True)
            key = english_key(plan)
            if key in seen:
                continue
            if accept is None or accept(len(out), plan):
                seen.add(key)
                out.append((scene, plan))
                kept.append(scene)
                continue
            while spares:  # refused: draw another edit, of a kept scene so it stays one edit from the cluster
                spares -= 1
                edited = rng.choice(EDITS)(rng.choice(kept or cluster), rng)
                if edited is not None and edited not in cluster:
                    cluster.append(edited)
                    pending.append(edited)
                    break
    return out
