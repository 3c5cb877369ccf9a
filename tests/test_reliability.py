"""One writer per folder, and interrupts that save and say how to go on."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import Killed, assert_one_line_error, kill_at, world_with_micro_clip
from mlclip_cli.core import extension as folder_format
from mlclip_cli.locks import FolderBusy, lock_path, writer_lock
from mlclip_cli.mla.method import MlaConfig, train_mla
from mlclip_cli.mla.train import LoopConfig, StageConfig
from mlclip_cli.training.interrupts import Interrupted

LOOP = LoopConfig(stages="nlt,le", nlt=StageConfig(12, 5e-3, 0.1), le=StageConfig(4, 1e-3, 0.1), batch_size=16,
                  eval_every=1000, checkpoint_seconds=None)
HOLDER = ("import sys\nfrom mlclip_cli.locks import writer_lock\n"
          "with writer_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return world_with_micro_clip(tmp_path_factory.mktemp("reliable"), 48, 12, 10)


def _config(world, out, **changes):
    return MlaConfig(manifest=world["manifest"], out=out, languages=("de",), features_root=world["root"] / "features",
                     model=world["model"], vocab_size=300, loop=changes.pop("loop", LOOP), **changes)


@pytest.fixture
def holder():
    """Another process holding a folder's lock until it is told to stop (or killed)."""
    started = []

    def hold(folder):
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "held"
        started.append(process)
        return process

    yield hold
    for process in started:
        process.kill()
        process.wait()


def test_a_second_writer_is_refused_at_once_naming_the_first(world, tmp_path, holder, run_cli):
    out = tmp_path / "ext"
    first = holder(out)
    result = run_cli("train", "--method", "mla", "--langs", "de", "--out", str(out), "--data", str(world["manifest"]),
                     "--model", world["model"], "--nlt-steps", "2", "--le-steps", "1", "--vocab-size", "300")
    assert_one_line_error(result, str(out), "being written by another mlclip process", f"pid {first.pid}")
    assert not out.exists()  # refused before any work
    with pytest.raises(FolderBusy, match=f"pid {first.pid}"):
        train_mla(_config(world, out))


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_note(tmp_path, holder, caplog):
    folder = tmp_path / "features"
    first = holder(folder)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert lock_path(folder).read_text()  # its record is still there: it never released
    with caplog.at_level(logging.WARNING, logger="mlclip_cli"), writer_lock(folder):
        pass
    assert f"took over the lock of a process that is gone (pid {first.pid}" in caplog.text
    assert not lock_path(folder).exists()  # released cleanly: removed


def test_locks_nest_within_one_process_and_refuse_nobody_after_release(tmp_path):
    with writer_lock(tmp_path / "a"), writer_lock(tmp_path / "a"), writer_lock(tmp_path / "b"):
        assert lock_path(tmp_path / "a").exists()
    assert not lock_path(tmp_path / "a").exists() and not lock_path(tmp_path / "b").exists()


def test_a_bad_out_is_refused_before_any_work_naming_the_path(world, tmp_path, run_cli):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    common = ("--data", str(world["manifest"]), "--model", world["model"])
    features = world["root"] / "features"
    before = sorted(features.rglob("*")) if features.exists() else []
    result = run_cli("train", "--method", "mla", "--langs", "de", "--out", str(blocker), *common)
    assert_one_line_error(result, f"{blocker}: the extension folder is a file, not a folder")
    result = run_cli("continual", "--order", "en,de", "--out", str(blocker / "run"), *common)
    assert_one_line_error(result, "the continual run cannot be created", f"{blocker} is a file")
    result = run_cli("features", str(world["manifest"]), "--model", world["model"], "--out", str(blocker / "f"))
    assert_one_line_error(result, "the feature folder cannot be created")
    result = run_cli("prepare", "world", "--root", str(tmp_path / "w"), "--out", str(tmp_path))
    assert_one_line_error(result, "the manifest is a folder, not a file")
    assert blocker.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert (sorted(features.rglob("*")) if features.exists() else []) == before  # no feature work was done


