"""`prepare multi30k` on a root that holds only some splits, and `--splits`.

Fixtures are written in Multi30K's real layout (raw/<stem>.<lang>, image_splits/<stem>.txt) by
test_loaders.write_multi30k, then cut down to what a partial copy holds. The last test reads the real
shared copy in place (train and val only), when this machine has it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.errors import DatasetError

from test_loaders import M30K_NAMES, prepare, write_multi30k

from conftest import assert_one_line_error as _assert_one_line_error

SHARED_MULTI30K = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"


def drop_split(root: Path, stem: str, keep: tuple[str, ...] = ()) -> None:
    """Remove a split's files (plain or gzipped), except the relative paths in `keep`."""
    for path in [*root.glob(f"raw/{stem}.*"), root / "image_splits" / f"{stem}.txt"]:
        rel = path.relative_to(root).as_posix().removesuffix(".gz")
        if path.exists() and rel not in keep:
            path.unlink()


def train_val_root(tmp_path: Path) -> Path:
    """A copy like the shared one: train and val, no test_2016_flickr at all."""
    root = write_multi30k(tmp_path / "task1")
    drop_split(root, "test_2016_flickr")
    return root


def test_partial_root_prepares_complete_splits_and_reports_the_absent_one(tmp_path):
    root = train_val_root(tmp_path)
    result, table = prepare("multi30k", tmp_path, root=root)

    assert set(table.split) == {"train", "val"}
    assert result.summary["rows_per_language_split"]["en"] == {"train": 3, "val": 2}
    splits = result.summary["splits"]
    assert splits["prepared"] == ["train", "val"] and splits["not_chosen"] == []
    assert splits["absent"] == {
        "test": {"missing": ["image_splits/test_2016_flickr.txt", "raw/test_2016_flickr.en"], "present": []}
    }
    assert not any("test" in rel for rel in result.summary["files"])  # only the prepared splits are counted
    assert not any("incomplete" in warning for warning in result.summary["warnings"])  # absent, not cut short
    on_disk = json.loads(result.summary_path.read_text(encoding="utf-8"))
    assert on_disk["splits"] == splits


def test_partially_present_split_counts_as_absent_and_says_what_is_missing(tmp_path):
    root = write_multi30k(tmp_path / "task1")
    drop_split(root, "test_2016_flickr", keep=("raw/test_2016_flickr.de", "raw/test_2016_flickr.en"))
    result, table = prepare("multi30k", tmp_path, root=root)

    assert set(table.split) == {"train", "val"}
    absent = result.summary["splits"]["absent"]["test"]
    assert absent == {
        "missing": ["image_splits/test_2016_flickr.txt"],
        "present": ["raw/test_2016_flickr.en", "raw/test_2016_flickr.de"],
    }
    (warning,) = [w for w in result.summary["warnings"] if "incomplete" in w]
    assert "multi30k test" in warning and "missing image_splits/test_2016_flickr.txt" in warning

    with pytest.raises(DatasetError, match=r"split test is absent .*missing image_splits/test_2016_flickr.txt.*present: train, val"):
        prepare("multi30k", tmp_path, root=root, splits=("test",))


def test_splits_option_chooses_splits(tmp_path):
    root = write_multi30k(tmp_path / "task1")  # all three splits complete
    result, table = prepare("multi30k", tmp_path, root=root, splits=("val", "test_2016_flickr"))  # upstream stem works too
    assert set(table.split) == {"val", "test"}
    assert len(table[table.language == "en"]) == len(M30K_NAMES["val"]) + len(M30K_NAMES["test_2016_flickr"])
    assert result.summary["splits"] == {"prepared": ["val", "test"], "not_chosen": ["train"], "absent": {}}
    assert not any(rel.startswith(("raw/train", "image_splits/train")) for rel in result.summary["files"])

    partial = train_val_root(tmp_path / "partial")
    _, val_only = prepare("multi30k", tmp_path / "partial", root=partial, splits=("val",))
    assert set(val_only.split) == {"val"} and len(val_only) == 4  # val has en and de, 2 lines each


