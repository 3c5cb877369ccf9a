"""Training pairs streamed from disk: memory does not grow with the data set.

`StreamedPairs` answers what a training step asks of `PairData` (batch rows, their captions,
teacher and image features) while holding only integer arrays per caption (its manifest row,
language, image and teacher-feature rows) and one *window* of images at a time: that window's
captions, read from the manifest, and their features, read from the feature shards.

Batches hold distinct images. An epoch visits the windows (WINDOW_IMAGES consecutive images each)
in a seeded order and each window's images in a seeded order, so a batch is a function of (seed,
step) alone and a resumed run sees the same batches. With a single window (up to WINDOW_IMAGES
images, e.g. the default world's 30,000) the batches are exactly those of the in-memory PairData.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mlclip_cli.artifacts import read_metadata, scan_manifest
from mlclip_cli.errors import MlclipError

WINDOW_IMAGES = 32_768


def _hash(values) -> np.ndarray:
    return pd.util.hash_array(np.asarray(values, dtype=object))


@dataclass
class _FeatureRows:
    """A feature part's keys (hashed) and where each row lives: read shard by shard on demand."""

    shards: list[Path]
    starts: np.ndarray  # first row of each shard
    index: pd.Index  # key hash -> row

    @classmethod
    def of(cls, folder: Path, part: str, identity: str, preprocess: str | None = None) -> "_FeatureRows":
        shards = sorted(Path(folder).glob(f"{part}-[0-9][0-9][0-9][0-9][0-9].parquet"))
        if not shards:
            raise MlclipError(f"{folder}: no '{part}' features (run `mlclip features` first)")
        hashes, starts, total = [], [], 0
        for shard in shards:
            meta = read_metadata(shard)
            if meta.get("identity") != identity or (preprocess is not None and meta.get("preprocess") != preprocess):
                raise MlclipError(f"{shard}: features of another encoder or preprocessing; recompute them with `mlclip features`")
            keys = pq.read_table(shard, columns=["key"]).column("key").to_pylist()
            hashes.append(_hash(keys))
            starts.append(total)
            total += len(keys)
        return cls(shards, np.array(starts), pd.Index(np.concatenate(hashes)))

    def rows_of(self, key_hashes: np.ndarray, what: str, where: Path) -> np.ndarray:
        rows = self.index.get_indexer(key_hashes)
        if (rows < 0).any():
            raise MlclipError(f"{where}: stale feature cache, a {what} has no feature; recompute it with `mlclip features`")
        return rows.astype(np.int32)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """float32 features of `rows` (sorted unique), reading only the shards that hold them."""
        shard_of = np.searchsorted(self.starts, rows, side="right") - 1
        blocks = []
        for shard in np.unique(shard_of):
            table = pq.read_table(self.shards[shard], columns=["embedding"])
            flat = table.column("embedding").combine_chunks()
            dim = len(flat[0])
            matrix = np.asarray(flat.values.to_numpy(zero_copy_only=False)).reshape(-1, dim)
            blocks.append(matrix[rows[shard_of == shard] - self.starts[shard]].astype(np.float32))
        return np.concatenate(blocks)


@dataclass
class LanguageCodes:
    """Per-row language as one byte each; indexing with rows gives the codes' names."""

    names: np.ndarray
    codes: np.ndarray

    def __getitem__(self, rows) -> np.ndarray:
        return self.names[self.codes[rows]]

    def __len__(self) -> int:
        return len(self.codes)

    def tolist(self) -> list[str]:
        return self.names[self.codes].tolist()


