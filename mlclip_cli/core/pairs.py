"""Training data of both methods: target-language captions joined to cached frozen features, and
the validation / per-task test sets they are scored on.

NLT needs, per caption, the frozen teacher's embedding of its parallel English caption (same
pair_id); LE needs its image's frozen feature. Both come from the feature cache (`mlclip
features`), never recomputed per step. Batches hold distinct images, so in-batch InfoNCE has no
false negatives.
"""

from __future__ import annotations


from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlclip_cli.errors import MlclipError
from mlclip_cli.features import FeaturesConfig, compute_features, listed_parts, load_features
from mlclip_cli.locks import FolderBusy
from mlclip_cli.workspace import feature_folder


@dataclass(frozen=True)
class SharedRows:
    """A per-row feature matrix held once per distinct row: `shared[rows]` is `matrix[index[rows]]`.
    An image's captions share its feature and parallel captions their English teacher's, so this is
    the cached matrix (31 MB for the world's English captions) instead of a copy per caption (154 MB
    for four languages)."""

    matrix: np.ndarray  # [distinct rows, dim]
    index: np.ndarray  # per row: its row of `matrix`

    def __getitem__(self, rows) -> np.ndarray:
        return self.matrix[self.index[rows]]

    def __len__(self) -> int:
        return len(self.index)

    def take(self, rows) -> "SharedRows":
        return SharedRows(self.matrix, self.index[rows])


def _take(features, rows):
    """`rows` of a per-row matrix, a SharedRows (still shared) or None."""
    if features is None:
        return None
    return features.take(rows) if isinstance(features, SharedRows) else features[rows]