def test_ctrl_c_saves_between_steps_and_resume_ends_with_the_same_weights(world, tmp_path, caplog):
    straight = train_mla(_config(world, tmp_path / "straight"))

    def interrupt(stage, step, total, loss):
        if stage == "nlt" and step == 7:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the step finishes, the next one does not start

    with pytest.raises(Interrupted, match=r"interrupted \(SIGINT\) at step 7 of stage 1 of 2 \(nlt\).*--resume"):
        train_mla(_config(world, tmp_path / "cut"), on_step=interrupt)
    assert not folder_format.is_extension(tmp_path / "cut")
    with caplog.at_level(logging.INFO, logger="mlclip_cli"):
        resumed = train_mla(_config(world, tmp_path / "cut", resume=True))
    assert resumed.loop.resumed_from == "stage 1 of 2 (nlt) at step 7" and "resuming stage 1 of 2 (nlt) at step 7" in caplog.text
    for name in ("shared/embedding.safetensors", "packs/de.safetensors"):
        assert (straight.out / name).read_bytes() == (tmp_path / "cut" / name).read_bytes(), name


def test_resume_with_nothing_to_resume_says_so(world, tmp_path, run_cli):
    result = run_cli("train", "--method", "mla", "--langs", "de", "--out", str(tmp_path / "fresh"), "--resume",
                     "--data", str(world["manifest"]), "--model", world["model"], "--stages", "nlt", "--nlt-steps", "2",
                     "--batch-size", "16", "--vocab-size", "300")
    assert result.code == 0 and "held no unfinished run to resume; it trained from the beginning" in " ".join(result.err.split())


def test_checkpoints_by_time_save_state_that_resumes(world, tmp_path):
    # checkpoint_seconds=0: a save after every step; a step that raises leaves the previous one resumable
    loop = replace(LOOP, stages="nlt", checkpoint_seconds=0.0)
    with pytest.raises(Killed):
        train_mla(_config(world, tmp_path / "timed", loop=loop), on_step=kill_at(5))
    resumed = train_mla(_config(world, tmp_path / "timed", loop=loop, resume=True))
    assert resumed.loop.resumed_from == "stage 1 of 1 (nlt) at step 4"


def test_ctrl_c_in_a_sequence_keeps_the_last_finished_language_and_resume_finishes_it(world, tmp_path):
    from mlclip_cli.continual.runner import ContinualConfig, TaskLoop, run_continual

    def config(out, **changes):
        return ContinualConfig(manifest=world["manifest"], out=out, order=("de", "ru"), features_root=world["root"] / "features",
                               model=world["model"], loop=TaskLoop(steps=4, batch_size=16), **changes)

    straight = run_continual(config(tmp_path / "straight"))

    def interrupt(label, step, total, loss):
        if label.startswith("2/") and step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted, match=r"at step 2 of 4 of task 2/2 ru; the state after 1 finished task\(s\) is kept"):
        run_continual(config(tmp_path / "cut"), on_step=interrupt)
    resumed = run_continual(config(tmp_path / "cut", resume=True))
    assert resumed.resumed_from == 1
    for name in ("weights.safetensors", "usage.safetensors", "tokenizer.json"):
        assert (straight.extension / name).read_bytes() == (resumed.extension / name).read_bytes(), name


def test_a_broken_pack_is_listed_checked_and_removable_while_the_others_stay_usable(world, tmp_path, run_cli):
    from mlclip_cli.loading import load_encoder

    out = tmp_path / "two"
    train_mla(replace(_config(world, out), languages=("de", "ru")))
    (out / "packs" / "ru.json").write_text("{not json", encoding="utf-8")  # a half-written card, say
    listed = run_cli("packs", "list", "--extension", str(out))
    assert listed.code == 0 and "1 broken: see `mlclip packs check`" in listed.out and " ru " in listed.out
    checked = run_cli("packs", "check", "--extension", str(out))
    assert checked.code == 1 and "ru" in checked.out and "not valid JSON" in " ".join(checked.out.split())
    encoder = load_encoder(str(out), "cpu")
    assert encoder.languages == ["de"] and encoder.encode_texts(["ein Hund"], "de").shape[0] == 1
    with pytest.raises(Exception, match="the 'ru' pack is broken"):
        encoder.encode_texts(["собака"], "ru")
    removed = run_cli("packs", "remove", "ru", "--extension", str(out))
    assert removed.code == 0 and not (out / "packs" / "ru.safetensors").exists()
    assert run_cli("packs", "check", "--extension", str(out)).code == 0
    weights = out / "packs" / "de.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])  # a truncated pack behind a good card
    checked = run_cli("packs", "check", "--extension", str(out))
    assert checked.code == 1 and "its hash is not the one in its card" in " ".join(checked.out.split())