@dataclass
class StreamedPairs:
    manifest: Path
    languages: LanguageCodes  # language per row
    manifest_rows: np.ndarray  # each row's position in the manifest file
    image_group: np.ndarray  # per row: index of its image (first-appearance order)
    order: np.ndarray  # rows sorted by image (stable)
    bounds: np.ndarray  # rows of image i: order[bounds[i]:bounds[i + 1]]
    teacher_rows: np.ndarray | None  # per row: row of its English caption's feature
    image_rows: np.ndarray | None  # per row: row of its image's feature
    teacher_part: _FeatureRows | None
    image_part: _FeatureRows | None
    window_images: int = WINDOW_IMAGES
    _window: tuple | None = field(default=None, repr=False)  # (window, rows, captions, teacher, image)

    def __len__(self) -> int:
        return len(self.languages)

    @property
    def teacher(self):  # what a stage checks before it needs teacher / image features
        return self.teacher_part

    @property
    def image(self):
        return self.image_part

    @property
    def images(self) -> int:
        return len(self.bounds) - 1

    def _windows(self) -> list[tuple[int, int]]:
        return [(start, min(start + self.window_images, self.images)) for start in range(0, self.images, self.window_images)]

    def batch(self, step: int, batch_size: int, seed: int) -> np.ndarray:
        windows = self._windows()
        size = min(batch_size, self.images)
        if len(windows) == 1:  # exactly PairData.batch
            per_epoch = max(1, self.images // size)
            epoch, offset = divmod(step, per_epoch)
            order = np.random.default_rng([seed, epoch]).permutation(self.images)[offset * size:(offset + 1) * size]
            pick = np.random.default_rng([seed, epoch, offset, 1])
        else:
            counts = [max(1, (end - start) // size) for start, end in windows]
            epoch, within = divmod(step, sum(counts))
            visit = np.random.default_rng([seed, epoch, 2]).permutation(len(windows))
            done = np.cumsum([counts[w] for w in visit])
            slot = int(np.searchsorted(done, within, side="right"))
            offset = within - (done[slot - 1] if slot else 0)
            start, end = windows[visit[slot]]
            local = np.random.default_rng([seed, epoch, 3, int(visit[slot])]).permutation(end - start)
            order = start + local[offset * size:(offset + 1) * size]
            pick = np.random.default_rng([seed, epoch, 4, int(visit[slot]), int(offset)])
        return np.array([self.order[self.bounds[i] + pick.integers(self.bounds[i + 1] - self.bounds[i])] for i in order])

    def _load_window(self, rows: np.ndarray) -> tuple:
        window = int(self.image_group[rows[0]]) // self.window_images
        if self._window is not None and self._window[0] == window:
            return self._window
        self._window = None  # drop the last window before reading the next
        start, end = self._windows()[window]
        mine = np.sort(self.order[self.bounds[start]:self.bounds[end]])
        positions = self.manifest_rows[mine]
        captions = _captions_at(self.manifest, positions)
        teacher = image = None
        if self.teacher_rows is not None:
            wanted, back = np.unique(self.teacher_rows[mine], return_inverse=True)
            teacher = (self.teacher_part.read(wanted), back)
        if self.image_rows is not None:
            wanted, back = np.unique(self.image_rows[mine], return_inverse=True)
            image = (self.image_part.read(wanted), back)
        self._window = (window, mine, captions, teacher, image)
        return self._window

    def _at(self, rows: np.ndarray) -> tuple[tuple, np.ndarray]:
        window = self._load_window(rows)
        where = np.searchsorted(window[1], rows)
        if not np.array_equal(window[1][np.minimum(where, len(window[1]) - 1)], rows):
            raise MlclipError("a batch spans two windows")  # batches are drawn within one window
        return window, where

    def first_captions(self, count: int) -> list[str]:
        """The captions of the first `count` rows, in file order: the in-memory `PairData.captions[:count]`."""
        return _captions_at(self.manifest, self.manifest_rows[:count])

    def captions_of(self, rows: np.ndarray) -> list[str]:
        window, where = self._at(rows)
        return [window[2][i] for i in where]

    def teacher_of(self, rows: np.ndarray) -> np.ndarray:
        window, where = self._at(rows)
        matrix, back = window[3]
        return matrix[back[where]]

    def image_of(self, rows: np.ndarray) -> np.ndarray:
        window, where = self._at(rows)
        matrix, back = window[4]
        return matrix[back[where]]


def _captions_at(manifest: Path, positions: np.ndarray, batch_size: int = 65_536) -> list[str]:
    """The captions at sorted manifest `positions`, decoding only the row groups that hold them,
    a batch at a time."""
    reader = pq.ParquetFile(manifest, buffer_size=1 << 20, pre_buffer=False)
    meta = reader.metadata
    starts = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    captions: list[str] = []
    for group in np.unique(np.searchsorted(starts, positions, side="right") - 1):
        first = int(starts[group])
        for batch in reader.iter_batches(batch_size=batch_size, row_groups=[int(group)], columns=["caption"],
                                         use_threads=False):
            mine = positions[(positions >= first) & (positions < first + batch.num_rows)] - first
            if len(mine):
                captions += batch.column(0).take(mine).to_pylist()
            first += batch.num_rows
    return captions


def stream_pairs(manifest: Path, languages: list[str], split: str, need_teacher: bool, need_images: bool,
                 folder: Path, identity: str, preprocess: str) -> tuple[StreamedPairs, dict]:
    """The rows load_pairs would keep (same order), as integer arrays; features stay on disk."""
    en_pairs, en_samples, chunks, seen = [], [], [], 0
    names = np.array(languages)
    for batch in scan_manifest(manifest, ["sample_id", "image_id", "language", "pair_id", "image_path", "split"]):
        frame = batch.to_pandas()
        frame["position"] = np.arange(seen, seen + len(frame), dtype=np.int32)  # rows of the file, unfiltered
        seen += len(frame)
        if split != "all":
            frame = frame[frame.split == split]
        english = frame[(frame.language == "en") & frame.pair_id.notna()]
        en_pairs.append(_hash(english.pair_id))
        en_samples.append(_hash(english.sample_id))
        targets = frame[frame.language.isin(languages)]
        if need_images:
            targets = targets[targets.image_path.notna()]
        chunks.append(pd.DataFrame({
            "language": pd.Categorical(targets.language, categories=languages).codes.astype(np.int8),
            "position": targets.position.to_numpy(), "image": _hash(targets.image_id),
            "pair": _hash(targets.pair_id.fillna("")), "has_pair": targets.pair_id.notna().to_numpy()}))
    rows = pd.concat(chunks, ignore_index=True)
    del chunks
    pair_index = pd.Index(np.concatenate(en_pairs))
    en_sample = np.concatenate(en_samples)
    named = ", ".join(languages)
    if need_teacher:
        known = rows.pair.isin(pair_index).to_numpy()
        rows = rows[known & rows.has_pair.to_numpy()].reset_index(drop=True)
        if rows.empty:
            raise MlclipError(f"{manifest}: no {named} caption has a parallel English caption "
                              "(same pair_id), which NLT needs; train with --stages le or give parallel data")
    if need_images and rows.empty:
        raise MlclipError(f"{manifest}: no {named} caption has an image, which LE needs; "
                          "prepare with --images or train with --stages nlt")
    for code, language in enumerate(languages):
        if not (rows.language == code).any():
            raise MlclipError(f"{manifest}: no usable {split} rows in language '{language}'")
    codes, groups = pd.factorize(rows.image.to_numpy())
    codes = codes.astype(np.int32)
    order = np.argsort(codes, kind="stable").astype(np.int32)
    bounds = np.searchsorted(codes[order], np.arange(len(groups) + 1))
    teacher_part = image_part = teacher_rows = image_rows = None
    if need_teacher:
        teacher_part = _FeatureRows.of(folder, "text-en", identity)
        # a pair's English caption: the last one, as load_pairs' dict keeps
        last_of_pair = pd.Series(en_sample).groupby(pair_index.to_numpy()).last()
        teacher_rows = teacher_part.rows_of(last_of_pair.loc[rows.pair.to_numpy()].to_numpy(), "English caption", folder)
    if need_images:
        image_part = _FeatureRows.of(folder, "image", identity, preprocess)
        image_rows = image_part.rows_of(rows.image.to_numpy(), "image", folder)
    data = StreamedPairs(Path(manifest), LanguageCodes(names, rows.language.to_numpy()), rows.position.to_numpy(), codes,
                         order, bounds, teacher_rows, image_rows, teacher_part, image_part)
    summary = {"manifest": str(Path(manifest).resolve()), "split": split, "features": str(folder),
               "rows": {lang: int((rows.language == code).sum()) for code, lang in enumerate(languages)},
               "images": data.images}
    return data, summary


def split_counts(manifest: Path) -> pd.DataFrame:
    """Captions per (split, language), read a batch at a time."""
    counts: dict[tuple[str, str], int] = {}
    for batch in scan_manifest(manifest, ["split", "language"]):
        for key, count in batch.to_pandas().value_counts().items():
            counts[key] = counts.get(key, 0) + int(count)
    return pd.DataFrame([(s, lang, n) for (s, lang), n in counts.items()], columns=["split", "language", "count"])


def sample_captions(manifest: Path, language: str, split: str, size: int) -> list[str]:
    """What `captions.sample(min(size, n), random_state=0)` gives on the in-memory rows of
    `language` in `split` ("all": every split), reading only the sampled captions."""
    positions, seen = [], 0
    for batch in scan_manifest(manifest, ["language", "split"]):
        frame = batch.to_pandas()
        mine = (frame.language == language).to_numpy() & (True if split == "all" else (frame.split == split).to_numpy())
        positions.append(np.flatnonzero(mine) + seen)
        seen += len(frame)
    positions = np.concatenate(positions)
    chosen = positions[np.random.RandomState(0).choice(len(positions), min(size, len(positions)), replace=False)]
    ranked = np.argsort(chosen)
    captions = _captions_at(manifest, chosen[ranked])
    out = [""] * len(chosen)
    for rank, caption in zip(ranked, captions):
        out[rank] = caption
    return out


def read_languages(manifest: Path, languages: list[str], columns: list[str]) -> pd.DataFrame:
    """`columns` of the rows of `languages` (every split, in file order): a few languages of a large
    manifest without holding the others."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from mlclip_cli.artifacts import MANIFEST

    batches = [b for b in scan_manifest(manifest, columns, ds.field("language").isin(list(languages))) if len(b)]
    if not batches:
        return pa.schema([MANIFEST.schema.field(name) for name in columns]).empty_table().to_pandas()
    return pa.Table.from_batches(batches).to_pandas()


def read_split(manifest: Path, split: str) -> pd.DataFrame:
    """Every column of one split's rows (a validation split: small)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from mlclip_cli.artifacts import MANIFEST

    batches = [b for b in scan_manifest(manifest, MANIFEST.schema.names, ds.field("split") == split) if len(b)]
    return pa.Table.from_batches(batches).to_pandas() if batches else MANIFEST.schema.empty_table().to_pandas()