@dataclass
class PairData:
    captions: list[str]
    languages: np.ndarray  # language code per row
    teacher: np.ndarray | SharedRows | None  # [rows, dim] frozen English embedding of the parallel caption
    image: np.ndarray | SharedRows | None  # [rows, dim] frozen image feature
    image_group: np.ndarray  # per row: index of its image (rows of one image share it)
    rows_of_image: list[np.ndarray]
    image_ids: np.ndarray | None = None  # per row: its image_id (positives across data sets, e.g. replay)

    @classmethod
    def of(cls, captions: list[str], languages: np.ndarray, teacher, image, image_ids: np.ndarray) -> "PairData":
        codes, groups = pd.factorize(image_ids)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(groups) + 1))
        return cls(captions, languages, teacher, image, codes, [order[bounds[i]:bounds[i + 1]] for i in range(len(groups))],
                   image_ids)

    def subset(self, languages: list[str]) -> "PairData":
        """The rows in `languages` (e.g. one task of data loaded for a whole sequence)."""
        return self.take(np.flatnonzero(np.isin(self.languages, languages)))

    def take(self, rows: np.ndarray) -> "PairData":
        """These rows (sorted row numbers), their features still shared where they were."""
        return PairData.of([self.captions[i] for i in rows], self.languages[rows], _take(self.teacher, rows),
                           _take(self.image, rows), self.image_ids[rows])

    def __len__(self) -> int:
        return len(self.captions)

    # What a training step reads (a streamed data set answers the same three from disk).
    def captions_of(self, rows: np.ndarray) -> list[str]:
        return [self.captions[r] for r in rows]

    def teacher_of(self, rows: np.ndarray) -> np.ndarray:
        return self.teacher[rows]

    def image_of(self, rows: np.ndarray) -> np.ndarray:
        return self.image[rows]

    def batch(self, step: int, batch_size: int, seed: int) -> np.ndarray:
        """Row indices of batch `step`: distinct images in a seeded per-epoch order, one random
        caption of each. A function of (seed, step) only, so a resumed run sees the same batches."""
        images = len(self.rows_of_image)
        size = min(batch_size, images)
        per_epoch = max(1, images // size)
        epoch, offset = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(images)[offset * size:(offset + 1) * size]
        pick = np.random.default_rng([seed, epoch, offset, 1])
        return np.array([rows[pick.integers(len(rows))] for rows in (self.rows_of_image[i] for i in order)])


@dataclass
class Validation:
    captions: dict[str, list[str]]  # language -> val captions
    caption_image: dict[str, np.ndarray]  # language -> image index of each caption
    image: np.ndarray  # [images, dim]


# The manifest columns training pairs are made of (a caller may read only these).
PAIR_COLUMNS = ["sample_id", "image_id", "language", "caption", "split", "pair_id", "image_path"]


def select_rows(manifest: pd.DataFrame, where: str, languages: list[str], split: str | None) -> tuple[pd.DataFrame, str]:
    """Rows of `languages` in `split` (None: "train" when the manifest has it, else every split)."""
    missing = sorted(set(PAIR_COLUMNS) - set(manifest.columns))
    if missing:
        raise MlclipError(f"{where}: columns {', '.join(missing)} are missing")
    return choose_split(manifest, where, languages, split)


def choose_split(rows: pd.DataFrame, where: str, languages: list[str], split: str | None) -> tuple[pd.DataFrame, str]:
    """`rows` (anything with split and language columns: captions or counts of them) of `split`,
    checked to hold every language (None: "train" when there is one, else every split)."""
    if split is None:
        split = "train" if (rows.split == "train").any() else "all"
    rows = rows if split == "all" else rows[rows.split == split]
    if rows.empty:
        raise MlclipError(f"{where}: no rows in split '{split}'")
    for language in languages:
        if not (rows.language == language).any():
            raise MlclipError(f"{where}: no {split} rows in language '{language}' "
                              f"(it has {', '.join(sorted(rows.language.unique()))})")
    return rows, split


def load_pairs(manifest: pd.DataFrame, manifest_path: Path, languages: list[str], split: str | None,
               need_teacher: bool, need_images: bool, encoder, features_root: Path,
               features_dir: Path | None = None, progress=None) -> tuple[PairData, dict]:
    """Join the captions of `languages` to cached teacher / image features (computed on first use
    into the workspace cache; an explicit `features_dir` must already hold them). `manifest` holds
    the rows of `manifest_path`, or only those of some languages (at least `languages` and English)."""
    where = str(manifest_path)
    rows, split = select_rows(manifest, where, languages, split)
    english = rows[rows.language == "en"]
    targets = rows[rows.language.isin(languages)]
    if need_teacher:
        english = english[english.pair_id.notna()]
        targets = targets[targets.pair_id.isin(set(english.pair_id))]
        if targets.empty:
            raise MlclipError(f"{where}: no {', '.join(languages)} caption has a parallel English caption "
                              "(same pair_id), which NLT needs; train with --stages le or give parallel data")
    if need_images:
        targets = targets[targets.image_path.notna()]
        if targets.empty:
            raise MlclipError(f"{where}: no {', '.join(languages)} caption has an image, which LE needs; "
                              "prepare with --images or train with --stages nlt")
    for language in languages:
        if not (targets.language == language).any():
            raise MlclipError(f"{where}: no usable {split} rows in language '{language}'")

    identity = encoder.image_identity
    folder = Path(features_dir) if features_dir else feature_folder(features_root, manifest_path, split, identity)
    if features_dir is None:  # checked against the file, streamed: `manifest` may hold only some languages
        parts = (["text-en"] if need_teacher else []) + (["image"] if need_images else [])
        try:
            compute_features(FeaturesConfig(manifest=manifest_path, out=folder, languages=("en",) if need_teacher else (),
                                            split=None if split == "all" else split, images=need_images),
                             encoder=encoder, progress=progress)
        except FolderBusy:
            # Another run is checking or filling the same cache. Its shards are written whole, so
            # a cache that already lists every part this run needs is read as it is; otherwise the
            # one-line refusal stands.
            if not set(parts) <= set(listed_parts(folder) or {}):
                raise
    teacher = image = None
    if need_teacher:
        keys, matrix = load_features(folder, "text-en", identity)
        row_of = {k: i for i, k in enumerate(keys)}
        en_of_pair = dict(zip(english.pair_id, english.sample_id))
        try:
            teacher = SharedRows(matrix, np.array([row_of[en_of_pair[p]] for p in targets.pair_id], dtype=np.int64))
        except KeyError as exc:
            raise MlclipError(f"{folder}: stale feature cache, English caption {exc} has no teacher feature; "
                              "recompute it with `mlclip features`") from None
    if need_images:
        keys, matrix = load_features(folder, "image", identity, encoder.preprocess_description)
        row_of = {k: i for i, k in enumerate(keys)}
        try:
            image = SharedRows(matrix, np.array([row_of[i] for i in targets.image_id], dtype=np.int64))
        except KeyError as exc:
            raise MlclipError(f"{folder}: stale feature cache, image {exc} has no feature; "
                              "recompute it with `mlclip features`") from None
    data = PairData.of(targets.caption.tolist(), targets.language.to_numpy(), teacher, image, targets.image_id.to_numpy())
    summary = {"manifest": str(Path(manifest_path).resolve()), "split": split, "features": str(folder),
               "rows": {lang: int((targets.language == lang).sum()) for lang in languages},
               "images": len(data.rows_of_image)}
    return data, summary


def evaluation_set(manifest: pd.DataFrame, manifest_path: Path, languages: list[str], encoder, features_root: Path,
                   progress=None, split: str = "val"):
    """The `split` rows of `languages` with their frozen image features (computed on first use):
    what validation (and a continual run's per-step test) scores. None when there are none.
    A text-only base (a HF sentence encoder) scores text to text instead: see text_evaluation_set."""
    if not getattr(encoder, "has_images", True):
        return text_evaluation_set(manifest, manifest_path, languages, encoder, features_root, progress, split)
    val = manifest[(manifest.split == split) & manifest.image_path.notna() & manifest.language.isin(languages)]
    if val.empty:
        return None
    folder = feature_folder(features_root, manifest_path, split, encoder.image_identity)
    compute_features(FeaturesConfig(manifest=manifest_path, out=folder, languages=(), split=split),
                     encoder=encoder, progress=progress, manifest=manifest)
    keys, matrix = load_features(folder, "image", encoder.image_identity, encoder.preprocess_description)
    image_ids = list(dict.fromkeys(val.image_id))
    row_of = {k: i for i, k in enumerate(keys)}
    index = {image_id: i for i, image_id in enumerate(image_ids)}
    captions, caption_image = _by_language(val, languages, val.image_id.map(index).to_numpy())
    return Validation(captions, caption_image, matrix[[row_of[i] for i in image_ids]])


def _by_language(rows: pd.DataFrame, languages: list[str], gallery_row: np.ndarray):
    """language -> its captions, and -> each caption's row in the gallery (image or English)."""
    captions, where = {}, {}
    for language in languages:
        mine = (rows.language == language).to_numpy()
        if mine.any():
            captions[language] = rows.caption[mine].tolist()
            where[language] = gallery_row[mine]
    return captions, where


def text_evaluation_set(manifest: pd.DataFrame, manifest_path: Path, languages: list[str], encoder,
                        features_root: Path, progress=None, split: str = "val") -> Validation | None:
    """Text-to-text scoring for a text-only base: each `split` caption of `languages` retrieves
    its parallel English caption (same pair_id) among all English captions of the split, whose
    frozen embeddings stand where image features stand for image-text (so `retrieval_metrics`
    reads "image" as "English sentence"). None when no caption has a parallel English one."""
    rows = manifest[(manifest.split == split) & manifest.pair_id.notna()]
    english = rows[rows.language == "en"].drop_duplicates("pair_id")
    val = rows[rows.language.isin(languages) & rows.pair_id.isin(set(english.pair_id))]
    if val.empty:
        return None
    folder = feature_folder(features_root, manifest_path, split, encoder.image_identity)
    compute_features(FeaturesConfig(manifest=manifest_path, out=folder, languages=("en",), split=split, images=False),
                     encoder=encoder, progress=progress, manifest=manifest)
    keys, matrix = load_features(folder, "text-en", encoder.image_identity)
    row_of = {k: i for i, k in enumerate(keys)}
    index = {pair: i for i, pair in enumerate(english.pair_id)}
    captions, target = _by_language(val, languages, val.pair_id.map(index).to_numpy())
    return Validation(captions, target, matrix[[row_of[k] for k in english.sample_id]])
