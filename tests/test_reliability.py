"""One writer per folder, and interrupts that save and say how to go on."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import replace

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
    (b"\x89PNG\r\n\x1a\n\x00\x00", "a binary file (NUL bytes)"),
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
