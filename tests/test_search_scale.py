"""FAISS at scale: index kinds and their recall, sharded builds, index files, GPU placement, `mlclip index build`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mlclip_cli import search as S
from mlclip_cli.artifacts import ArtifactError, features_spec, write_table
from mlclip_cli.errors import MlclipError
from mlclip_cli.feature_shards import FeatureShards
from tests.conftest import assert_one_line_error

N, DIM, CENTRES, QUERIES = 20_000, 64, 400, 200


def clustered(n: int, dim: int, centres: int, seed: int = 0) -> np.ndarray:
    """Points = a random centre on the unit sphere + Gaussian noise (norm ~0.5), normalised."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[rng.integers(0, centres, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def noisy_copies(x: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = x[rng.choice(len(x), count, replace=False)]
    q = q + 0.3 * rng.standard_normal(q.shape).astype(np.float32) / np.sqrt(x.shape[1])
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    gallery = clustered(N, DIM, CENTRES)
    queries = noisy_copies(gallery, QUERIES)
    exact = S.search(S.build_index(gallery, "flat"), queries, 10)
    return gallery, queries, exact


@pytest.fixture(scope="module")
def ivfpq_index(data):
    return S.build_index(data[0], S.IndexConfig("ivfpq"))


@pytest.fixture(scope="module")
def refined_index(data):
    return S.build_index(data[0], S.IndexConfig("ivfpq", refine=True, refine_factor=4, train_size=10_000))


# recall@10 vs exact search (share of the exact top 10 found), on 20k x 64 clustered vectors
THRESHOLDS = {"ivf": 0.95, "hnsw": 0.95, "ivfpq": 0.60, "ivfpq+refine": 0.95}


@pytest.mark.parametrize("name", list(THRESHOLDS))
def test_recall_against_exact(data, ivfpq_index, refined_index, name):
    gallery, queries, exact = data
    built = {"ivfpq": ivfpq_index, "ivfpq+refine": refined_index}
    index = built[name] if name in built else S.build_index(gallery, S.IndexConfig(name))
    assert S.index_kind(index) == name.split("+")[0]
    found = S.search(index, queries, 10)
    assert found.shape == (QUERIES, 10)
    assert S.recall_vs_exact(found, exact, 10) >= THRESHOLDS[name]
    assert S.recall_vs_exact(found, exact, 1) >= THRESHOLDS[name]


def test_refine_beats_plain_ivfpq_and_ivfpq_is_small(data, ivfpq_index, refined_index):
    gallery, queries, exact = data
    refined = refined_index
    assert isinstance(refined, S.faiss.IndexRefine) and refined.k_factor == 4
    plain = S.recall_vs_exact(S.search(ivfpq_index, queries, 10), exact, 10)
    assert S.recall_vs_exact(S.search(refined, queries, 10), exact, 10) > plain
    flat_bytes = S.index_bytes(S.build_index(gallery, "flat"))
    assert S.index_bytes(ivfpq_index) < flat_bytes / 4  # 16 bytes of code a vector against 256
    assert S.index_bytes(refined) > flat_bytes


def test_config_defaults_and_checks():
    assert [S.default_pq_m(d) for d in (32, 64, 128, 256, 512)] == [8, 16, 32, 64, 64]
    assert S.default_pq_m(100) == 25  # no GPU-compatible split: the most sub-quantisers with >= 4 dims
    assert S.default_nlist(1_000_000) == 4000 and S.default_nlist(1000) == 25
    resolved = S.IndexConfig("ivfpq").resolved(1_000_000, 128)
    assert (resolved.nlist, resolved.pq_m, resolved.train_size) == (4000, 32, 256_000)
    assert S.IndexConfig("ivfpq").resolved(2000, 64).train_size == 2000
    with pytest.raises(MlclipError, match="unknown index 'annoy'"):
        S.build_index(np.eye(4, dtype=np.float32), "annoy")
    with pytest.raises(MlclipError, match="does not divide"):
        S.IndexConfig("ivfpq", pq_m=5).resolved(1000, 64)
    with pytest.raises(MlclipError, match="refine"):
        S.IndexConfig("hnsw", refine=True).check()
    with pytest.raises(MlclipError, match="training vectors for 100 lists"):
        S.train_index(np.eye(8, dtype=np.float32), S.IndexConfig("ivf", nlist=100))


def test_old_signature_still_works(data):
    gallery, queries, exact = data
    index = S.build_index(gallery, "ivf", None, 8)
    assert S.faiss.extract_index_ivf(index).nprobe == 8
    assert S.recall_vs_exact(S.search(index, queries, 10), exact, 10) > 0.8


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_sharded_build_equals_one_shot(data, kind):
    gallery, queries, _ = data
    config = S.IndexConfig(kind, train_size=10_000)
    sample = gallery[np.random.default_rng(5).permutation(N)[:10_000]]
    one_shot = S.build_index(gallery, config, train_sample=sample)
    seen = []
    sharded = S.build_index_sharded(np.array_split(gallery, 7), config, train_sample=sample, total=N,
                                    progress=lambda name, done, total: seen.append((done, total)))
    assert sharded.ntotal == one_shot.ntotal == N
    assert seen[-1] == (N, N) and len(seen) == 7
    d1, i1 = one_shot.search(queries, 10)
    d2, i2 = sharded.search(queries, 10)
    assert np.array_equal(i1, i2) and np.array_equal(d1, d2)


