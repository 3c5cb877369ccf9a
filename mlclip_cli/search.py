"""Nearest-neighbour search with FAISS: exact inner product by default; IVF, IVF-PQ or HNSW for
galleries past a million vectors; on the GPU when faiss-gpu is installed and a GPU is visible.

Every index is inner product over L2-normalised rows, so scores are cosines. Kinds:

- ``flat``: exact search, 4 x dim bytes per vector;
- ``ivf``: an inverted file (k-means coarse quantiser, `nlist` lists, `nprobe` of them visited), raw
  vectors in the lists;
- ``ivfpq``: the same lists holding product-quantised codes (`pq_m` sub-quantisers of 8 bits: pq_m
  bytes per vector), optionally with ``refine``: the raw vectors kept beside the codes and the top
  ``k x refine_factor`` candidates re-ranked exactly;
- ``hnsw``: a graph (`hnsw_m` links per node), CPU only.

`build_index` builds from one matrix; `build_index_sharded` trains once on a sample and then adds
shard by shard, so the gallery never has to sit in memory at once (`FeatureShards` streams a
feature folder). `save_index` / `load_index` keep an index and its keys as files.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np
import pyarrow as pa

from mlclip_cli.artifacts import ArtifactError, ArtifactSpec, read_metadata, read_table, write_table
from mlclip_cli.atomic import atomic_path
from mlclip_cli.errors import MlclipError

INDEX_KINDS = ("flat", "ivf", "ivfpq", "hnsw")
GPU_KINDS = ("flat", "ivf", "ivfpq")  # hnsw has no GPU version in FAISS: it stays on the CPU
TRAINED_KINDS = ("ivf", "ivfpq")
# What GPU IVF-PQ supports at 8 bits: bytes per code (= sub-quantisers) and dimensions per sub-quantiser.
GPU_PQ_M = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)
GPU_PQ_SUB_DIMS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32)
TRAIN_PER_LIST = 64  # training vectors per inverted list (FAISS wants at least 39, uses at most 256)
PQ_TRAIN_MIN = 256 * 39  # vectors the 256-centroid PQ codebooks want

INDEX_KEYS = ArtifactSpec(
    name="index_keys",
    description="The keys of a saved FAISS index: row i is the key of FAISS id i.",
    schema=pa.schema([pa.field("key", pa.string(), nullable=False)]),
)


class TrainingWarning(UserWarning):
    """An index trained on fewer vectors than FAISS wants: it works, with poorer recall."""


@dataclass(frozen=True)
class IndexConfig:
    """How to build an index. None means "derived from the data" (see `resolved`)."""

    kind: str = "flat"
    nlist: int | None = None  # ivf/ivfpq lists; None: min(4 sqrt(n), n // 39)
    nprobe: int = 32  # ivf/ivfpq lists visited per query (at most nlist)
    pq_m: int | None = None  # ivfpq sub-quantisers (must divide dim); None: `default_pq_m(dim)`
    pq_bits: int = 8  # bits per sub-quantiser code
    refine: bool = False  # ivfpq: keep the raw vectors and re-rank the top candidates exactly
    refine_factor: int = 4  # refine: candidates re-ranked = k x refine_factor
    hnsw_m: int = 32  # hnsw: links per node
    ef_search: int = 128  # hnsw: candidate list while searching
    ef_construction: int = 40  # hnsw: candidate list while adding (FAISS's default)
    use_gpu: bool | None = None  # None: the GPU when `gpu_available()` (never for hnsw)
    train_size: int | None = None  # vectors sampled to train; None: `default_train_size`
    seed: int = 0  # training sample

    def check(self) -> "IndexConfig":
        if self.kind not in INDEX_KINDS:
            raise MlclipError(f"unknown index '{self.kind}' (choose {', '.join(INDEX_KINDS)})")
        for name in ("nlist", "pq_m", "train_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MlclipError(f"index {name} must be at least 1, not {value}")
        for name in ("nprobe", "pq_bits", "refine_factor", "hnsw_m", "ef_search", "ef_construction"):
            if getattr(self, name) < 1:
                raise MlclipError(f"index {name} must be at least 1, not {getattr(self, name)}")
        if self.refine and self.kind != "ivfpq":
            raise MlclipError(f"refine re-ranks ivfpq candidates; a '{self.kind}' index has no use for it")
        return self

    def resolved(self, n: int, dim: int) -> "IndexConfig":
        """This config with nlist, pq_m and train_size filled in for a gallery of n vectors of `dim`."""
        self.check()
        if self.kind not in TRAINED_KINDS:
            return self
        nlist = self.nlist or default_nlist(n)
        pq_m = None
        if self.kind == "ivfpq":
            pq_m = self.pq_m or default_pq_m(dim)
            if dim % pq_m:
                raise MlclipError(f"ivfpq pq_m {pq_m} does not divide the dimension {dim}")
        return replace(self, nlist=nlist, pq_m=pq_m, train_size=self.train_size or default_train_size(n, nlist, self.kind))


def default_nlist(n: int) -> int:
    """Inverted lists for n vectors: 4 sqrt(n), with at least the 39 training points per list FAISS wants."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def default_train_size(n: int, nlist: int, kind: str) -> int:
    """Training sample: 64 vectors per list, at least PQ_TRAIN_MIN for ivfpq, at most the gallery."""
    return min(n, max(TRAIN_PER_LIST * nlist, PQ_TRAIN_MIN if kind == "ivfpq" else 0))


