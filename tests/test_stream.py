"""Streamed training pairs answer exactly what the in-memory ones do, a window at a time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.features import FeaturesConfig, compute_features
from mlclip_cli.core.pairs import load_pairs
from mlclip_cli.core.stream import read_languages, read_split, sample_captions, split_counts, stream_pairs

from conftest import world_with_micro_clip


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    world = world_with_micro_clip(tmp_path_factory.mktemp("stream"), 40, 8, 6)
    base = FrozenClip.load(world["model"], "cpu")
    folder = world["root"] / "features"
    compute_features(FeaturesConfig(manifest=world["manifest"], out=folder, split="train"), encoder=base)
    frame = read_manifest(world["manifest"]).to_pandas()
    memory, summary = load_pairs(frame, world["manifest"], ["de", "ja"], "train", True, True, base, None, folder)
    streamed, streamed_summary = stream_pairs(world["manifest"], ["de", "ja"], "train", True, True, folder,
                                              base.image_identity, base.preprocess_description)
    return world, frame, memory, summary, streamed, streamed_summary


def test_one_window_gives_the_in_memory_batches_captions_and_features(setup):
    _, _, memory, summary, streamed, streamed_summary = setup
    assert streamed_summary == summary and len(streamed) == len(memory)
    for step in (0, 1, 7, 50):  # 50: a later epoch
        rows = streamed.batch(step, 16, 3)
        np.testing.assert_array_equal(rows, memory.batch(step, 16, 3))
        assert streamed.captions_of(rows) == memory.captions_of(rows)
        np.testing.assert_array_equal(streamed.languages[rows], memory.languages[rows])
        np.testing.assert_array_equal(streamed.teacher_of(rows), memory.teacher_of(rows))
        np.testing.assert_array_equal(streamed.image_of(rows), memory.image_of(rows))


def test_many_windows_keep_batches_of_distinct_images_inside_one_window(setup):
    _, _, memory, _, streamed, _ = setup
    windowed = replace(streamed, window_images=8, _window=None)
    seen = set()
    for step in range(12):
        rows = windowed.batch(step, 4, 0)
        images = memory.image_group[rows]
        assert len(set(images)) == len(rows)  # distinct images: no false negatives
        assert len({int(i) // 8 for i in images}) == 1  # one window
        assert windowed.captions_of(rows) == memory.captions_of(rows)
        np.testing.assert_array_equal(windowed.teacher_of(rows), memory.teacher_of(rows))
        seen.update(images.tolist())
        np.testing.assert_array_equal(rows, windowed.batch(step, 4, 0))  # a function of (seed, step): resumable
    assert len(seen) > 8  # it moved on to other windows


def test_manifest_helpers_match_pandas(setup):
    world, frame, *_ = setup
    counts = split_counts(world["manifest"]).set_index(["split", "language"])["count"].sort_index()
    np.testing.assert_array_equal(counts.to_numpy(), frame.groupby(["split", "language"]).size().sort_index().to_numpy())
    de = frame[(frame.language == "de") & (frame.split == "train")].caption
    assert sample_captions(world["manifest"], "de", "train", 10) == de.sample(10, random_state=0).tolist()
    assert read_split(world["manifest"], "val").sample_id.tolist() == frame[frame.split == "val"].sample_id.tolist()
    some = read_languages(world["manifest"], ["ja", "en"], ["sample_id", "language", "caption"])
    mine = frame[frame.language.isin(["ja", "en"])]
    assert list(some.columns) == ["sample_id", "language", "caption"]
    assert some.sample_id.tolist() == mine.sample_id.tolist() and some.caption.tolist() == mine.caption.tolist()
    assert read_languages(world["manifest"], ["xx"], ["caption"]).empty


def test_first_captions_are_the_in_memory_ones(setup):
    _, _, memory, _, streamed, _ = setup
    assert streamed.first_captions(7) == memory.captions[:7]
    assert streamed.first_captions(10 ** 6) == memory.captions  # all of them when fewer