def test_unknown_or_absent_split_is_an_error_naming_the_present_ones(tmp_path):
    root = train_val_root(tmp_path)
    with pytest.raises(DatasetError, match=r"no split 'dev' \(it has train, val, test; present under .*: train, val\)"):
        prepare("multi30k", tmp_path, root=root, splits=("val", "dev"))
    with pytest.raises(DatasetError, match="split test is absent .*; present: train, val"):
        prepare("multi30k", tmp_path, root=root, splits=("test",))
    with pytest.raises(DatasetError, match="xtd10 has no choice of splits"):
        prepare("xtd10", tmp_path, root=root, splits=("val",))
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob("*.summary.json"))  # nothing written


def test_cli_refuses_a_root_with_no_complete_split(run_cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "m.parquet"
    _assert_one_line_error(run_cli("prepare", "multi30k", "--root", str(empty), "--out", str(out)),
                           "does not look like multi30k: no complete split", "image_splits/train.txt")
    assert not out.exists() and not out.with_suffix(".summary.json").exists()

    half = write_multi30k(tmp_path / "half")  # every split lacks its English file
    for stem in M30K_NAMES:
        drop_split(half, stem, keep=(f"image_splits/{stem}.txt", f"raw/{stem}.de"))
    _assert_one_line_error(run_cli("prepare", "multi30k", "--root", str(half), "--out", str(out)),
                           "no complete split", "val: missing raw/val.en; has image_splits/val.txt, raw/val.de")
    assert not out.exists()


def test_cli_splits_option_and_its_errors(run_cli, tmp_path):
    root = train_val_root(tmp_path)
    out = tmp_path / "m.parquet"
    result = run_cli("prepare", "multi30k", "--root", str(root), "--out", str(out))
    assert result.code == 0, result.err
    assert "splits: train, val prepared" in result.out
    assert "test: absent, missing image_splits/test_2016_flickr.txt" in result.out

    result = run_cli("prepare", "multi30k", "--root", str(root), "--out", str(out), "--splits", "val")
    assert result.code == 0, result.err
    assert "splits: val prepared; train present, not chosen" in result.out
    assert set(read_manifest(out).to_pandas().split) == {"val"}

    _assert_one_line_error(run_cli("prepare", "multi30k", "--root", str(root), "--splits", "train,foo"),
                           "no split 'foo'", "present under", "train, val")
    _assert_one_line_error(run_cli("prepare", "multi30k", "--root", str(root), "--splits", "test"),
                           "split test is absent", "present: train, val")


@pytest.mark.skipif(not (SHARED_MULTI30K / "raw" / "val.en").is_file(), reason="no shared Multi30K copy here")
def test_shared_copy_val_split_in_place(run_cli, tmp_path):
    out = tmp_path / "multi30k-val.parquet"
    result = run_cli("prepare", "multi30k", "--root", str(SHARED_MULTI30K), "--out", str(out), "--splits", "val")
    assert result.code == 0, result.err
    assert "splits: val prepared" in result.out

    table = read_manifest(out).to_pandas()
    assert set(table.split) == {"val"}
    counts = table.groupby("language").size().to_dict()
    assert counts == {"cs": 1014, "de": 1014, "en": 1014, "fr": 1014}
    # each pair_id joins one caption per language, all of the same image
    pairs = table.groupby("pair_id").agg(languages=("language", lambda s: tuple(sorted(s))), images=("image_id", "nunique"))
    assert len(pairs) == 1014
    assert (pairs.languages == ("cs", "de", "en", "fr")).all() and (pairs.images == 1).all()

    summary = json.loads(out.with_suffix(".summary.json").read_text(encoding="utf-8"))
    assert summary["splits"]["prepared"] == ["val"] and "train" in summary["splits"]["not_chosen"]
    assert set(summary["files"]) == {"image_splits/val.txt", "raw/val.en", "raw/val.de", "raw/val.fr", "raw/val.cs"}
