"""An image index: a folder holding a FAISS index of a collection's image features, the images it
lists (path, size, mtime) and what made it, so `mlclip search` and `mlclip serve` can answer
queries and `mlclip index add` can bring it up to date by encoding only what changed.

    index.faiss + index.keys.parquet   the FAISS index and its keys (search.save_index)
    items.parquet                      path, size, mtime_ns, embedding per image (artifacts.IMAGE_INDEX_ITEMS)
    index.json                         image identity, model, dim, kind, count, root, source: written last

Paths are stored relative to the collection's root, so a collection moved as a whole (mtimes kept)
is still up to date. The folder is written whole into a sibling and swapped in under its lock
(`core.extension.swap_in`, `locks.writer_lock`). The model is anything with `encode_image`,
`image_identity`, `dim` and `spec` (`mlclip_cli.api.Model`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa

from mlclip_cli import __version__
from mlclip_cli.artifacts import IMAGE_INDEX_ITEMS, read_table, write_table
from mlclip_cli.atomic import write_json
from mlclip_cli.core.extension import read_json_object, read_whole, recover, swap_in
from mlclip_cli.errors import ArtifactError, MlclipError
from mlclip_cli.images import TAR_SEPARATOR, open_image
from mlclip_cli.locks import writer_lock
from mlclip_cli.search import INDEX_KINDS, IndexConfig, build_index, is_on_gpu, load_index, save_index

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
INDEX_FILE, FAISS_FILE, ITEMS_FILE = "index.json", "index.faiss", "items.parquet"
ARTIFACT = "mlclip-image-index"
SCHEMA_VERSION = 1
ENCODE_BATCH = 64

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Hit:
    rank: int  # 1-based
    path: str  # as stored in the index: relative to the collection root
    score: float  # cosine


@dataclass(frozen=True)
class Unreadable:
    path: str  # relative to the collection root
    reason: str


@dataclass
class AddResult:
    added: int = 0  # new files encoded
    updated: int = 0  # files whose size or mtime changed, encoded again
    removed: int = 0  # files gone (or unreadable now), dropped
    unchanged: int = 0
    unreadable: list[Unreadable] = field(default_factory=list)  # new or changed files that could not be read

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------- listing


def list_images(folder: str | os.PathLike) -> list[str]:
    """The images under `folder`, recursively (hidden files and folders skipped), as sorted
    `/`-separated paths relative to it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MlclipError(f"{folder}: no such image folder")
    found = []
    for top, dirs, files in os.walk(folder):  # linked folders not followed: a link cycle cannot loop
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(top).relative_to(folder)
        found += [(base / name).as_posix() for name in files
                  if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(found)


def manifest_images(manifest: str | os.PathLike, split: str | None = None) -> list[str]:
    """The distinct image paths of a prepared data set's manifest (of one split), sorted."""
    import pyarrow.dataset as ds

    from mlclip_cli.artifacts import scan_manifest

    where = ds.field("image_path").is_valid()
    if split is not None:
        where = where & (ds.field("split") == split)
    paths: set[str] = set()
    for batch in scan_manifest(manifest, ["image_path"], where):
        paths.update(batch.column(0).to_pylist())
    if not paths:
        raise MlclipError(f"{manifest}: no images" + (f" in split '{split}'" if split else ""))
    return sorted(paths)


def _file_of(path: str) -> str:
    """The file on disk behind an image path (a webdataset member's shard)."""
    return path.split(TAR_SEPARATOR, 1)[0]


def _relative(paths: Sequence[str | os.PathLike], root: Path | None) -> tuple[Path, list[str]]:
    """A root (given, or the files' common folder) and each path relative to it, `/`-separated."""
    absolute = [os.path.abspath(str(p)) for p in paths]
    if root is None:
        root = Path(os.path.commonpath([os.path.dirname(_file_of(p)) for p in absolute]))
    root = Path(os.path.abspath(root))
    rels = []
    for path in absolute:
        rel = os.path.relpath(path, root)
        if rel.startswith(".."):
            raise MlclipError(f"{path}: not under the collection root {root}")
        rels.append(Path(rel).as_posix())
    return root, list(dict.fromkeys(rels))


def _stat(root: Path, rel: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(root / _file_of(rel))
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


# ---------------------------------------------------------------------------------------- encoding


def _encode(model, root: Path, rels: list[str], progress: Progress | None,
            batch_size: int = ENCODE_BATCH) -> tuple[list[str], np.ndarray, list[Unreadable]]:
    """Encode the images `rels` under `root`: the ones read (in order), their features, and the ones
    that could not be read. The next batch is decoded in a thread while this one encodes."""
    bad: list[Unreadable] = []

    def decode(batch: list[str]):
        images = []
        for rel in batch:
            try:
                images.append((rel, open_image(str(root / rel))))
            except MlclipError as exc:
                bad.append(Unreadable(rel, str(exc)))
        return images

    batches = [rels[s:s + batch_size] for s in range(0, len(rels), batch_size)]
    kept, blocks, done = [], [], 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode, batches[0]) if batches else None
        for i, batch in enumerate(batches):
            images = pending.result()
            pending = pool.submit(decode, batches[i + 1]) if i + 1 < len(batches) else None
            if images:
                blocks.append(model.encode_image([image for _, image in images], batch_size=batch_size))
                kept += [rel for rel, _ in images]
            done += len(batch)
            if progress:
                progress("encode images", done, len(rels))
    vectors = np.concatenate(blocks) if blocks else np.zeros((0, model.dim), dtype=np.float32)
    return kept, np.ascontiguousarray(vectors, dtype=np.float32), bad


# A batch of fewer query rows than this is searched on one OpenMP thread. A single query's scan is
# short, and OpenMP's threads cost more than they share: on 2 busy cores, one query against 30,000
# vectors (flat, dim 128) took 16.5 ms on 2 threads and 0.29 ms on one, against 1M vectors 192 ms
# and 38 ms (docs/benchmarks.md, "Search latency"). The setting is the calling thread's own.
FEW_QUERIES = 8


def _search(index, queries: np.ndarray, k: int):
    if len(queries) >= FEW_QUERIES or is_on_gpu(index):
        return index.search(queries, k)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k)
    finally:
        faiss.omp_set_num_threads(before)