def default_pq_m(dim: int) -> int:
    """Sub-quantisers for `dim`: the most that divide it with at least 4 dimensions each, preferring a
    count and sub-dimension the GPU supports (128 -> 32, 256 -> 64, 512 -> 64, 64 -> 16)."""
    for m in sorted(GPU_PQ_M, reverse=True):
        if dim % m == 0 and dim // m >= 4 and dim // m in GPU_PQ_SUB_DIMS:
            return m
    return max(m for m in range(1, max(1, dim // 4) + 1) if dim % m == 0)


# ---------------------------------------------------------------- GPU placement


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def wants_gpu(kind: str, use_gpu: bool | None) -> bool:
    """Whether an index of `kind` goes to the GPU: never for hnsw; for the others as `use_gpu` says,
    or when `gpu_available()` where it is None. Asking for a GPU without one is an error."""
    if kind not in GPU_KINDS:
        return False
    if use_gpu is None:
        return gpu_available()
    if use_gpu and not gpu_available():
        raise MlclipError("a GPU index was asked for, but FAISS sees no GPU (install the `gpu` extra, "
                          "faiss-gpu, and make a GPU visible)")
    return bool(use_gpu)


_GPU_RESOURCES: list = []  # one StandardGpuResources, kept for the life of the process


def to_gpu(index, kind: str):
    """The CPU `index` on the GPU: index_cpu_to_gpu for one GPU, index_cpu_to_all_gpus (a replica on
    each) for several. IVF-PQ uses float16 lookup tables, which large pq_m needs on the GPU."""
    if kind == "ivfpq":
        ngpu = faiss.get_num_gpus()
        options = faiss.GpuMultipleClonerOptions() if ngpu > 1 else faiss.GpuClonerOptions()
        options.useFloat16 = True
    else:
        ngpu, options = faiss.get_num_gpus(), None
    try:
        if ngpu > 1:
            return faiss.index_cpu_to_all_gpus(index, co=options)
        if not _GPU_RESOURCES:
            _GPU_RESOURCES.append(faiss.StandardGpuResources())
        return faiss.index_cpu_to_gpu(_GPU_RESOURCES[0], 0, index, options)
    except RuntimeError as exc:  # e.g. a pq_m or sub-dimension the GPU does not support
        raise MlclipError(f"FAISS could not move the {kind} index to the GPU: {_first_line(exc)}") from None


def is_on_gpu(index) -> bool:
    if isinstance(index, faiss.IndexRefine):
        return is_on_gpu(faiss.downcast_index(index.base_index))
    name = type(index).__name__
    return name.startswith("Gpu") or name in ("IndexReplicas", "IndexShards")


def to_cpu(index):
    """A CPU copy of a GPU index (the index itself when it is on the CPU already)."""
    if isinstance(index, faiss.IndexRefine):
        base = faiss.downcast_index(index.base_index)
        if not is_on_gpu(base):
            return index
        return _refined(to_cpu(base), faiss.downcast_index(index.refine_index), index.k_factor, keep=index)
    return faiss.index_gpu_to_cpu(index) if is_on_gpu(index) else index


def _placed(index, kind: str, on_gpu: bool):
    """`index` (trained, maybe wrapped in a refine) moved to the GPU when `on_gpu`."""
    if not on_gpu:
        return index
    if isinstance(index, faiss.IndexRefine):  # the codes go to the GPU; the raw vectors stay in host memory
        return _refined(to_gpu(faiss.downcast_index(index.base_index), kind),
                        faiss.downcast_index(index.refine_index), index.k_factor, keep=index)
    return to_gpu(index, kind)


def _refined(base, refine_index, k_factor: float, keep=None):
    """`base` re-ranked by the raw vectors of `refine_index`. `keep`: the wrapper these parts were taken
    from (it owns or references them): kept alive as long as the new one."""
    wrapped = faiss.IndexRefine(base, refine_index)
    wrapped.k_factor = k_factor
    wrapped.referenced_objects = [base, refine_index] + ([keep] if keep is not None else [])
    return wrapped


# ---------------------------------------------------------------- building


def _empty_index(dim: int, config: IndexConfig):
    """An untrained CPU index for a resolved config."""
    ip = faiss.METRIC_INNER_PRODUCT
    if config.kind == "flat":
        return faiss.IndexFlatIP(dim)
    if config.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, ip)
        index.hnsw.efConstruction = config.ef_construction
        index.hnsw.efSearch = config.ef_search
        return index
    quantizer = faiss.IndexFlatIP(dim)
    if config.kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, config.nlist, ip)
    else:
        index = faiss.IndexIVFPQ(quantizer, dim, config.nlist, config.pq_m, config.pq_bits, ip)
    index.referenced_objects = [quantizer]
    index.nprobe = min(config.nprobe, config.nlist)
    return index


def train_index(sample: np.ndarray, config: IndexConfig | str = "flat", total: int | None = None):
    """An empty index for `config`, trained on `sample` (ivf, ivfpq: the coarse quantiser, and the
    PQ codebooks) and placed where it will be searched; add the gallery to it. `total`: the gallery
    size the index will hold, for the default nlist and pq_m (default: the sample's size)."""
    config = _as_config(config)
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if sample.ndim != 2 or not sample.shape[1]:
        raise MlclipError(f"training vectors must be a non-empty matrix, not of shape {sample.shape}")
    dim = sample.shape[1]
    config = config.resolved(total if total is not None else len(sample), dim)
    on_gpu = wants_gpu(config.kind, config.use_gpu)
    index = _empty_index(dim, config)
    if config.kind in TRAINED_KINDS:
        if len(sample) < config.nlist:
            raise MlclipError(f"{config.kind} index: {len(sample)} training vectors for {config.nlist} lists "
                              "(give more vectors or a smaller nlist)")
        if config.kind == "ivfpq" and len(sample) < 2 ** config.pq_bits:
            raise MlclipError(f"ivfpq index: {len(sample)} training vectors for {2 ** config.pq_bits} PQ "
                              f"centroids per sub-quantiser (give at least {2 ** config.pq_bits})")
        if config.kind == "ivfpq" and len(sample) < (2 ** config.pq_bits) * 39:
            index.pq.cp.min_points_per_centroid = 1  # one warning here instead of FAISS's one per sub-quantiser
            warnings.warn(f"ivfpq: {len(sample)} training vectors for {2 ** config.pq_bits} PQ centroids per "
                          f"sub-quantiser (FAISS wants {(2 ** config.pq_bits) * 39}): the codes will be coarse",
                          TrainingWarning, stacklevel=2)
        # On the GPU, the k-means assignments of the coarse quantiser run there too (the trained quantiser
        # is the same kind of index). FAISS does not own it: keep a reference while it trains.
        clustering = to_gpu(faiss.IndexFlatIP(dim), "flat") if on_gpu else None
        if clustering is not None:
            index.clustering_index = clustering
        index.train(sample)
        if clustering is not None:
            index.clustering_index = None
            del clustering
    if config.refine:
        refine = faiss.IndexFlat(dim, faiss.METRIC_INNER_PRODUCT)
        index = _refined(index, refine, float(config.refine_factor))
    return _placed(index, config.kind, on_gpu)


def build_index(gallery: np.ndarray, kind: IndexConfig | str = "flat", use_gpu: bool | None = None,
                nprobe: int = 32, *, train_sample: np.ndarray | None = None):
    """An inner-product index over L2-normalised `gallery` rows (so scores are cosines). `kind`: an
    index kind (then `use_gpu` and `nprobe` apply) or an `IndexConfig`. Trained indexes train on
    `train_sample`, else on config.train_size rows of the gallery drawn with config.seed."""
    config = kind if isinstance(kind, IndexConfig) else IndexConfig(kind=kind, nprobe=nprobe, use_gpu=use_gpu)
    gallery = np.ascontiguousarray(gallery, dtype=np.float32)
    if gallery.ndim != 2 or not len(gallery):
        raise MlclipError(f"a gallery must be a non-empty matrix, not of shape {gallery.shape}")
    n, dim = gallery.shape
    config = config.resolved(n, dim)
    if train_sample is None:
        if config.kind in TRAINED_KINDS:
            train_sample = gallery[np.random.default_rng(config.seed).permutation(n)[: config.train_size]]
        else:
            train_sample = gallery[:1]
    index = train_index(train_sample, config, total=n)
    index.add(gallery)
    return index


def build_index_sharded(shards: Iterable[np.ndarray], config: IndexConfig | str = "flat",
                        train_sample: np.ndarray | None = None, total: int | None = None,
                        progress: Callable[[str, int, int], None] | None = None):
    """Train once, then add shard by shard: memory holds the index, the sample and one shard.

    `train_sample`: the vectors to train on (`FeatureShards.sample` draws them over all shards);
    None: the first shard (fine when shards are not ordered by content). `total`: the rows of all
    shards, for the default nlist / pq_m / training size (None: the sample's size). With the same
    trained quantiser, the index equals `build_index` on the concatenated shards.
    """
    config = _as_config(config)
    shards = iter(shards)
    first = None
    if train_sample is None:
        first = next(shards, None)
        if first is None:
            raise MlclipError("no shards to index")
        train_sample = first
        if config.kind in TRAINED_KINDS and total is None and config.nlist is None:
            raise MlclipError("sharded build from the first shard: give the total rows or config.nlist")
    index = train_index(train_sample, config, total=total)
    return build_index_sharded_into(index, itertools.chain([first] if first is not None else [], shards),
                                    total, progress)


def search(index, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices of the top-k gallery rows per query (k clipped to the gallery size)."""
    k = min(k, index.ntotal)
    _, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return found


def recall_vs_exact(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Share of the exact top-k found in an approximate top-k, averaged over queries (0..1)."""
    found, exact = np.asarray(found)[:, :k], np.asarray(exact)[:, :k]
    hits = sum(len(np.intersect1d(f[f >= 0], e)) for f, e in zip(found, exact))
    return hits / exact.size if exact.size else float("nan")


def index_kind(index) -> str:
    """The kind of a built or loaded index."""
    index = faiss.downcast_index(index) if type(index) is faiss.Index else index
    if isinstance(index, faiss.IndexRefine):
        return index_kind(faiss.downcast_index(index.base_index))
    if type(index).__name__ in ("IndexReplicas", "IndexShards"):
        return index_kind(faiss.downcast_index(index.at(0)))
    name = type(index).__name__
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVFPQ) or name == "GpuIndexIVFPQ":
        return "ivfpq"
    if isinstance(index, faiss.IndexIVF) or name.startswith("GpuIndexIVF"):
        return "ivf"
    return "flat"


def index_bytes(index) -> int:
    """Size of the index serialised (what it holds in memory, up to small overheads)."""
    return int(len(faiss.serialize_index(to_cpu(index))))


def set_nprobe(index, nprobe: int) -> None:
    """Lists visited per query by an ivf / ivfpq index (wrapped in a refine or not, CPU or GPU)."""
    if isinstance(index, faiss.IndexRefine):
        return set_nprobe(faiss.downcast_index(index.base_index), nprobe)
    if is_on_gpu(index):
        faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", nprobe)
        return None
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        raise MlclipError("nprobe is a setting of ivf and ivfpq indexes")
    ivf.nprobe = min(nprobe, ivf.nlist)
    return None


def _as_config(config: IndexConfig | str) -> IndexConfig:
    return (config if isinstance(config, IndexConfig) else IndexConfig(kind=config)).check()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------- files


def keys_path(path: str | Path) -> Path:
    """Where the keys of index file `path` live: `NAME.faiss` -> `NAME.keys.parquet`."""
    path = Path(path)
    stem = path.name[: -len(".faiss")] if path.name.endswith(".faiss") else path.name
    return path.with_name(f"{stem}.keys.parquet")


class LoadedIndex(NamedTuple):
    index: object  # a FAISS index
    keys: list[str]  # keys[i]: the key of FAISS id i
    info: dict  # what save_index recorded: kind, dim, rows, config, source, ...


def save_index(index, path: str | Path, keys: Sequence[str] | None = None, info: dict | None = None) -> Path:
    """Write `index` to `path` (faiss.write_index, atomically; a GPU index is copied to the CPU first)
    and its keys beside it (`keys_path`), with `info` and what is needed to check the pair on load.
    `keys`: one per FAISS id (None: "0", "1", ...). Returns the index path."""
    path = Path(path)
    keys = [str(i) for i in range(index.ntotal)] if keys is None else [str(k) for k in keys]
    if len(keys) != index.ntotal:
        raise MlclipError(f"{len(keys)} keys for an index of {index.ntotal} vectors")
    cpu = to_cpu(index)
    with atomic_path(path) as tmp:
        faiss.write_index(cpu, str(tmp))
        size = tmp.stat().st_size
    meta = {"kind": index_kind(cpu), "dim": index.d, "rows": index.ntotal, "index_file": path.name,
            "index_bytes": size, "info": json.dumps(info or {}, sort_keys=True)}
    write_table(pa.table({"key": keys}), keys_path(path), INDEX_KEYS, metadata=meta)
    return path


def load_index(path: str | Path, use_gpu: bool | None = None, nprobe: int | None = None,
               mmap: bool = False) -> LoadedIndex:
    """An index saved by `save_index`, with its keys, placed like a built one (the GPU when there is
    one, except hnsw). `nprobe`: override the saved one. `mmap`: map the file instead of reading it
    (CPU only: an index larger than memory stays on disk)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such index file (build one with `mlclip index build`)")
    kpath = keys_path(path)
    if not kpath.is_file():
        raise ArtifactError(f"{path}: its keys file {kpath.name} is missing (rebuild the index)")
    meta = read_metadata(kpath)
    if meta.get("artifact") != INDEX_KEYS.name:
        raise ArtifactError(f"{kpath}: not the keys file of an mlclip index")
    if str(path.stat().st_size) != meta.get("index_bytes"):
        raise ArtifactError(f"{path}: does not match its keys file {kpath.name} (written by another build; rebuild)")
    try:
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(path), flags)
    except RuntimeError as exc:
        raise ArtifactError(f"{path}: not a readable FAISS index ({_first_line(exc)})") from None
    keys = read_table(kpath, INDEX_KEYS).column("key").to_pylist()
    if len(keys) != index.ntotal:
        raise ArtifactError(f"{path}: {index.ntotal} vectors but {len(keys)} keys in {kpath.name}; rebuild")
    kind = index_kind(index)
    if nprobe is not None:
        set_nprobe(index, nprobe)
    if mmap and use_gpu:
        raise MlclipError("a memory-mapped index stays on the CPU: load it without mmap for the GPU")
    if not mmap and wants_gpu(kind, use_gpu):
        index = _placed(index, kind, True)
    try:
        info = json.loads(meta.get("info", "{}"))
    except ValueError:
        info = {}
    return LoadedIndex(index, keys, {"kind": kind, "dim": index.d, "rows": index.ntotal} | info)


# ---------------------------------------------------------------- a feature folder -> an index file


@dataclass
class FeatureIndexResult:
    path: Path
    keys_path: Path
    kind: str
    rows: int
    dim: int
    shards: int
    config: IndexConfig  # resolved: nlist, pq_m and train_size filled in
    index_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)  # train, add, save
    on_gpu: bool = False
    notes: list[str] = field(default_factory=list)  # training warnings


def build_feature_index(folder: str | Path, out: str | Path, config: IndexConfig | str = "flat",
                        part: str = "image",
                        progress: Callable[[str, int, int], None] | None = None) -> FeatureIndexResult:
    """Index one part of a feature folder (`mlclip features`) shard by shard and save it with its keys
    (the part's keys: image_id or sample_id). The training sample is drawn over all shards; rows are
    L2-normalised again (float16 storage leaves norms a little off 1)."""
    from mlclip_cli.feature_shards import FeatureShards

    config = _as_config(config)
    shards = FeatureShards(Path(folder), part)
    paths = shards.paths
    total = shards.rows
    if not total:
        raise ArtifactError(f"{folder}: the '{part}' features have no rows")
    started = time.perf_counter()
    first_keys, first = next(shards.blocks())
    dim = first.shape[1]
    config = config.resolved(total, dim)
    if config.kind in TRAINED_KINDS:
        sample = _normalised(shards.sample(config.train_size, config.seed))
    else:
        sample = _normalised(first[:1])
    del first, first_keys
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingWarning)
        index = train_index(sample, config, total=total)
    del sample
    trained = time.perf_counter()
    keys: list[str] = []

    def blocks():
        for block_keys, matrix in shards.blocks():
            keys.extend(block_keys)
            yield _normalised(matrix)

    index = build_index_sharded_into(index, blocks(), total, progress)
    added = time.perf_counter()
    info = {"features": str(Path(folder).resolve()), "part": part, "identity": shards.first_identity(),
            "config": asdict(config)}
    save_index(index, out, keys, info)
    saved = time.perf_counter()
    return FeatureIndexResult(
        path=Path(out), keys_path=keys_path(out), kind=config.kind, rows=index.ntotal, dim=dim, shards=len(paths),
        config=config, index_bytes=Path(out).stat().st_size,
        seconds={"train": trained - started, "add": added - trained, "save": saved - added},
        on_gpu=is_on_gpu(index), notes=[str(w.message) for w in caught if issubclass(w.category, TrainingWarning)])


def build_index_sharded_into(index, shards: Iterable[np.ndarray], total: int | None = None,
                             progress: Callable[[str, int, int], None] | None = None):
    """Add shards to an index already trained (`train_index`), one at a time."""
    added = 0
    for block in shards:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if not len(block):
            continue
        if block.ndim != 2 or block.shape[1] != index.d:
            raise MlclipError(f"a shard of shape {block.shape} for an index of dimension {index.d}")
        index.add(block)
        added += len(block)
        if progress:
            progress("index", added, max(total or 0, added))
    if not added:
        raise MlclipError("no vectors to index (every shard was empty)")
    return index


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