def test_sharded_build_trains_on_the_first_shard_without_a_sample(data):
    gallery, queries, exact = data
    shards = iter(np.array_split(gallery, 4))
    index = S.build_index_sharded(shards, S.IndexConfig("ivf"), total=N)
    assert index.ntotal == N and S.faiss.extract_index_ivf(index).nlist == S.default_nlist(N)
    assert S.recall_vs_exact(S.search(index, queries, 10), exact, 10) > 0.9
    with pytest.raises(MlclipError, match="total rows"):
        S.build_index_sharded(np.array_split(gallery, 4), "ivf")
    with pytest.raises(MlclipError, match="no shards"):
        S.build_index_sharded([], "flat")


def test_save_load_round_trip(data, ivfpq_index, tmp_path):
    gallery, queries, _ = data
    keys = [f"image-{i}" for i in range(N)]
    path = S.save_index(ivfpq_index, tmp_path / "gallery.faiss", keys, {"part": "image"})
    assert S.keys_path(path).name == "gallery.keys.parquet" and S.keys_path(path).is_file()
    loaded = S.load_index(path)
    assert loaded.keys == keys
    assert loaded.info == {"kind": "ivfpq", "dim": DIM, "rows": N, "part": "image"}
    assert np.array_equal(S.search(loaded.index, queries, 10), S.search(ivfpq_index, queries, 10))
    wider = S.load_index(path, nprobe=64).index
    assert S.faiss.extract_index_ivf(wider).nprobe == 64
    mapped = S.load_index(path, mmap=True).index
    assert np.array_equal(S.search(mapped, queries, 10), S.search(ivfpq_index, queries, 10))

    hnsw = S.build_index(gallery[:2000], S.IndexConfig("hnsw", ef_search=64))
    other = S.save_index(hnsw, tmp_path / "small.faiss")
    back = S.load_index(other)
    assert back.keys[:3] == ["0", "1", "2"] and back.info["kind"] == "hnsw" and back.index.hnsw.efSearch == 64
    with pytest.raises(MlclipError, match="keys for an index"):
        S.save_index(hnsw, tmp_path / "bad.faiss", ["a"])
    S.keys_path(path).replace(S.keys_path(other))  # another build's keys beside it
    with pytest.raises(ArtifactError, match="does not match its keys"):
        S.load_index(other)
    with pytest.raises(ArtifactError, match="keys file gallery.keys.parquet is missing"):
        S.load_index(path)


class _Options:
    useFloat16 = False


def test_gpu_decision_without_a_gpu(monkeypatch):
    monkeypatch.setattr(S, "gpu_available", lambda: False)
    assert [S.wants_gpu(kind, None) for kind in S.INDEX_KINDS] == [False] * 4
    assert not S.wants_gpu("flat", False)
    with pytest.raises(MlclipError, match="no GPU"):
        S.wants_gpu("ivf", True)
    assert not S.wants_gpu("hnsw", True)  # hnsw stays on the CPU whatever is asked
    monkeypatch.setattr(S, "gpu_available", lambda: True)
    assert [S.wants_gpu(kind, None) for kind in S.INDEX_KINDS] == [True, True, True, False]
    assert not S.wants_gpu("ivfpq", False)


@pytest.mark.parametrize("ngpu", [1, 2])
def test_gpu_placement_is_asked_for_flat_ivf_ivfpq_only(monkeypatch, ngpu):
    moved = []

    def one(resources, device, index, options=None):
        moved.append((type(index).__name__, device, options.useFloat16 if options else None))
        return index

    def every(index, co=None, ngpu=-1):
        moved.append((type(index).__name__, "all", co.useFloat16 if co else None))
        return index

    monkeypatch.setattr(S, "gpu_available", lambda: True)
    monkeypatch.setattr(S, "_GPU_RESOURCES", [])
    monkeypatch.setattr(S.faiss, "get_num_gpus", lambda: ngpu)
    for name in ("StandardGpuResources", "GpuClonerOptions", "GpuMultipleClonerOptions"):
        monkeypatch.setattr(S.faiss, name, _Options, raising=False)
    monkeypatch.setattr(S.faiss, "index_cpu_to_gpu", one, raising=False)
    monkeypatch.setattr(S.faiss, "index_cpu_to_all_gpus", every)
    gallery = clustered(12_000, 32, 50)
    where = 0 if ngpu == 1 else "all"
    for kind in S.INDEX_KINDS:
        moved.clear()
        index = S.build_index(gallery, kind)
        assert index.ntotal == len(gallery)
        if kind == "hnsw":
            assert moved == []
        elif kind == "flat":
            assert moved == [("IndexFlatIP", where, None)]
        else:  # the k-means assignment index, then the trained index; ivfpq with float16 lookup tables
            cls = "IndexIVFFlat" if kind == "ivf" else "IndexIVFPQ"
            assert moved == [("IndexFlatIP", where, None), (cls, where, kind == "ivfpq" or None)]
    moved.clear()
    refined = S.build_index(gallery, S.IndexConfig("ivfpq", refine=True))
    assert moved[-1][0] == "IndexIVFPQ" and isinstance(refined, S.faiss.IndexRefine)  # raw vectors stay on the host