def test_the_same_command_twice_writes_the_same_bytes(world, tmp_path, run_cli):
    common = ("--langs", "de", "--data", str(world["manifest"]), "--model", world["model"], "--nlt-steps", "6",
              "--le-steps", "2", "--batch-size", "16", "--vocab-size", "300")
    for name in ("a", "b"):
        assert run_cli("train", "--method", "mla", "--out", str(tmp_path / name), *common).code == 0
    for part in ("shared/tokenizer.json", "shared/embedding.safetensors", "packs/de.safetensors"):
        assert (tmp_path / "a" / part).read_bytes() == (tmp_path / "b" / part).read_bytes(), part


@pytest.mark.parametrize("content, fragment", [
    (b"", "no text in it (empty file)"),
    (b"\n  \n", "no text in it (empty file)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "a binary file (a NUL byte at offset 8)"),
    ("caf\u00e9 au lait\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3)"),
])
def test_embed_names_the_text_file_and_what_is_wrong_with_it(tmp_path, run_cli, content, fragment):
    given = tmp_path / "texts.txt"
    given.write_bytes(content)
    result = run_cli("embed", "--lang", "en", "--text-file", str(given), "--out", str(tmp_path / "e.parquet"))
    assert_one_line_error(result, str(given), fragment)
    assert not (tmp_path / "e.parquet").exists()


@pytest.mark.parametrize("raised, line", [
    (Interrupted("interrupted (SIGTERM) at step 3 of stage 1 of 2 (nlt); its state is saved: rerun with --resume"),
     "error: interrupted (SIGTERM) at step 3 of stage 1 of 2 (nlt); its state is saved: rerun with --resume"),
    (KeyboardInterrupt(), "error: interrupted"),  # outside a training loop: Typer's exit 130, said in one line
])
def test_an_interrupt_is_one_line_and_exit_130(monkeypatch, run_cli, raised, line):
    def stopped(*args, **kwargs):
        raise raised

    monkeypatch.setattr("mlclip_cli.mla.method.train_mla", stopped)  # the method looks it up at each call
    result = run_cli("train", "--method", "mla", "--langs", "de")
    assert result.code == 130 and result.err.strip() == line


# ---------------------------------------------------------------------------------------------------------------
# Bad input, one kind per row: each is refused in one `error:` line that names the argument (or file) and what is
# wrong, with its exit status, and leaves nothing behind: the temporary folder and the world's folder (manifest,
# micro CLIP, feature cache, extension) are byte for byte as they were. docs/reliability.md lists every row.
# {tmp}: the test's folder (afile, good.txt, ... below); {data}: the world's manifest; {model}: its micro CLIP;
# {ext}: an MLA extension of it with a 'de' pack.

BAD_INPUTS = [
    # the workspace
    ("workspace is a file", ["-w", "{tmp}/afile", "packs", "list"], ["-w/--workspace", "the workspace is a file"], 1),
    ("workspace under a file", ["-w", "{tmp}/afile/ws", "bench", "xtd"], ["-w/--workspace", "afile is a file"], 1),
    # train and extend
    ("train --tokenizer missing", ["train", "--langs", "de", "--data", "{data}", "--model", "{model}", "--out", "{tmp}/x",
                                   "--tokenizer", "{tmp}/tok/tokenizer.json"], ["--tokenizer", "tokenizer.json: no such file"], 1),
    ("train --tokenizer folder without one", ["train", "--langs", "de", "--data", "{data}", "--model", "{model}", "--out",
                                              "{tmp}/x", "--tokenizer", "{tmp}/folder"], ["--tokenizer", "a folder without a tokenizer.json"], 1),
    ("train --embedding-init missing", ["train", "--langs", "de", "--data", "{data}", "--model", "{model}", "--out", "{tmp}/x",
                                        "--embedding-init", "{tmp}/rows.safetensors"], ["--embedding-init", "rows.safetensors: no such file"], 1),
    ("train --embedding-init a folder", ["train", "--langs", "de", "--data", "{data}", "--model", "{model}", "--out", "{tmp}/x",
                                         "--embedding-init", "{tmp}/folder"], ["--embedding-init", "a folder, not a safetensors file"], 1),
    ("train --teacher missing folder", ["train", "--langs", "de", "--data", "{data}", "--out", "{tmp}/x",
                                        "--teacher", "./no-such-teacher"], ["--teacher ./no-such-teacher: no such folder"], 1),
    ("train --teacher a file", ["train", "--langs", "de", "--data", "{data}", "--out", "{tmp}/x", "--teacher", "{tmp}/good.txt"],
     ["--teacher", "a file, not a Hugging Face model folder"], 1),
    ("--model missing path", ["train", "--langs", "de", "--data", "{data}", "--model", "{tmp}/no-model", "--out", "{tmp}/x"],
     ["no-model: no such file or folder"], 1),
    ("--model a weights file", ["embed", "--lang", "en", "--text-file", "{tmp}/good.txt", "--model", "{model}/model.safetensors",
                                "--out", "{tmp}/e.parquet"], ["model.safetensors: a file, not a model folder"], 1),
    ("train --langs twice", ["train", "--langs", "de,de", "--data", "{data}", "--model", "{model}", "--out", "{tmp}/x"],
     ["--langs de,de: names 'de' twice"], 1),
    ("train --langs unknown", ["train", "--langs", "de,xx", "--data", "{data}", "--model", "{model}", "--out", "{tmp}/x"],
     ["no train rows in language 'xx'"], 1),
    ("train --data missing", ["train", "--langs", "de", "--data", "{tmp}/none.parquet", "--model", "{model}", "--out", "{tmp}/x"],
     ["none.parquet: no such manifest file"], 1),
    ("train --features missing", ["train", "--langs", "de", "--data", "{data}", "--model", "{model}", "--out", "{tmp}/x",
                                  "--features", "{tmp}/no-features"], ["--features", "no-features: no such folder"], 1),
    ("train --stages unknown", ["train", "--langs", "de", "--data", "{data}", "--model", "{model}", "--out", "{tmp}/x",
                                "--stages", "xyz"], ["unknown --stages 'xyz'"], 1),
    ("train --method unknown", ["train", "--method", "bogus", "--langs", "de"], ["unknown method 'bogus'"], 1),
    ("train --out a file", ["train", "--langs", "de", "--data", "{data}", "--model", "{model}", "--out", "{tmp}/afile"],
     ["afile: the extension folder is a file, not a folder"], 1),
    ("extend a folder with no extension", ["extend", "--lang", "ko", "--data", "{data}", "--extension", "{tmp}/folder"],
     ["folder: no extension here"], 1),
    ("extend a language it has", ["extend", "--lang", "de", "--data", "{data}", "--extension", "{ext}"],
     ["already has a 'de' pack; pass --replace"], 1),
    # continual
    ("continual --order twice", ["continual", "--order", "en,de,de", "--data", "{data}", "--model", "{model}", "--out", "{tmp}/c"],
     ["--order names de more than once"], 1),
    ("continual --learner unknown", ["continual", "--learner", "bogus", "--data", "{data}", "--out", "{tmp}/c"],
     ["unknown learner 'bogus'"], 1),
    # bench
    ("bench --langs twice", ["bench", "xtd", "--manifest", "{data}", "--split", "val", "--langs", "de,de", "--model", "{ext}"],
     ["--langs de,de: names 'de' twice"], 1),
    ("bench --langs unknown", ["bench", "xtd", "--manifest", "{data}", "--split", "val", "--langs", "xx", "--model", "{ext}"],
     ["has no val captions in xx"], 1),
    ("bench --manifest missing", ["bench", "xtd", "--manifest", "{tmp}/none.parquet"], ["none.parquet: no such manifest"], 1),
    ("bench --out a file", ["bench", "xtd", "--manifest", "{data}", "--split", "val", "--model", "{ext}", "--out", "{tmp}/afile"],
     ["afile: the results folder is a file, not a folder"], 1),
    ("bench --task unknown", ["bench", "xtd", "--manifest", "{data}", "--task", "i2i"], ["Invalid value for '--task'"], 2),
    ("bench --lang auto, a caption in no language of the model",
     ["bench", "xtd", "--manifest", "{data}", "--split", "val", "--langs", "ko", "--lang", "auto", "--model", "{ext}"],
     ["matches none of the languages (en, de)", "--fallback-lang LANG"], 1),
    ("--fallback-lang not a language of the model",
     ["bench", "xtd", "--manifest", "{data}", "--split", "val", "--lang", "auto", "--fallback-lang", "ko", "--model", "{ext}"],
     ["--fallback-lang ko: not one of the languages detected among (en, de)"], 1),
    ("--fallback-lang unknown code", ["embed", "--lang", "auto", "--text-file", "{tmp}/good.txt", "--fallback-lang", "xx",
                                      "--model", "{ext}", "--out", "{tmp}/e.parquet"], ["--fallback-lang xx: unknown language code 'xx'"], 1),
    ("--fallback-lang without --lang auto", ["bench", "xtd", "--manifest", "{data}", "--split", "val", "--fallback-lang", "en",
                                             "--model", "{ext}"], ["--fallback-lang is for --lang auto"], 1),
    ("--langid-backend unknown", ["embed", "--lang", "auto", "--text-file", "{tmp}/good.txt", "--langid-backend", "nope",
                                  "--out", "{tmp}/e.parquet"], ["unknown language-identification backend 'nope'"], 1),
    # embed
    ("embed --out not .parquet", ["embed", "--lang", "en", "--text-file", "{tmp}/good.txt", "--out", "{tmp}/e.csv"],
     ["--out", "name a .parquet file"], 1),
    ("embed --out under a file", ["embed", "--lang", "en", "--text-file", "{tmp}/good.txt", "--out", "{tmp}/afile/e.parquet"],
     ["the output file cannot be created", "afile is a file"], 1),
    ("embed --text-file missing", ["embed", "--lang", "en", "--text-file", "{tmp}/none.txt", "--out", "{tmp}/e.parquet"],
     ["none.txt: no such file"], 1),
    ("embed --text-file a folder", ["embed", "--lang", "en", "--text-file", "{tmp}/folder", "--out", "{tmp}/e.parquet"],
     ["folder: a folder, not a text file"], 1),
    ("embed --text-file empty", ["embed", "--lang", "en", "--text-file", "{tmp}/empty.txt", "--out", "{tmp}/e.parquet"],
     ["empty.txt: no text in it (empty file)"], 1),
    ("embed --text-file binary", ["embed", "--lang", "en", "--text-file", "{tmp}/nul.txt", "--out", "{tmp}/e.parquet"],
     ["nul.txt: a binary file (a NUL byte at offset 2)"], 1),
    ("embed --text-file not UTF-8", ["embed", "--lang", "en", "--text-file", "{tmp}/latin1.txt", "--out", "{tmp}/e.parquet"],
     ["latin1.txt: not UTF-8 text (byte 0xe9 at offset 3)"], 1),
    ("embed --parquet missing", ["embed", "--lang", "en", "--parquet", "{tmp}/none.parquet", "--out", "{tmp}/e.parquet"],
     ["--parquet", "none.parquet: no such file"], 1),
    ("embed --column missing", ["embed", "--lang", "en", "--parquet", "{tmp}/texts.parquet", "--column", "nope",
                                "--out", "{tmp}/e.parquet"], ["--column nope", "has no such column (it has caption, n, blank)"], 1),
    ("embed --column not text", ["embed", "--lang", "en", "--parquet", "{tmp}/texts.parquet", "--column", "n",
                                 "--out", "{tmp}/e.parquet"], ["--column n: a int64 column", "not text"], 1),
    ("embed --column blank", ["embed", "--lang", "en", "--parquet", "{tmp}/texts.parquet", "--column", "blank",
                              "--out", "{tmp}/e.parquet"], ["no text in its column 'blank'"], 1),
    ("embed --image missing", ["embed", "--image", "{tmp}/none.png", "--model", "{model}", "--out", "{tmp}/e.parquet"],
     ["cannot read image", "none.png: no such file"], 1),
    ("embed --image not an image", ["embed", "--image", "{tmp}/good.txt", "--model", "{model}", "--out", "{tmp}/e.parquet"],
     ["cannot read image", "not an image"], 1),
    ("embed without --lang", ["embed", "--text-file", "{tmp}/good.txt", "--out", "{tmp}/e.parquet"], ["texts need a language"], 1),
    ("embed a language without a pack", ["embed", "--lang", "ko", "--text-file", "{tmp}/good.txt", "--model", "{ext}",
                                         "--out", "{tmp}/e.parquet"], ["has no language pack for 'ko'", "--fallback english"], 1),
    # export
    ("export --check unknown manifest", ["export", "--extension", "{ext}", "--out", "{tmp}/onnx", "--check", "nosuch"],
     ["--check nosuch: no such file"], 1),
    ("export --langs twice", ["export", "--extension", "{ext}", "--out", "{tmp}/onnx", "--langs", "de,de"], ["names 'de' twice"], 1),
    ("export --langs without a pack", ["export", "--extension", "{ext}", "--out", "{tmp}/onnx", "--langs", "de,xx"],
     ["has no pack for xx"], 1),
    ("export --out of other files", ["export", "--extension", "{ext}", "--out", "{tmp}/notes"], ["not an earlier ONNX export"], 1),
    # features, langid, prepare, pretrain, index, packs, reproduce
    ("features --langs twice", ["features", "{data}", "--model", "{model}", "--langs", "de,de", "--out", "{tmp}/f"],
     ["names 'de' twice"], 1),
    ("features --out a file", ["features", "{data}", "--model", "{model}", "--out", "{tmp}/afile"],
     ["afile: the feature folder is a file, not a folder"], 1),
    ("langid --out under a file", ["langid", "--text-file", "{tmp}/good.txt", "--out", "{tmp}/afile/l.tsv"],
     ["the output file cannot be created"], 1),
    ("langid --langs twice", ["langid", "--text-file", "{tmp}/good.txt", "--langs", "en,de,en"], ["names 'en' twice"], 1),
    ("prepare --size below 1", ["prepare", "world", "--root", "{tmp}/w", "--size", "0", "--out", "{tmp}/w.parquet"],
     ["--size must be at least 1, not 0"], 1),
    ("prepare --out a folder", ["prepare", "world", "--root", "{tmp}/w", "--out", "{tmp}/folder"],
     ["the manifest is a folder, not a file"], 1),
    ("pretrain --arch unknown", ["pretrain", "--manifest", "{data}", "--arch", "nosuch", "--out", "{tmp}/p"],
     ["unknown --arch 'nosuch'"], 1),
    ("pretrain --out a file", ["pretrain", "--manifest", "{data}", "--out", "{tmp}/afile"],
     ["afile: the checkpoint folder is a file, not a folder"], 1),
    ("index build --features missing", ["index", "build", "--features", "{tmp}/none", "--out", "{tmp}/i.faiss"],
     ["none: no such feature folder"], 1),
    ("packs remove a language it lacks", ["packs", "remove", "ko", "--extension", "{ext}"], ["has no pack for 'ko'"], 1),
    ("reproduce an unknown table", ["reproduce", "nosuch"], ["unknown table 'nosuch'"], 1),
]


def _tree(root: Path, contents: bool) -> dict:
    """Every file and folder under `root`: its bytes (or size and mtime) and the folders."""
    return {str(p.relative_to(root)): (p.read_bytes() if contents else (p.stat().st_size, p.stat().st_mtime_ns))
            if p.is_file() else "folder" for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def table_extension(world):
    out = world["root"] / "table-ext"
    loop = replace(LOOP, nlt=StageConfig(2, 5e-3, 0.1), le=StageConfig(1, 1e-3, 0.1))
    train_mla(_config(world, out, loop=loop))
    return out


@pytest.mark.parametrize("kind, args, fragments, code", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_each_kind_of_bad_input_is_one_line_and_leaves_nothing(world, table_extension, tmp_path, run_cli, kind, args,
                                                               fragments, code):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "good.txt").write_text("ein roter Kreis\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "nul.txt").write_bytes(b"ab\x00cd\n")
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9\n".encode("latin-1"))
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    pq.write_table(pa.table({"caption": ["a red circle", "ein Hund"], "n": [1, 2], "blank": [" ", ""]}),
                   tmp_path / "texts.parquet")
    given = {"tmp": tmp_path, "data": world["manifest"], "model": world["model"], "ext": table_extension}
    before, world_before = _tree(tmp_path, True), _tree(world["root"], False)
    result = run_cli(*(arg.format(**given) for arg in args))
    assert_one_line_error(result, *fragments)
    assert result.code == code
    for noise in ("Traceback", "Error:", "[Errno", "No such file or directory", ".tmp"):
        assert noise not in result.err, result.err  # no exception class, errno text or temporary file name
    assert _tree(tmp_path, True) == before  # nothing half-written, and nothing made at all
    assert _tree(world["root"], False) == world_before


def test_a_workspace_that_cannot_be_written_is_refused_naming_it(tmp_path, run_cli, monkeypatch):
    import mlclip_cli.locks as locks

    shut = tmp_path / "shut"
    shut.mkdir()
    real = os.access
    # root may write anywhere, so the test denies the permission the way a read-only mount would
    monkeypatch.setattr(locks.os, "access", lambda path, mode: Path(path) != shut and real(path, mode))
    result = run_cli("-w", str(shut / "ws"), "train", "--langs", "de")
    assert_one_line_error(result, f"-w/--workspace {shut / 'ws'}: the workspace cannot be written: {shut} is not writable")
    assert list(shut.iterdir()) == []
    assert run_cli("-w", str(shut / "ws"), "train", "--help").code == 0  # the help needs no workspace


@pytest.mark.parametrize("value, hub, path", [
    ("sentence-transformers/all-MiniLM-L6-v2", True, False), ("bert-base-uncased", True, False),
    ("org/name", False, True), ("./org/name", True, True), ("~/models/x", True, True), ("data/tok.json", True, True),
    ("tok.json", True, True), ("w.safetensors", False, True), ("a/b/c", True, True), ("/abs", True, True),
])
def test_a_local_path_is_told_apart_from_a_hub_name(value, hub, path):
    from mlclip_cli.inputs import looks_like_path

    assert looks_like_path(value, hub_names=hub) is path


def test_lang_auto_has_one_fallback_rule_for_bench_and_embed(world, table_extension, tmp_path, run_cli):
    """A caption in a language the extension lacks (Korean; it has de): --fallback-lang en sends it
    through the English tower; the old `--fallback english` still does, with a one-line note."""
    from mlclip_cli.artifacts import EMBEDDINGS, read_table

    common = ("bench", "xtd", "--manifest", str(world["manifest"]), "--split", "val", "--langs", "ko", "--lang", "auto",
              "--model", str(table_extension), "--out", str(tmp_path / "r"))
    result = run_cli(*common, "--fallback-lang", "en")
    assert result.code == 0 and not result.err, result.err
    assert "routed to their own pack (%): ko 0.0" in result.out
    result = run_cli(*common, "--fallback", "english")
    assert result.code == 0 and result.err.strip().splitlines() == [
        "note: --fallback english with --lang auto is deprecated: it means --fallback-lang en (a text in none of the "
        "model's languages goes through the English tower); pass that instead"]
    texts = tmp_path / "q.txt"
    texts.write_text("ein roter Kreis\n가운데에 있는 큰 파란 별\n", encoding="utf-8")
    for option in (("--fallback-lang", "en"), ("--fallback", "english")):
        out = tmp_path / f"{option[0][2:]}.parquet"
        result = run_cli("embed", "--lang", "auto", "--text-file", str(texts), "--model", str(table_extension),
                         "--out", str(out), *option)
        assert result.code == 0, result.err
        assert read_table(out, EMBEDDINGS).column("language").to_pylist() == ["de", "en"]
    result = run_cli("langid", "--text-file", str(texts), "--extension", str(table_extension), "--fallback", "en")
    assert result.code == 0 and "note: --fallback is deprecated here: it is --fallback-lang" in result.err


def test_embed_counts_the_texts_the_context_cuts_and_a_5_mb_line_costs_a_paragraph(world, table_extension, tmp_path,
                                                                                  run_cli):
    from mlclip_cli.artifacts import EMBEDDINGS, read_table
    from mlclip_cli.embed import EmbedConfig, embed
    from mlclip_cli.loading import load_encoder

    huge = ("ein roter Kreis neben einem blauen Quadrat " * 120_000)[:5_000_000]
    texts = ["ein Hund", huge, "zwei " * 100, "kurz"]
    given = tmp_path / "long.txt"
    given.write_text("\n".join(texts) + "\n", encoding="utf-8")
    for model, language in ((world["model"], "en"), (str(table_extension), "de")):
        result = run_cli("embed", "--lang", language, "--text-file", str(given), "--model", model,
                         "--out", str(tmp_path / "e.parquet"))
        assert result.code == 0, result.err
        note = " ".join(result.err.split())
        assert note.startswith("note: 2 of 4 texts are longer than the model's context (") and \
            f"(the first: line 2 of {given})" in note
        assert read_table(tmp_path / "e.parquet", EMBEDDINGS).column("input").to_pylist()[1] == huge  # kept whole
        encoder = load_encoder(model, "cpu")
        found = embed(EmbedConfig(out=tmp_path / "lib.parquet", texts=tuple(texts), language=language), encoder=encoder)
        assert found.truncated == 2 and found.truncated_rows == [1, 2] and found.context is not None
        vectors = read_table(tmp_path / "lib.parquet", EMBEDDINGS).column("embedding").to_pylist()
        # the 5 MB line embeds as any prefix of it past the context does: its first tokens are the same
        head = encoder.encode_texts([huge[:3000]], language)[0]
        assert max(abs(a - b) for a, b in zip(vectors[1], head)) < 1e-5
    fits = embed(EmbedConfig(out=tmp_path / "short.parquet", texts=("ein Hund",), language="en"),
                 encoder=load_encoder(world["model"], "cpu"))
    assert fits.truncated == 0 and fits.truncated_rows == []


def test_export_check_without_onnxruntime_is_refused_before_anything_is_exported(world, table_extension, tmp_path,
                                                                                  run_cli, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnxruntime)
    result = run_cli("export", "--extension", str(table_extension), "--out", str(tmp_path / "onnx"),
                     "--check", str(world["manifest"]))
    assert_one_line_error(result, "--check needs onnxruntime: pip install -e '.[onnx]'")
    assert not (tmp_path / "onnx").exists()


def test_a_run_reads_a_finished_feature_cache_that_another_run_is_checking(world, tmp_path, holder):
    """Two runs on one workspace: the second finds the shared feature cache locked by the first.
    A cache that already lists what it needs is read (shards are written whole); one that does
    not is refused in one line."""
    from mlclip_cli.artifacts import read_manifest
    from mlclip_cli.core.pairs import load_pairs
    from mlclip_cli.encoders import FrozenClip
    from mlclip_cli.workspace import feature_folder

    base = FrozenClip.load(world["model"], "cpu")
    frame = read_manifest(world["manifest"]).to_pandas()

    def pairs(root):
        return load_pairs(frame, world["manifest"], ["de"], "train", True, True, base, root)[0]

    alone = pairs(tmp_path / "features")  # computes the cache
    folder = feature_folder(tmp_path / "features", world["manifest"], "train", base.image_identity)
    first = holder(folder)
    shared = pairs(tmp_path / "features")
    assert np.array_equal(shared.teacher[:], alone.teacher[:]) and np.array_equal(shared.image[:], alone.image[:])

    empty = feature_folder(tmp_path / "other", world["manifest"], "train", base.image_identity)
    second = holder(empty)
    with pytest.raises(FolderBusy, match=f"pid {second.pid}"):
        pairs(tmp_path / "other")
    assert first.poll() is None