def _faiss_index(vectors: np.ndarray, dim: int, kind: str):
    if not len(vectors):  # an index whose every image is gone: empty, still searchable
        return faiss.IndexFlatIP(dim)
    return build_index(vectors, IndexConfig(kind=kind))


# ---------------------------------------------------------------------------------------- the index


class Index:
    """A collection's image index: build it with a model, search it with query vectors, keep it
    with `save` and bring it up to date with `add`."""

    def __init__(self, *, root: Path | None, paths: list[str], sizes: list[int], mtimes: list[int],
                 vectors: np.ndarray, image_identity: str, dim: int, kind: str = "flat",
                 model: str | None = None, source: dict | None = None, created: str | None = None,
                 faiss_index=None):
        self.root = Path(root) if root is not None else None
        self.paths, self.sizes, self.mtimes = list(paths), list(sizes), list(mtimes)
        self.vectors = vectors
        self.image_identity, self.dim, self.kind = image_identity, dim, kind
        self.model = model  # the spec it was built with: `mlclip search`'s default --model
        self.source = source or {"kind": "files"}
        self.created = created or _now()
        self.unreadable: list[Unreadable] = []  # images the last build or add could not read
        self._faiss = faiss_index if faiss_index is not None else _faiss_index(vectors, dim, kind)
        self._position = {path: i for i, path in enumerate(self.paths)}

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"Index({len(self)} images under {self.root}, {self.kind}, {self.image_identity})"

    # -------------------------------------------------------------------------------- building

    @classmethod
    def build(cls, model, images: str | os.PathLike | Sequence[str | os.PathLike], *,
              root: str | os.PathLike | None = None, kind: str = "flat", progress: Progress | None = None,
              batch_size: int = ENCODE_BATCH) -> "Index":
        """Encode a folder's images (recursively, sorted) or a list of image files (`root`: the
        folder their paths are relative to; default their common folder). Images that cannot be
        read are left out and listed in `index.unreadable`."""
        if kind not in INDEX_KINDS:
            raise MlclipError(f"unknown index kind '{kind}' (choose {', '.join(INDEX_KINDS)})")
        root, rels, source = _listing(images, root)
        return cls._build(model, root, rels, source, kind, progress, batch_size)

    @classmethod
    def _build(cls, model, root: Path, rels: list[str], source: dict, kind: str, progress: Progress | None,
               batch_size: int = ENCODE_BATCH) -> "Index":
        if not rels:
            raise MlclipError(f"{root}: no images ({', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
        stats = {rel: _stat(root, rel) for rel in rels}
        missing = [rel for rel, stat in stats.items() if stat is None]
        kept, vectors, bad = _encode(model, root, [r for r in rels if stats[r] is not None], progress, batch_size)
        bad = [Unreadable(rel, f"cannot read image {root / rel}: no such file") for rel in missing] + bad
        if not kept:
            raise MlclipError(f"{root}: none of its {len(rels)} images could be read (first: {bad[0].reason})")
        index = cls(root=root, paths=kept, sizes=[stats[r][0] for r in kept], mtimes=[stats[r][1] for r in kept],
                    vectors=vectors, image_identity=model.image_identity, dim=vectors.shape[1], kind=kind,
                    model=model.spec, source=source)
        index.unreadable = bad
        return index

    def add(self, model, images: str | os.PathLike | Sequence[str | os.PathLike] | None = None, *,
            progress: Progress | None = None, batch_size: int = ENCODE_BATCH) -> AddResult:
        """Bring the index up to date, encoding only new files and files whose size or mtime
        changed. `images`: None re-reads what it was built from (its folder, manifest or files); a
        folder is the whole collection now (files gone from it are dropped; another folder than
        the root moves the root there); a list of files adds or updates those files only."""
        self.check_model(model)
        if images is None:
            root, rels, complete = self.root, self._source_listing(), True
        else:
            complete = isinstance(images, (str, os.PathLike)) and Path(images).is_dir()
            root, rels, source = _listing(images, None if complete else self.root)
            if complete:
                self.source = source
        result = AddResult()
        stats = {rel: _stat(root, rel) for rel in rels}
        keep = [i for i, path in enumerate(self.paths) if not complete or stats.get(path) is not None]
        todo = []
        for rel, stat in stats.items():
            if stat is None:
                continue
            at = self._position.get(rel)
            if at is None:
                todo.append(rel)
            elif stat != (self.sizes[at], self.mtimes[at]):
                todo.append(rel)
            else:
                result.unchanged += 1
        kept, vectors, bad = _encode(model, root, todo, progress, batch_size)
        if not complete:  # a file named in the list that is not there: said, not skipped
            bad = [Unreadable(rel, f"cannot read image {root / rel}: no such file")
                   for rel, stat in stats.items() if stat is None] + bad
        result.unreadable = bad
        encoded = dict(zip(kept, vectors))
        gone = {u.path for u in bad}  # changed into something unreadable: drop it rather than keep a stale vector
        paths, sizes, mtimes, rows = [], [], [], []
        for i in keep:
            path = self.paths[i]
            if path in gone:
                continue
            if path in encoded:
                result.updated += 1
                sizes.append(stats[path][0])
                mtimes.append(stats[path][1])
                rows.append(encoded.pop(path))
            else:
                sizes.append(self.sizes[i])
                mtimes.append(self.mtimes[i])
                rows.append(self.vectors[i])
            paths.append(path)
        result.removed = len(self.paths) - len(paths)
        for path, vector in encoded.items():  # new files, in listing order
            result.added += 1
            paths.append(path)
            sizes.append(stats[path][0])
            mtimes.append(stats[path][1])
            rows.append(vector)
        if result.changed or root != self.root:
            self.root = root
            self.paths, self.sizes, self.mtimes = paths, sizes, mtimes
            self.vectors = np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dim)
            self._faiss = _faiss_index(self.vectors, self.dim, self.kind)
            self._position = {path: i for i, path in enumerate(self.paths)}
        self.unreadable = bad
        return result

    def _source_listing(self) -> list[str]:
        kind = self.source.get("kind")
        if kind == "folder":
            return list_images(self.root)
        if kind == "manifest":
            _, rels = _relative(manifest_images(self.source["manifest"], self.source.get("split")), self.root)
            return rels
        return list(self.paths)  # files: re-check the ones it lists

    def check_model(self, model) -> None:
        """Refuse a model whose image tower is not the one that encoded the images."""
        if model.image_identity != self.image_identity:
            raise MlclipError(f"the index was built with the image tower {self.image_identity}, but the model "
                              f"{model.spec} has {model.image_identity}: use the model that built it "
                              f"({self.model or 'see index.json'}) or rebuild the index")

    # -------------------------------------------------------------------------------- searching

    def search(self, queries: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """The top-k images of each query row (L2-normalised vectors of the index's dimension)."""
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise MlclipError(f"queries of shape {queries.shape} for an index of dimension {self.dim}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise MlclipError(f"k must be a whole number of at least 1, not {k!r}")
        if not len(self):
            return [[] for _ in queries]
        scores, ids = _search(self._faiss, np.ascontiguousarray(queries), min(int(k), len(self)))
        hits = []
        for row_ids, row_scores in zip(ids, scores):
            found = [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]  # -1: fewer than k found
            hits.append([Hit(rank, self.paths[i], s) for rank, (i, s) in enumerate(found, start=1)])
        return hits

    def resolve(self, path: str) -> Path:
        """The file on disk of a listed path."""
        if path not in self._position:
            raise MlclipError(f"{path}: not an image of this index")
        return (self.root or Path(".")) / path

    # -------------------------------------------------------------------------------- files

    def info(self) -> dict:
        return {"artifact": ARTIFACT, "schema_version": SCHEMA_VERSION, "image_identity": self.image_identity,
                "model": self.model, "dim": self.dim, "kind": self.kind, "count": len(self),
                "root": str(self.root) if self.root is not None else None, "source": self.source,
                "created": self.created, "updated": _now(), "mlclip_version": __version__}

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the index folder whole (staged, then swapped in) under the folder's lock. An existing
        folder is replaced only when it is an image index."""
        folder = Path(folder)
        check_out_folder(folder)
        with writer_lock(folder, "index folder"):
            recover(folder, INDEX_FILE)  # a swap a kill interrupted: finished or undone first
            with swap_in(folder) as staged:
                save_index(self._faiss, staged / FAISS_FILE, self.paths, {"image_identity": self.image_identity})
                items = pa.table({"path": self.paths, "size": pa.array(self.sizes, pa.int64()),
                                  "mtime_ns": pa.array(self.mtimes, pa.int64()),
                                  "embedding": pa.array(list(self.vectors), pa.list_(pa.float32()))})
                write_table(items, staged / ITEMS_FILE, IMAGE_INDEX_ITEMS,
                            metadata={"image_identity": self.image_identity, "dim": self.dim})
                write_json(staged / INDEX_FILE, self.info())  # last: a folder without it is no index
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, *, use_gpu: bool | None = None) -> "Index":
        """An index folder written by `save`, checked: its three parts agree with each other."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ArtifactError(f"{folder}: no such index folder (build one with `mlclip index build --images "
                                f"FOLDER --out {folder}`)")
        # every file from one version of the folder, even while a writer swaps in the next one
        return read_whole(folder, lambda version: cls._load(version, folder, use_gpu))

    @classmethod
    def _load(cls, version: Path, folder: Path, use_gpu: bool | None) -> "Index":
        if not (version / INDEX_FILE).is_file():
            raise ArtifactError(f"{folder}: not an image index folder (no {INDEX_FILE}; build one with "
                                "`mlclip index build --images FOLDER`)")
        info = read_json_object(version / INDEX_FILE, "image index")
        if info.get("artifact") != ARTIFACT:
            raise ArtifactError(f"{folder / INDEX_FILE}: not an image index (artifact "
                                f"{info.get('artifact')!r}, expected {ARTIFACT!r})")
        if info.get("schema_version") != SCHEMA_VERSION:
            raise ArtifactError(f"{folder / INDEX_FILE}: schema_version {info.get('schema_version')!r} is not "
                                f"{SCHEMA_VERSION} (written by another mlclip): rebuild it with `mlclip index build`")
        missing = [key for key in ("image_identity", "dim", "kind", "count", "root") if key not in info]
        if missing:
            raise ArtifactError(f"{folder / INDEX_FILE}: corrupt (no {', '.join(missing)}); rebuild the index")
        loaded = load_index(version / FAISS_FILE, use_gpu=use_gpu)
        items = read_table(version / ITEMS_FILE, IMAGE_INDEX_ITEMS)
        paths = items.column("path").to_pylist()
        if paths != loaded.keys or len(paths) != info["count"] or loaded.index.d != info["dim"]:
            raise ArtifactError(f"{folder}: its files disagree ({len(paths)} items, {len(loaded.keys)} keys, "
                                f"{info['count']} in {INDEX_FILE}); rebuild the index")
        flat = items.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        if flat.size != len(paths) * info["dim"]:
            raise ArtifactError(f"{folder}: {ITEMS_FILE} holds embeddings of another dimension than {info['dim']}; "
                                "rebuild the index")
        vectors = np.ascontiguousarray(flat, dtype=np.float32).reshape(len(paths), info["dim"])
        return cls(root=info["root"], paths=paths, sizes=items.column("size").to_pylist(),
                   mtimes=items.column("mtime_ns").to_pylist(), vectors=vectors,
                   image_identity=info["image_identity"], dim=info["dim"], kind=info["kind"], model=info.get("model"),
                   source=info.get("source"), created=info.get("created"), faiss_index=loaded.index)


def is_index_folder(folder: str | os.PathLike) -> bool:
    return (Path(folder) / INDEX_FILE).is_file()


def check_out_folder(folder: str | os.PathLike) -> None:
    """An index is written into a new or empty folder, or over an earlier index: never over (and so
    never deletes) a folder of other files, the image folder itself included."""
    folder = Path(folder)
    if folder.is_file():
        raise MlclipError(f"{folder}: is a file; the index is a folder")
    if folder.is_dir() and any(folder.iterdir()) and not is_index_folder(folder):
        raise MlclipError(f"{folder}: exists and is not an image index folder (no {INDEX_FILE}); "
                          "choose a new or empty folder")


def _listing(images, root) -> tuple[Path, list[str], dict]:
    """(root, paths relative to it, source) of a folder or a list of image files."""
    if isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.is_dir():
            return Path(os.path.abspath(path)), list_images(path), {"kind": "folder"}
        if not path.exists() and TAR_SEPARATOR not in str(path):
            raise MlclipError(f"{path}: no such image folder or file")
        images = [path]
    images = list(images)
    if not images:
        raise MlclipError("no images to index (an empty list)")
    found, rels = _relative(images, Path(root) if root is not None else None)
    return found, rels, {"kind": "files"}
