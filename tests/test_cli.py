from pathlib import Path

from mlclip_cli import __version__

from test_xtd10 import write_xtd10

from conftest import assert_one_line_error as _assert_one_line_error


def test_version(run_cli):
    result = run_cli("--version")
    assert result.code == 0 and __version__ in result.out


def test_prepare_help_lists_all_data_sets(run_cli):
    result = run_cli("prepare", "--help")
    assert result.code == 0
    for name in ("xtd10", "multi30k", "xm3600", "coco", "xflickrco", "cc3m", "cc300k"):
        assert f"{name}:" in result.out


def test_prepare_writes_to_the_workspace(run_cli, tmp_path):
    root = write_xtd10(tmp_path / "xtd")
    result = run_cli("prepare", "xtd10", "--root", str(root))
    assert result.code == 0, result.err
    assert (tmp_path / "ws" / "manifests" / "xtd10.parquet").is_file()
    assert (tmp_path / "ws" / "manifests" / "xtd10.summary.json").is_file()


def test_bad_input_gives_one_line_errors(run_cli, tmp_path):
    _assert_one_line_error(run_cli("prepare", "xtd10", "--root", str(tmp_path / "nope")), "does not exist")
    _assert_one_line_error(run_cli("prepare", "nosuch", "--root", str(tmp_path)), "unknown data set 'nosuch'")
    _assert_one_line_error(run_cli("prepare", "xtd10", "--root", str(tmp_path)), "does not look like xtd10")
    _assert_one_line_error(run_cli("prepare", "xtd10"), "--root")
    root = write_xtd10(tmp_path / "xtd", overrides={"tr": ["a"]})
    _assert_one_line_error(run_cli("prepare", "xtd10", "--root", str(root)), "line counts differ")
    assert not Path(tmp_path / "ws" / "manifests" / "xtd10.parquet").exists()
    root = write_xtd10(tmp_path / "xtd2")
    _assert_one_line_error(run_cli("prepare", "xtd10", "--root", str(root), "--langs", "en,xx"), "no language xx")
    _assert_one_line_error(run_cli("prepare", "cc3m", "--root", str(root), "--translation", "bad"), "LANG=FILE")


def test_every_command_help_has_an_example(run_cli):
    commands = [("prepare",), ("pretrain",), ("features",), ("embed",), ("demo",), ("bench", "xtd"),
                ("bench", "coco"), ("bench", "report"), ("train",), ("extend",), ("packs", "list"), ("packs", "show"),
                ("packs", "remove"), ("continual",)]
    for command in commands:
        result = run_cli(*command, "--help")
        assert result.code == 0, command
        assert "Example" in result.out, f"mlclip {' '.join(command)} --help has no example"


def test_debug_shows_the_traceback(run_cli, tmp_path):
    import pytest

    from mlclip_cli.errors import DatasetError

    with pytest.raises(DatasetError):
        run_cli("--debug", "prepare", "xtd10", "--root", str(tmp_path / "nope"))