# ---------------------------------------------------------------- feature folders and the CLI


def write_features(folder, shards: int = 3, rows: int = 1500, dim: int = 32, dtype: str = "float16"):
    """A feature folder as `mlclip features` writes it: image-0000N.parquet with key + embedding."""
    gallery = clustered(shards * rows, dim, 40, seed=3)
    keys = [f"img-{i:05d}" for i in range(len(gallery))]
    for s in range(shards):
        part = slice(s * rows, (s + 1) * rows)
        table = pa.table({"key": keys[part], "embedding": list(gallery[part].astype(dtype))})
        write_table(table, folder / f"image-{s:05d}.parquet", features_spec(dtype),
                    metadata={"kind": "image", "identity": "test-clip", "dtype": dtype, "normalized": "true"})
    return keys, gallery


def test_feature_shards_stream_and_sample(tmp_path):
    keys, gallery = write_features(tmp_path, dtype="float32")
    shards = FeatureShards(tmp_path, "image")
    assert shards.rows == len(keys) and len(shards.paths) == 3
    blocks = list(shards.blocks())
    assert [k for block_keys, _ in blocks for k in block_keys] == keys
    assert np.array_equal(np.concatenate([m for _, m in blocks]), gallery)
    sample = shards.sample(1000, seed=0)
    assert sample.shape == (1000, 32)
    rows = {row.tobytes() for row in gallery}
    assert all(row.tobytes() in rows for row in sample)
    assert shards.sample(10**6).shape == gallery.shape
    with pytest.raises(ArtifactError, match="no 'text-en' features"):
        FeatureShards(tmp_path, "text-en").rows


def test_cli_index_build_and_reuse(run_cli, tmp_path):
    folder = tmp_path / "features"
    keys, gallery = write_features(folder)
    out_file = tmp_path / "out" / "gallery.faiss"
    result = run_cli("index", "build", "--features", str(folder), "--kind", "ivf", "--out", str(out_file),
                     "--nlist", "20", "--nprobe", "4")
    assert result.code == 0, result.err
    assert "ivf index of image" in result.out and "4,500" in result.out and "nlist" in result.out
    loaded = S.load_index(out_file)
    assert loaded.keys == keys and loaded.info["kind"] == "ivf" and loaded.info["identity"] == "test-clip"
    assert loaded.info["config"]["nlist"] == 20 and S.faiss.extract_index_ivf(loaded.index).nprobe == 4
    top = S.search(loaded.index, gallery[:50], 1)[:, 0]
    assert (top == np.arange(50)).mean() > 0.9

    result = run_cli("index", "build", "--features", str(folder), "--kind", "ivfpq", "--pq-m", "8",
                     "--out", str(tmp_path / "pq.faiss"))
    assert result.code == 0, result.err
    assert "8 x 8" in result.out and "note: ivfpq: 4500 training vectors" in result.out
    assert S.load_index(tmp_path / "pq.faiss").info["kind"] == "ivfpq"


@pytest.mark.parametrize("args, fragments", [
    (["--kind", "annoy"], ["unknown index kind 'annoy'", "ivfpq"]),
    (["--part", "text-de"], ["no 'text-de' features"]),
    (["--kind", "ivfpq", "--pq-m", "5"], ["pq_m 5 does not divide the dimension 32"]),
    (["--kind", "hnsw", "--refine"], ["refine"]),
])
def test_cli_index_build_errors(run_cli, tmp_path, args, fragments):
    folder = tmp_path / "features"
    write_features(folder, shards=1, rows=300)
    result = run_cli("index", "build", "--features", str(folder), "--out", str(tmp_path / "x.faiss"), *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "x.faiss").exists()


def test_cli_index_build_missing_folder_and_bench_index_choice(run_cli, tmp_path):
    result = run_cli("index", "build", "--features", str(tmp_path / "nope"), "--out", str(tmp_path / "x.faiss"))
    assert_one_line_error(result, "nope: no such feature folder")
    result = run_cli("bench", "xtd", "--index", "annoy")
    assert_one_line_error(result, "--index", "ivfpq", "annoy")
